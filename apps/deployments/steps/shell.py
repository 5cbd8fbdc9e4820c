"""`shell`: run a command with /bin/sh on the worker, streaming its output into the step log."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

from ._util import SCHEMA_DIALECT, seconds
from .base import StepContext, StepKind, StepResult, StepStatus, register

# After the shell exits, how long to keep reading output still held open by a background child.
_DRAIN_GRACE = 2.0
# After SIGTERM on timeout, how long the process group gets before SIGKILL.
_KILL_GRACE = 2.0
# Output without a newline is logged in pieces of this size.
_MAX_LINE = 8192

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def child_env(ctx: StepContext, extra: dict[str, str]) -> dict[str, str]:
    """The command's environment: a minimal base, the deployment's variables, the step's `env`, then ours.

    The worker's own environment (database URL, broker credentials...) is deliberately not inherited.
    """
    target = ctx.target or {}
    artifact = ctx.artifact or {}
    env = {
        "PATH": os.environ.get("PATH") or DEFAULT_PATH,
        "HOME": os.environ.get("HOME") or "/",
        "LANG": os.environ.get("LANG") or "C.UTF-8",
    }
    env.update({str(k): str(v) for k, v in ctx.env.items()})
    env.update({str(k): str(v) for k, v in extra.items()})
    ours = {
        "RELEASEHUB_TARGET_NAME": target.get("name"),
        "RELEASEHUB_TARGET_ADDRESS": target.get("address"),
        "RELEASEHUB_TARGET_PATH": target.get("path"),
        "RELEASEHUB_TARGET_SLOT": target.get("slot"),
        "RELEASEHUB_APPLICATION": ctx.release.get("application"),
        "RELEASEHUB_RELEASE_VERSION": ctx.release.get("version"),
        "RELEASEHUB_ENVIRONMENT": ctx.environment.get("slug"),
        "RELEASEHUB_ENVIRONMENT_TIER": ctx.environment.get("tier"),
        "RELEASEHUB_ARTIFACT_VERSION": artifact.get("version"),
        "RELEASEHUB_ARTIFACT_DIGEST": artifact.get("digest"),
        "RELEASEHUB_ARTIFACT_URI": artifact.get("uri"),
    }
    env.update({k: "" if v is None else str(v) for k, v in ours.items()})
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, then SIGKILL whatever is left of it."""
    for sig, grace in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        if grace is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
    proc.wait()


class _LineLog:
    """Splits a byte stream into lines for ctx.log."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer or len(self.buffer) >= _MAX_LINE:
            line, sep, rest = self.buffer.partition(b"\n")
            if not sep or len(line) > _MAX_LINE:
                line, rest = self.buffer[:_MAX_LINE], self.buffer[_MAX_LINE:]
            self.buffer = rest
            self._emit(line)

    def flush(self) -> None:
        if self.buffer:
            self._emit(self.buffer)
            self.buffer = b""

    def _emit(self, line: bytes) -> None:
        self.ctx.log(line.rstrip(b"\r").decode("utf-8", errors="replace"))


@register
class Shell(StepKind):
    name = "shell"
    title = "Shell command"
    description = (
        "Runs a command with /bin/sh -c on the worker. Exit status 0 succeeds. The deployment's variables "
        "and secrets are in its environment, with RELEASEHUB_TARGET_NAME, RELEASEHUB_TARGET_PATH, "
        "RELEASEHUB_RELEASE_VERSION, RELEASEHUB_ARTIFACT_URI and friends."
    )
    idempotent = False
    scope = "target"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "minLength": 1,
                "maxLength": 65536,
                "description": "Shell command, run with /bin/sh -c.",
            },
            "timeout": {
                "type": "number",
                "minimum": 1,
                "maximum": 3600,
                "default": 300,
                "description": "Seconds before the command and all its children are killed.",
            },
            "working_dir": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4096,
                "description": "Directory to run in. Default: the target's path if it exists, else a temporary one.",
            },
            "env": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 256},
                "additionalProperties": {"type": "string", "maxLength": 65536},
                "maxProperties": 200,
                "description": "Extra environment variables.",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    }

    def run(self, ctx: StepContext) -> StepResult:
        params = ctx.params
        command: str = params["command"]
        timeout = min(float(params.get("timeout", 300)), ctx.timeout)
        scratch: str | None = None
        working_dir = params.get("working_dir")
        if working_dir:
            if not os.path.isdir(working_dir):
                return StepResult(StepStatus.FAILED, f"working_dir {working_dir} is not a directory.")
        else:
            target_path = (ctx.target or {}).get("path")
            if target_path and os.path.isdir(target_path):
                working_dir = target_path
            else:
                working_dir = scratch = tempfile.mkdtemp(prefix="releasehub-shell-")
        try:
            return self._run(ctx, command, timeout, working_dir, child_env(ctx, params.get("env") or {}))
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)

    def _run(self, ctx: StepContext, command: str, timeout: float, cwd: str, env: dict[str, str]) -> StepResult:
        ctx.log(f"$ {command}")
        try:
            proc = subprocess.Popen(  # noqa: S603 - running the template's command is this kind's purpose
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout kills its children too
            )
        except (OSError, ValueError) as exc:
            return StepResult(StepStatus.FAILED, f"Could not start /bin/sh: {exc}")

        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        lines = _LineLog(ctx)
        deadline = time.monotonic() + timeout
        exited_at: float | None = None
        timed_out = False
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at >= _DRAIN_GRACE:
                    # The shell is gone but a background child still holds the output open: stop reading.
                    ctx.log("(a background process still holds the output open; no longer reading it)")
                    break
                if now >= deadline:
                    timed_out = exited_at is None
                    break
                wait = deadline - now if exited_at is None else _DRAIN_GRACE - (now - exited_at)
                if not selector.select(timeout=min(wait, 0.5)):
                    continue
                data = os.read(fd, 65536)
                if not data:  # EOF: every process that had the output open closed it
                    break
                lines.feed(data)
        lines.flush()
        proc.stdout.close()

        if not timed_out and exited_at is None:
            # Output closed; the shell may still be running (e.g. `exec >/dev/null; sleep 100`).
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out:
            _kill_group(proc)
            message = f"timed out after {seconds(timeout)}"
            ctx.log(f"Killed: {message}.")
            return StepResult(StepStatus.FAILED, message)

        code = proc.returncode
        if code == 0:
            return StepResult(StepStatus.SUCCEEDED, "Command exited with status 0.", exit_code=0)
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return StepResult(StepStatus.FAILED, f"Command killed by signal {name}.", exit_code=128 - code)
        return StepResult(StepStatus.FAILED, f"Command exited with status {code}.", exit_code=code)
