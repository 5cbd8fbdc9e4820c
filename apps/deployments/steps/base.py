"""What a step kind is: a JSON Schema for its parameters, `run()`, and whether it may run twice.

The engine (apps.deployments.engine) calls a kind once per target of a batch (scope
"target") or once per batch (scope "batch": waits and manual interventions). A kind only
sees a StepContext: rendered parameters with secrets already substituted, a snapshot of
the target, the artifact, the environment variables for processes, and a `log` that
masks secrets. It never touches the database, so it runs the same in a worker, a test
or a benchmark. New kinds plug in with `@register` without touching the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


class StepStatus:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    WAITING = "waiting"  # not done yet: run again at StepResult.resume_at (a `wait`, a polling check)
    PAUSED = "paused"  # needs a person (manual_intervention): resumed or aborted in the browser


@dataclass
class StepResult:
    status: str
    message: str = ""
    exit_code: int | None = None
    # Kept on the StepRun and handed back as StepContext.state on the next run of this step on this
    # target (WAITING), and to rollback() (e.g. release_dir's previous `current`). A step that fails after
    # changing something sets state["changed"] = True, so that a rollback undoes it all the same.
    state: dict[str, Any] = field(default_factory=dict)
    resume_at: datetime | None = None  # with WAITING
    installed: bool = False  # the step installed StepContext.artifact on the target (inventory record)


@dataclass
class StepContext:
    params: dict[str, Any]  # rendered, secrets substituted: never log them whole
    target: dict[str, Any] | None  # {"id","name","address","path","slot","health_check_url","labels","attributes"}
    artifact: dict[str, Any] | None  # {"id","application","version","digest","uri"}; None when the release has none
    release: dict[str, Any]  # {"id","application","version"}
    environment: dict[str, Any]  # {"slug","name","tier"}
    env: dict[str, str]  # variables for child processes (secrets decrypted)
    log: Callable[[str], None]  # appends a line to the StepRun's log; masks secrets, caps the size
    state: dict[str, Any] = field(default_factory=dict)  # StepResult.state of this step's previous run
    timeout: float = 300.0  # seconds this run may take at most
    # Saves `state` on the StepRun at once, before a side effect the step must be able to undo even if its
    # worker dies right after (release_dir records the previous `current` before switching it). A re-run
    # of an interrupted step finds it in `state`.
    checkpoint: Callable[[dict[str, Any]], None] = lambda state: None
    now: Callable[[], datetime] | None = None  # clock (timezone-aware UTC); None means timezone.now
    # Kinds with `describes_deployment`: {"id", "url", "requested_by": {"name", "email"} | None,
    # "approvers": [{"name", "email"}]}
    deployment: dict[str, Any] = field(default_factory=dict)
    # Kinds with `signals`: what arrived from outside for this step (apps.gitops webhooks), oldest first:
    # [{"id", "kind", "at", ...}]
    signals: list[dict[str, Any]] = field(default_factory=list)
    attempt: int = 1  # the StepRun's attempt: a retry, or a re-run after a lost worker, counts up


class StepKind:
    """Base of step kinds; subclasses set the class attributes and implement run()."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    schema: ClassVar[dict[str, Any]]  # JSON Schema (draft 2020-12) of the parameters
    idempotent: ClassVar[bool]  # safe to run again after a worker died in the middle of it
    scope: ClassVar[str] = "target"  # "target": once per target of a batch; "batch": once per batch
    installs: ClassVar[bool] = False  # may return StepResult(installed=True)
    in_templates: ClassVar[bool] = True  # False: only strategies add it to plans
    signals: ClassVar[bool] = False  # receives StepContext.signals, and runs again at once when one arrives
    describes_deployment: ClassVar[bool] = False  # receives StepContext.deployment

    def run(self, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def budget(self, params: dict[str, Any]) -> float | None:
        """The longest one run may take with these parameters (its lease and time limits); None: the default."""
        timeout = params.get("timeout")
        return float(timeout) if isinstance(timeout, int | float) else None

    def rollback(self, ctx: StepContext) -> StepResult:
        """Undo run() on this target, with ctx.state as run() left it. Default: nothing to undo."""
        return StepResult(StepStatus.SUCCEEDED, "Nothing to undo.")

    @property
    def reversible(self) -> bool:
        return type(self).rollback is not StepKind.rollback


REGISTRY: dict[str, StepKind] = {}


def register(kind: type[StepKind]) -> type[StepKind]:
    """Class decorator: make a kind available to templates by its `name`."""
    REGISTRY[kind.name] = kind()
    return kind


def get(name: str) -> StepKind:
    """The registered kind `name`; KeyError when unknown."""
    return REGISTRY[name]
