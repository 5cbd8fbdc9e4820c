"""Real deployment targets for engine tests: directories, artifacts (tar.gz) served by a local HTTP
server, and health endpoints whose answers a test sets."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apps.deployments.models import Deployment, DeploymentTemplate
from apps.deployments.services import template_create
from apps.environments.services import environment_grant, environment_update
from apps.releases.services import release_create
from tests.factories import make_application, make_environment, make_target, make_team, make_user, register, unique

FINAL = {"succeeded", "failed", "cancelled", "rolled_back", "rejected"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path.startswith("/version/"):  # a target serving the version its `current` holds
            link = self.server.roots.get(self.path.removeprefix("/version/"), Path("/nonexistent")) / "current"
            version = (link / "VERSION").read_text() if link.exists() else ""
            self.server.health_calls.append(self.path)
            status = 500 if not version or version in self.server.failing_versions else 200
            self._send(status, version.encode() or b"nothing installed")
            return
        if self.path == "/metrics":
            self._send(200, json.dumps(self.server.metrics).encode())
            return
        if self.path.startswith("/health/"):
            name = self.path.removeprefix("/health/")
            self.server.health_calls.append(name)
            status = 503 if name in self.server.unhealthy else 200
            self._send(status, b"ok" if status == 200 else b"down")
            return
        body = self.server.files.get(self.path)
        self._send(200 if body is not None else 404, body or b"missing", pause=self.server.slow.get(self.path, 0))

    def _send(self, status: int, body: bytes, pause: float = 0) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        self.wfile.write(body[:half])
        if pause:
            self.wfile.flush()
            time.sleep(pause)
        with contextlib.suppress(OSError):  # the client went away (a killed worker)
            self.wfile.write(body[half:])

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.unhealthy: set[str] = set()
        self.health_calls: list[str] = []
        self.slow: dict[str, float] = {}  # path -> seconds to stall in the middle of the body
        self.roots: dict[str, Path] = {}  # target name -> directory, for /version/<name>
        self.failing_versions: set[str] = set()  # /version/<name> answers 500 while one of these runs there
        self.metrics: dict = {"error_rate": 0.0}  # what /metrics answers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def http_server():
    """A local HTTP server: `files` maps paths to bodies; /health/<name> answers 503 for names in `unhealthy`."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def tarball(version: str) -> bytes:
    """A tar.gz holding VERSION and app.txt."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in (("VERSION", version), ("app.txt", f"app {version}\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Stage:
    """An environment of directory targets with health endpoints, an application with two releases."""

    server: _Server
    root: Path
    environment: object
    application: object
    targets: list
    template: DeploymentTemplate
    deployer: object
    releases: dict = field(default_factory=dict)

    def current(self, target) -> str | None:
        """The version the target's `current` symlink points at (None without one)."""
        link = self.root / target.name / "current"
        return Path(link.readlink()).name if link.is_symlink() else None

    def add_release(self, version: str, *, digest: str | None = None):
        body = tarball(version)
        self.server.files[f"/{self.application.slug}-{version}.tar.gz"] = body
        artifact = register(
            self.application,
            version,
            by=self.deployer,
            digest=digest or "sha256:" + hashlib.sha256(body).hexdigest(),
            uri=f"{self.server.url}/{self.application.slug}-{version}.tar.gz",
        )
        release = release_create(actor=None, application=self.application, artifacts=[artifact])
        self.releases[version] = release
        return release


def make_template(steps: list[dict], slug: str | None = None) -> DeploymentTemplate:
    return template_create(actor=None, slug=slug or unique("tpl"), name="Directory deploy", steps=steps)


RELEASE_DIR = [{"name": "Install", "kind": "release_dir", "params": {"keep": 3}}]


@pytest.fixture
def stage(http_server, tmp_path, transactional_db):
    """4 directory targets in one environment; releases 1.0.0 and 2.0.0 of one application."""

    def build(targets: int = 4, steps: list[dict] | None = None, versions: bool = False) -> Stage:
        """`versions`: targets answer their installed version on /version/<name> instead of /health/<name>."""
        team = make_team()
        deployer = make_user(unique("deployer"))
        from apps.accounts.services import team_add_member

        team_add_member(actor=None, team=team, user=deployer)
        environment = make_environment(team)
        environment_grant(actor=None, environment=environment, team=team, action="deploy")
        application = make_application(team)
        made = [
            make_target(
                environment,
                f"web-{i}",
                path=str(tmp_path / f"web-{i}"),
                health_check_url=f"{http_server.url}/{'version' if versions else 'health'}/web-{i}",
            )
            for i in range(1, targets + 1)
        ]
        result = Stage(
            server=http_server,
            root=tmp_path,
            environment=environment,
            application=application,
            targets=made,
            template=make_template(steps or RELEASE_DIR),
            deployer=deployer,
        )
        http_server.roots.update({t.name: tmp_path / t.name for t in made})
        result.add_release("1.0.0")
        result.add_release("2.0.0")
        return result

    return build


@pytest.fixture
def slots(stage):
    """Blue/green: targets blue-1, blue-2, green-1, green-2 serving their installed version on
    /version/<name> (500 for versions in server.failing_versions); a shell traffic hook appending each
    switch ("<slot> <weight> <targets>") to <root>/hook.log."""

    def build(**environment_fields):
        s = stage(targets=0)
        for slot in ("blue", "green"):
            for i in (1, 2):
                name = f"{slot}-{i}"
                s.server.roots[name] = s.root / name
                s.targets.append(
                    make_target(
                        s.environment,
                        name,
                        slot=slot,
                        path=str(s.root / name),
                        health_check_url=f"{s.server.url}/version/{name}",
                    )
                )
        log = s.root / "hook.log"
        command = (
            f"echo \"{{{{ traffic.slot }}}} {{{{ traffic.weight }}}} {{{{ traffic.targets | join(',') }}}}\" >> {log}"
        )
        fields = {"traffic_hook": {"kind": "shell", "params": {"command": command}}, **environment_fields}
        environment_update(actor=None, environment=s.environment, **fields)
        s.environment.refresh_from_db()
        return s

    return build


def hook_calls(s) -> list[str]:
    log = s.root / "hook.log"
    return log.read_text().splitlines() if log.exists() else []


def wait_for(deployment: Deployment, statuses=FINAL, timeout: float = 60) -> Deployment:
    """Poll the database until the deployment reaches one of `statuses`, running the beat dispatcher
    (apps.deployments.engine.runner.dispatch) as beat would, every half second."""
    from apps.deployments.engine import runner

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.refresh_from_db()
        if deployment.status in statuses:
            return deployment
        runner.dispatch()
        time.sleep(0.5)
    raise AssertionError(f"{deployment} still {deployment.status} after {timeout}s: {deployment.status_reason}")
