"""Step kinds against real things: a local HTTP server, real archives in tmp_path, real subprocesses.

No database: a kind only sees a StepContext, built here by `ctx()`.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
import time
import zipfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest

from apps.deployments import steps
from apps.deployments.steps import StepContext, StepResult, StepStatus
from apps.deployments.steps.release_dir import MARKER, switch_symlink

# ---------------------------------------------------------------------------- helpers


class Log(list):
    """ctx.log that keeps the lines."""

    def __call__(self, line: str) -> None:
        self.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self)


def ctx(params: dict[str, Any] | None = None, **overrides: Any) -> StepContext:
    """A StepContext for a target `web-1` of release 1.0.0 with no artifact; log lines in ctx.log."""
    values: dict[str, Any] = {
        "params": params or {},
        "target": {
            "id": 1,
            "name": "web-1",
            "address": "10.0.0.1",
            "path": None,
            "slot": "",
            "health_check_url": "",
            "labels": {},
            "attributes": {},
        },
        "artifact": None,
        "release": {"id": 7, "application": "shop", "version": "1.0.0"},
        "environment": {"slug": "staging", "name": "Staging", "tier": "staging"},
        "env": {},
        "log": Log(),
    }
    values.update(overrides)
    return StepContext(**values)


def run(kind: str, params: dict[str, Any] | None = None, **overrides: Any) -> tuple[StepResult, Log]:
    c = ctx(params, **overrides)
    return steps.get(kind).run(c), c.log


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def make_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith(("gz", "tgz")) else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def artifact(uri: str, version: str, file: Path, digest: str | None = None) -> dict[str, Any]:
    return {"id": 1, "application": "shop", "version": version, "digest": digest or digest_of(file), "uri": uri}


def alive(pid: int) -> bool:
    """A process exists and is not a zombie (nobody may reap orphans in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- HTTP server


class Server(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    hits: defaultdict[str, int]
    requests: list[tuple[str, str, dict[str, str], bytes]]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(BaseHTTPRequestHandler):
    """/status/<code>, /flaky/<key>/<n> (503 n times, then 200), /body, /big, /echo, /files/<name>."""

    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        self.handle_any()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlparse(self.path).path
        self.server.requests.append((self.command, path, dict(self.headers), body))
        self.server.hits[path] += 1
        parts = path.strip("/").split("/")
        match parts:
            case ["status", code]:
                self.send(int(code), f"status {code}".encode())
            case ["flaky", _key, failures]:
                ok = self.server.hits[path] > int(failures)
                self.send(200 if ok else 503, b"ok" if ok else b"starting")
            case ["body"]:
                self.send(200, b"service: ready")
            case ["big"]:
                self.send(200, b"x" * 100_000)
            case ["echo"]:
                self.send(200, f"{self.command} {body.decode()}".encode())
            case ["files", name]:
                file = self.server.root / name
                if file.is_file():
                    self.send(200, file.read_bytes())
                else:
                    self.send(404, b"no such file")
            case _:
                self.send(404, b"not found")

    def send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def server(tmp_path: Path):
    srv = Server(("127.0.0.1", 0), Handler)
    srv.root = tmp_path / "www"
    srv.root.mkdir()
    srv.hits = defaultdict(int)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


# ---------------------------------------------------------------------------- registry and schemas

INVALID_PARAMS = [
    ("shell", {}),
    ("shell", {"command": ""}),
    ("shell", {"command": "true", "timeout": 0}),
    ("shell", {"command": "true", "timeout": 3601}),
    ("shell", {"command": "true", "timeout": "10"}),
    ("shell", {"command": "true", "env": {"A": 1}}),
    ("shell", {"command": "true", "env": {"BAD-NAME": "x"}}),
    ("shell", {"command": "true", "idempotent": True}),
    ("http", {}),
    ("http", {"url": "ftp://example.com/"}),
    ("http", {"url": "example.com"}),
    ("http", {"url": "https://example.com", "method": "TRACE"}),
    ("http", {"url": "https://example.com", "retries": 21}),
    ("http", {"url": "https://example.com", "retries": 1.5}),
    ("http", {"url": "https://example.com", "retry_delay": 61}),
    ("http", {"url": "https://example.com", "expected_status": []}),
    ("http", {"url": "https://example.com", "expected_status": [99]}),
    ("http", {"url": "https://example.com", "headers": {"X-A": "line\nbreak"}}),
    ("http", {"url": "https://example.com", "headers": {"Bad Name": "x"}}),
    ("health_check", {"url": "https://example.com", "interval": 0}),
    ("health_check", {"url": "https://example.com", "timeout": 3601}),
    ("health_check", {"url": "https://example.com", "expected_status": [200, 200]}),
    ("health_check", {"url": "https://example.com", "expected_body": ""}),
    ("release_dir", {"keep": 0}),
    ("release_dir", {"keep": 101}),
    ("release_dir", {"strip_components": 6}),
    ("release_dir", {"path": ""}),
    ("release_dir", {"url": "https://example.com"}),
    ("wait", {}),
    ("wait", {"seconds": -1}),
    ("wait", {"seconds": 86401}),
    ("wait", {"seconds": "60"}),
    ("manual_intervention", {}),
    ("manual_intervention", {"instructions": ""}),
    ("manual_intervention", {"instructions": "x" * 2001}),
]

VALID_PARAMS = [
    ("shell", {"command": "make deploy", "timeout": 10.5, "working_dir": "/srv", "env": {"MODE": "fast"}}),
    ("http", {"url": "https://lb.example.com/api/drain?host=web-1", "method": "POST", "headers": {"X-Token": "t"}}),
    ("http", {"url": "http://10.0.0.1:8080/", "expected_status": [200, 409], "retries": 20, "retry_delay": 0}),
    ("health_check", {}),
    ("health_check", {"url": "http://10.0.0.1/health", "expected_body": "ok", "interval": 0.1, "timeout": 1}),
    ("release_dir", {}),
    ("release_dir", {"path": "/srv/shop", "keep": 100, "strip_components": 5}),
    ("wait", {"seconds": 0}),
    ("wait", {"seconds": 86400}),
    ("manual_intervention", {"instructions": "Check the dashboard, then resume."}),
    ("gitops_commit", {}),
    ("gitops_commit", {"wait_for_sync": False}),
]


def test_every_builtin_kind_is_registered_with_its_contract():
    kinds = {name: steps.get(name) for name in steps.REGISTRY}
    assert set(kinds) == {
        "shell",
        "http",
        "health_check",
        "release_dir",
        "wait",
        "manual_intervention",
        "analysis",
        "switch_traffic",
        "gitops_commit",
    }
    batch = {"wait", "manual_intervention", "analysis", "switch_traffic"}
    assert {n for n, k in kinds.items() if k.scope == "batch"} == {*batch, "gitops_commit"}
    assert {n for n, k in kinds.items() if k.idempotent} == {"health_check", "release_dir", *batch}
    assert {n for n, k in kinds.items() if k.installs} == {"release_dir"}
    assert {n for n, k in kinds.items() if k.reversible} == {"release_dir", "switch_traffic", "gitops_commit"}
    assert {n for n, k in kinds.items() if k.signals} == {n for n, k in kinds.items() if k.describes_deployment}
    assert {n for n, k in kinds.items() if k.signals} == {"gitops_commit"}
    assert {n for n, k in kinds.items() if not k.in_templates} == {"analysis", "switch_traffic"}
    for kind in kinds.values():
        assert kind.title
        assert kind.description


@pytest.mark.parametrize("name", sorted(steps.REGISTRY))
def test_schema_is_valid_draft_2020_12_and_closed(name):
    schema = steps.get(name).schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)
    required = {
        "command": "true",
        "url": "https://x.example",
        "seconds": 1,
        "instructions": "go",
        "targets": [],
        "slot": "green",
        "weight": 100,
    }
    for prop, spec in schema["properties"].items():
        if "default" in spec:  # documented defaults are themselves valid values
            params = {k: v for k, v in required.items() if k in schema.get("required", [])}
            validator.validate({**params, prop: spec["default"]})


@pytest.mark.parametrize(("name", "params"), INVALID_PARAMS)
def test_schema_rejects_invalid_params(name, params):
    assert not jsonschema.Draft202012Validator(steps.get(name).schema).is_valid(params)


@pytest.mark.parametrize(("name", "params"), VALID_PARAMS)
def test_schema_accepts_valid_params(name, params):
    jsonschema.Draft202012Validator(steps.get(name).schema).validate(params)


# ---------------------------------------------------------------------------- shell


def test_shell_success_logs_stdout_and_stderr():
    result, log = run("shell", {"command": "echo hello; echo oops >&2; printf 'no newline'"})
    assert result.status == StepStatus.SUCCEEDED
    assert result.exit_code == 0
    assert "hello" in log
    assert "oops" in log
    assert "no newline" in log


def test_shell_non_zero_exit_fails_with_the_exit_code():
    result, log = run("shell", {"command": "echo before; exit 3"})
    assert result.status == StepStatus.FAILED
    assert result.exit_code == 3
    assert "status 3" in result.message
    assert "before" in log


def test_shell_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    result, log = run("shell", {"command": f"sleep 30 & echo $! > {pid_file}; echo started; wait", "timeout": 1})
    elapsed = time.monotonic() - started
    assert result.status == StepStatus.FAILED
    assert result.message == "timed out after 1s"
    assert "started" in log
    assert elapsed < 10
    child = int(pid_file.read_text())
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    assert not alive(child), "the background `sleep` survived the timeout"


def test_shell_timeout_also_when_the_command_closed_its_output():
    started = time.monotonic()
    result, _ = run("shell", {"command": "exec >/dev/null 2>&1; sleep 30", "timeout": 1})
    assert result.status == StepStatus.FAILED
    assert "timed out" in result.message
    assert time.monotonic() - started < 10


def test_shell_does_not_hang_on_a_background_process_holding_the_output(tmp_path):
    pid_file = tmp_path / "bg.pid"
    started = time.monotonic()
    result, log = run("shell", {"command": f"sleep 30 & echo $! > {pid_file}; echo done", "timeout": 60})
    try:
        assert result.status == StepStatus.SUCCEEDED
        assert "done" in log
        assert time.monotonic() - started < 10
    finally:
        os.kill(int(pid_file.read_text()), 9)


def test_shell_environment_has_deployment_variables_but_not_the_workers(monkeypatch):
    monkeypatch.setenv("WORKER_ONLY_SECRET", "leak")
    result, log = run(
        "shell",
        {
            "command": 'echo "db=$DB_PASSWORD mode=$MODE target=$RELEASEHUB_TARGET_NAME v=$RELEASEHUB_RELEASE_VERSION '
            'worker=${WORKER_ONLY_SECRET:-none} path=${PATH:+set}"',
            "env": {"MODE": "fast"},
        },
        env={"DB_PASSWORD": "s3cret", "MODE": "slow"},
    )
    assert result.status == StepStatus.SUCCEEDED
    assert "db=s3cret mode=fast target=web-1 v=1.0.0 worker=none path=set" in log


def test_shell_runs_in_the_target_path_or_the_given_working_dir(tmp_path):
    target_dir = tmp_path / "srv"
    target_dir.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    target = {**ctx().target, "path": str(target_dir)}
    _, log = run("shell", {"command": "pwd"}, target=target)
    assert str(target_dir) in log
    _, log = run("shell", {"command": "pwd", "working_dir": str(other)}, target=target)
    assert str(other) in log
    result, _ = run("shell", {"command": "pwd", "working_dir": str(tmp_path / "missing")})
    assert result.status == StepStatus.FAILED
    assert "not a directory" in result.message


def test_shell_without_target_path_runs_in_a_removed_temporary_dir():
    _, log = run("shell", {"command": "pwd"})
    cwd = log[-1]
    assert "releasehub-shell-" in cwd
    assert not os.path.exists(cwd)


# ---------------------------------------------------------------------------- http


def test_http_post_with_headers_and_body(server):
    result, log = run(
        "http",
        {"url": server.url("/echo"), "method": "POST", "headers": {"X-Token": "abc"}, "body": '{"drain": true}'},
    )
    assert result.status == StepStatus.SUCCEEDED
    method, path, headers, body = server.requests[-1]
    assert (method, path, body) == ("POST", "/echo", b'{"drain": true}')
    assert headers["X-Token"] == "abc"
    assert "HTTP 200" in log.text
    assert 'POST {"drain": true}' in log.text


def test_http_unexpected_status_fails_after_its_retries(server):
    result, log = run("http", {"url": server.url("/status/500"), "retries": 2, "retry_delay": 0})
    assert result.status == StepStatus.FAILED
    assert "HTTP 500" in result.message
    assert "3 attempts" in result.message
    assert server.hits["/status/500"] == 3
    assert "status 500" in log.text


def test_http_expected_status_and_retries_until_success(server):
    result, _ = run("http", {"url": server.url("/status/409"), "expected_status": [409]})
    assert result.status == StepStatus.SUCCEEDED
    result, _ = run("http", {"url": server.url("/flaky/a/2"), "retries": 3, "retry_delay": 0.05})
    assert result.status == StepStatus.SUCCEEDED
    assert server.hits["/flaky/a/2"] == 3


def test_http_logs_at_most_2kb_of_the_body(server):
    result, log = run("http", {"url": server.url("/big"), "method": "GET"})
    assert result.status == StepStatus.SUCCEEDED
    body_lines = [line for line in log if line.startswith("xxx")]
    assert body_lines == ["x" * 2048 + " [...]"]


def test_http_head_request(server):
    result, _ = run("http", {"url": server.url("/body"), "method": "HEAD"})
    assert result.status == StepStatus.SUCCEEDED
    assert server.requests[-1][0] == "HEAD"


def test_http_header_that_cannot_be_sent_fails_without_a_request(server):
    result, _ = run("http", {"url": server.url("/echo"), "headers": {"X-Name": "caf\u00e9 \u2603"}})
    assert result.status == StepStatus.FAILED
    assert "X-Name" in result.message
    assert server.requests == []


def test_http_connection_refused_counts_as_a_failed_attempt():
    result, log = run("http", {"url": f"http://127.0.0.1:{free_port()}/", "retries": 1, "retry_delay": 0})
    assert result.status == StepStatus.FAILED
    assert "ConnectionError" in result.message
    assert "2 attempts" in result.message
    assert "Request failed" in log.text


# ---------------------------------------------------------------------------- health_check


def test_health_check_becomes_healthy_after_a_few_failures(server):
    result, log = run("health_check", {"url": server.url("/flaky/hc/3"), "interval": 0.1, "timeout": 10})
    assert result.status == StepStatus.SUCCEEDED
    assert server.hits["/flaky/hc/3"] == 4
    assert "Attempt 1: HTTP 503" in log.text


def test_health_check_fails_after_its_timeout(server):
    started = time.monotonic()
    result, _ = run("health_check", {"url": server.url("/status/503"), "interval": 0.2, "timeout": 1})
    elapsed = time.monotonic() - started
    assert result.status == StepStatus.FAILED
    assert "Not healthy after 1s" in result.message
    assert "HTTP 503" in result.message
    assert 0.7 < elapsed < 3
    assert server.hits["/status/503"] >= 3


def test_health_check_expected_body(server):
    result, _ = run("health_check", {"url": server.url("/body"), "expected_body": "ready"})
    assert result.status == StepStatus.SUCCEEDED
    result, log = run("health_check", {"url": server.url("/body"), "expected_body": "degraded", "timeout": 1})
    assert result.status == StepStatus.FAILED
    assert "without the expected body" in result.message
    assert "service: ready" in log.text


def test_health_check_uses_the_targets_url_by_default(server):
    target = {**ctx().target, "health_check_url": server.url("/body")}
    result, _ = run("health_check", {}, target=target)
    assert result.status == StepStatus.SUCCEEDED
    result, _ = run("health_check", {})
    assert result.status == StepStatus.FAILED
    assert "no health check URL" in result.message


def test_health_check_connection_refused_until_timeout():
    result, _ = run("health_check", {"url": f"http://127.0.0.1:{free_port()}/", "interval": 0.2, "timeout": 1})
    assert result.status == StepStatus.FAILED
    assert "ConnectionError" in result.message


# ---------------------------------------------------------------------------- release_dir


@pytest.fixture
def site(tmp_path):
    """Where releases go (the target's path) and a helper to build artifacts."""
    root = tmp_path / "srv" / "shop"
    build = tmp_path / "build"
    build.mkdir()

    class Site:
        path = root
        target = {**ctx().target, "path": str(root)}

        def tar(self, version: str, files: dict[str, bytes] | None = None, name: str | None = None) -> Path:
            return make_tar(build / (name or f"shop-{version}.tar.gz"), files or {"VERSION": version.encode()})

        def install(self, version: str, file: Path, **params: Any) -> tuple[StepResult, Log]:
            return run("release_dir", params, target=self.target, artifact=artifact(file.as_uri(), version, file))

        def rollback(self, state: dict[str, Any]) -> tuple[StepResult, Log]:
            c = ctx(target=self.target, state=state)
            return steps.get("release_dir").rollback(c), c.log

        def current(self) -> str | None:
            link = root / "current"
            return os.readlink(link) if link.is_symlink() else None

        def releases(self) -> set[str]:
            return {p.name for p in (root / "releases").iterdir() if not p.name.startswith(".")}

        def leftovers(self) -> list[str]:
            hidden = [p.name for p in (root / "releases").iterdir() if p.name.startswith(".")]
            tmp = root / ".releasehub-tmp"
            return hidden + ([p.name for p in tmp.iterdir()] if tmp.exists() else [])

    return Site()


def test_release_dir_installs_a_tar_gz_from_file_uri(site):
    file = site.tar("1.0.0", {"app/main.py": b"print('hi')\n", "bin/run.sh": b"#!/bin/sh\n", "VERSION": b"1.0.0"})
    result, log = site.install("1.0.0", file)
    assert result.status == StepStatus.SUCCEEDED
    assert result.installed is True
    assert result.state == {"previous": None, "previous_link": None, "version": "1.0.0", "path": str(site.path)}
    assert site.current() == "releases/1.0.0"
    assert (site.path / "current" / "app" / "main.py").read_bytes() == b"print('hi')\n"
    assert os.access(site.path / "current" / "bin" / "run.sh", os.X_OK)
    assert (site.path / "releases" / "1.0.0" / MARKER).read_text().strip() == digest_of(file)
    assert site.leftovers() == []
    assert "Digest verified" in log.text


def test_release_dir_installs_over_http_tar_zip_and_plain_file(site, server):
    tar = make_tar(server.root / "shop-1.tgz", {"shop-1/index.html": b"<h1>1</h1>"})
    zipped = make_zip(server.root / "shop-2.zip", {"shop-2/index.html": b"<h1>2</h1>", "shop-2/static/": b""})
    plain = server.root / "shop-3.jar"
    plain.write_bytes(b"PK-not-really-a-jar")

    for version, file, params in (("1", tar, {"strip_components": 1}), ("2", zipped, {}), ("3", plain, {})):
        art = artifact(server.url(f"/files/{file.name}"), version, file)
        result, _ = run("release_dir", params, target=site.target, artifact=art)
        assert result.status == StepStatus.SUCCEEDED, result.message
        assert site.current() == f"releases/{version}"

    assert (site.path / "releases" / "1" / "index.html").read_bytes() == b"<h1>1</h1>"
    assert (site.path / "releases" / "2" / "shop-2" / "index.html").read_bytes() == b"<h1>2</h1>"
    assert (site.path / "releases" / "2" / "shop-2" / "static").is_dir()
    assert (site.path / "current" / "shop-3.jar").read_bytes() == b"PK-not-really-a-jar"
    assert server.hits == {"/files/shop-1.tgz": 1, "/files/shop-2.zip": 1, "/files/shop-3.jar": 1}


def test_release_dir_zip_from_file_uri_with_strip_components(site, tmp_path):
    file = make_zip(tmp_path / "build" / "shop.zip", {"shop/run.txt": b"run", "shop/conf/app.ini": b"[app]"})
    result, _ = site.install("2.0", file, strip_components=1)
    assert result.status == StepStatus.SUCCEEDED
    assert (site.path / "current" / "run.txt").read_bytes() == b"run"
    assert (site.path / "current" / "conf" / "app.ini").read_bytes() == b"[app]"


def test_release_dir_explicit_path_param(tmp_path):
    file = make_tar(tmp_path / "a.tar", {"x": b"1"})
    result, _ = run("release_dir", {"path": str(tmp_path / "elsewhere")}, artifact=artifact(file.as_uri(), "1", file))
    assert result.status == StepStatus.SUCCEEDED
    assert (tmp_path / "elsewhere" / "current" / "x").read_bytes() == b"1"


def test_release_dir_second_version_then_rollback_switches_back(site):
    first, _ = site.install("1.0", site.tar("1.0"))
    second, _ = site.install("1.1", site.tar("1.1"))
    assert second.status == StepStatus.SUCCEEDED
    assert site.current() == "releases/1.1"
    assert second.state["previous"] == "1.0"
    assert first.state["previous"] is None

    result, log = site.rollback(second.state)
    assert result.status == StepStatus.SUCCEEDED
    assert site.current() == "releases/1.0"
    assert (site.path / "current" / "VERSION").read_bytes() == b"1.0"
    assert "current -> releases/1.0" in log.text
    assert site.releases() == {"1.0", "1.1"}


def test_release_dir_checkpoints_before_switching_so_a_rerun_still_knows_the_previous_release(site):
    site.install("1.0", site.tar("1.0"))
    saved: list[dict] = []
    file = site.tar("1.1")
    run("release_dir", {}, target=site.target, artifact=artifact(file.as_uri(), "1.1", file), checkpoint=saved.append)
    assert saved == [{"previous": "1.0", "previous_link": "releases/1.0", "version": "1.1", "path": str(site.path)}]
    # The worker died after the switch, before it could report: the re-run gets the checkpoint as its state.
    rerun, _ = run("release_dir", {}, target=site.target, artifact=artifact(file.as_uri(), "1.1", file), state=saved[0])
    assert (rerun.state["previous"], site.current()) == ("1.0", "releases/1.1")
    site.rollback(rerun.state)
    assert site.current() == "releases/1.0"


def test_release_dir_rollback_of_a_first_install_removes_current(site):
    result, _ = site.install("1.0", site.tar("1.0"))
    rolled, log = site.rollback(result.state)
    assert rolled.status == StepStatus.SUCCEEDED
    assert not (site.path / "current").exists()
    assert not (site.path / "current").is_symlink()
    assert "Removed current" in log.text


def test_release_dir_rollback_without_state_has_nothing_to_undo(site):
    result, _ = site.rollback({})
    assert result.status == StepStatus.SUCCEEDED
    assert "Nothing to undo" in result.message


def test_release_dir_rollback_leaves_a_current_switched_by_someone_else(site):
    site.install("1.0", site.tar("1.0"))
    second, _ = site.install("1.1", site.tar("1.1"))
    third, _ = site.install("1.2", site.tar("1.2"))
    result, _ = site.rollback(second.state)
    assert result.status == StepStatus.SUCCEEDED
    assert site.current() == "releases/1.2"
    assert third.state["previous"] == "1.1"


def test_release_dir_digest_mismatch_touches_nothing(site):
    site.install("1.0", site.tar("1.0"))
    file = site.tar("1.1")
    wrong = "sha256:" + "0" * 64
    result, _ = run("release_dir", {}, target=site.target, artifact=artifact(file.as_uri(), "1.1", file, wrong))
    assert result.status == StepStatus.FAILED
    assert wrong in result.message
    assert digest_of(file) in result.message
    assert result.installed is False
    assert "version" not in result.state
    assert site.current() == "releases/1.0"
    assert site.releases() == {"1.0"}
    assert site.leftovers() == []


def test_release_dir_refuses_a_tar_leading_out_of_the_tree(site, tmp_path):
    file = make_tar(tmp_path / "build" / "evil.tar.gz", {"ok.txt": b"fine", "../evil": b"pwned"})
    result, _ = site.install("6.6.6", file)
    assert result.status == StepStatus.FAILED
    assert "tar" in result.message
    assert not (site.path / "releases" / "evil").exists()
    assert not (site.path / "evil").exists()
    assert list(tmp_path.rglob("evil")) == []
    assert site.current() is None
    assert site.releases() == set()
    assert site.leftovers() == []


def test_release_dir_refuses_a_tar_symlink_out_of_the_tree(site, tmp_path):
    path = tmp_path / "build" / "link.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    result, _ = site.install("1", path)
    assert result.status == StepStatus.FAILED
    assert site.releases() == set()


def test_release_dir_refuses_a_zip_leading_out_of_the_tree(site, tmp_path):
    file = make_zip(tmp_path / "build" / "evil.zip", {"ok.txt": b"fine", "../evil": b"pwned"})
    result, _ = site.install("6.6.6", file)
    assert result.status == StepStatus.FAILED
    assert "leads out of the release" in result.message
    assert list(tmp_path.rglob("evil")) == []
    assert site.releases() == set()
    assert site.leftovers() == []


def test_release_dir_rerun_of_the_same_version_is_idempotent(site):
    file = site.tar("1.0")
    first, _ = site.install("1.0", file)
    inode = (site.path / "releases" / "1.0").stat().st_ino
    file_uri_gone = artifact(file.as_uri(), "1.0", file)
    file.unlink()  # the re-run must not even need to download again
    c = ctx(target=site.target, artifact=file_uri_gone)
    again = steps.get("release_dir").run(c)
    assert again.status == StepStatus.SUCCEEDED, again.message
    assert again.installed is True
    assert (site.path / "releases" / "1.0").stat().st_ino == inode
    assert site.current() == "releases/1.0"
    assert "reusing it" in c.log.text
    # Rolling back the re-run keeps 1.0: it was already current before it.
    rolled, _ = site.rollback(again.state)
    assert rolled.status == StepStatus.SUCCEEDED
    assert site.current() == "releases/1.0"
    assert first.state["version"] == again.state["version"] == "1.0"


def test_release_dir_replaces_a_same_version_dir_with_another_digest(site):
    stale = site.path / "releases" / "1.0"
    stale.mkdir(parents=True)
    (stale / "old.txt").write_text("old")
    (stale / MARKER).write_text("sha256:" + "f" * 64)
    result, _ = site.install("1.0", site.tar("1.0"))
    assert result.status == StepStatus.SUCCEEDED
    assert not (stale / "old.txt").exists()
    assert (stale / "VERSION").read_bytes() == b"1.0"
    assert site.leftovers() == []


def test_release_dir_prunes_to_keep_but_never_current_or_previous(site):
    for version in ("a", "b", "c"):
        site.install(version, site.tar(version), keep=10)
    now = time.time()
    os.utime(site.path / "releases" / "a", (now + 1000, now + 1000))  # the newest by mtime
    os.utime(site.path / "releases" / "b", (now - 1000, now - 1000))
    os.utime(site.path / "releases" / "c", (now - 2000, now - 2000))  # current, soon previous: the oldest
    stale = site.path / "releases" / ".z.partial-abc"
    stale.mkdir()
    os.utime(stale, (now - 7200, now - 7200))
    fresh = site.path / "releases" / ".y.partial-def"
    fresh.mkdir()

    result, log = site.install("d", site.tar("d"), keep=1)
    assert result.status == StepStatus.SUCCEEDED
    assert site.releases() == {"a", "c", "d"}  # newest by mtime, previous, current
    assert "Pruned releases/b" in log.text
    assert not stale.exists()
    assert fresh.exists()


def test_release_dir_keeps_the_newest_releases(site):
    for version in ("1", "2", "3", "4", "5"):
        result, _ = site.install(version, site.tar(version), keep=2)
        assert result.status == StepStatus.SUCCEEDED
    assert site.releases() == {"4", "5"}
    assert site.current() == "releases/5"


def test_release_dir_failures_are_results_not_exceptions(site, server, tmp_path):
    file = site.tar("1")
    result, _ = run("release_dir", {}, target=site.target, artifact=None)
    assert (result.status, result.message) == (StepStatus.FAILED, "the release has no artifact")

    result, _ = run("release_dir", {}, artifact=artifact(file.as_uri(), "1", file))
    assert result.status == StepStatus.FAILED
    assert "no path" in result.message

    result, _ = run("release_dir", {}, target=site.target, artifact=artifact("s3://bucket/shop-1.tgz", "1", file))
    assert result.status == StepStatus.FAILED
    assert "'s3' is not supported" in result.message

    result, _ = run("release_dir", {}, target=site.target, artifact=artifact(server.url("/files/nope.tgz"), "1", file))
    assert result.status == StepStatus.FAILED
    assert "HTTP 404" in result.message

    missing = tmp_path / "missing.tgz"
    result, _ = run("release_dir", {}, target=site.target, artifact=artifact(missing.as_uri(), "1", file))
    assert result.status == StepStatus.FAILED
    assert "Cannot read the artifact" in result.message

    garbage = tmp_path / "build" / "garbage.tar.gz"
    garbage.write_bytes(b"not a tarball at all")
    result, _ = site.install("1", garbage)
    assert result.status == StepStatus.FAILED
    assert "tar archive" in result.message

    (site.path / "current").mkdir()  # a real directory where the symlink goes
    result, _ = site.install("1", file)
    assert result.status == StepStatus.FAILED
    assert "not a symlink" in result.message
    assert site.releases() == set()
    assert site.leftovers() == []


def test_switch_symlink_replaces_the_link_atomically(tmp_path):
    link = tmp_path / "current"
    switch_symlink(link, "releases/1")
    switch_symlink(link, "releases/2")
    assert os.readlink(link) == "releases/2"
    assert [p.name for p in tmp_path.iterdir()] == ["current"]


# ---------------------------------------------------------------------------- wait and manual_intervention


def test_wait_returns_waiting_until_the_clock_passes():
    clock = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    kind = steps.get("wait")

    first = kind.run(ctx({"seconds": 60}, now=lambda: clock[0]))
    assert first.status == StepStatus.WAITING
    assert first.resume_at == clock[0] + timedelta(seconds=60)
    assert first.state == {"until": "2026-01-01T12:01:00+00:00"}

    clock[0] += timedelta(seconds=30)
    early = kind.run(ctx({"seconds": 60}, now=lambda: clock[0], state=first.state))
    assert early.status == StepStatus.WAITING
    assert early.resume_at == first.resume_at

    clock[0] += timedelta(seconds=30)
    done = kind.run(ctx({"seconds": 60}, now=lambda: clock[0], state=early.state))
    assert done.status == StepStatus.SUCCEEDED


def test_wait_zero_succeeds_at_once_and_default_clock_is_utc():
    assert steps.get("wait").run(ctx({"seconds": 0})).status == StepStatus.SUCCEEDED
    started = time.monotonic()
    result = steps.get("wait").run(ctx({"seconds": 3600}))
    assert time.monotonic() - started < 1  # never sleeps
    assert result.status == StepStatus.WAITING
    assert result.resume_at.tzinfo is not None
    assert result.resume_at - datetime.now(UTC) > timedelta(minutes=59)


def test_manual_intervention_pauses_with_the_instructions():
    result, log = run("manual_intervention", {"instructions": "Check Grafana, then resume."})
    assert result.status == StepStatus.PAUSED
    assert result.message == "Check Grafana, then resume."
    assert "Check Grafana" in log.text
