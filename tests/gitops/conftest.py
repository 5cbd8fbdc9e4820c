"""Real environment repositories (bare git repositories on disk) and a small git provider API (the two
pull-request endpoints ReleaseHub calls, GitHub- or GitLab-shaped) for pull-mode tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apps.accounts.services import team_add_member
from apps.deployments.services import template_create
from apps.environments.services import environment_grant
from apps.gitops.services import repository_set
from apps.releases.services import release_create
from tests.factories import (
    make_application,
    make_environment,
    make_target,
    make_team,
    make_user,
    make_variable,
    register,
    unique,
)

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ release.application }}
  labels: {environment: {{ environment.slug }}}
spec:
  replicas: {{ var.REPLICAS }}
  template:
    spec:
      containers:
        - name: app
          image: "{{ artifact.uri }}@{{ artifact.digest }}"
          env: [{name: VERSION, value: "{{ release.version }}"}]
"""
WEBHOOK_SECRET = "s3cret-webhook-key"
TOKEN = "ghp_provider-token-123"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def bare_repository(path: Path) -> Path:
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    return path


def show(repo: Path, ref: str, path: str) -> str:
    """The file as committed, byte for byte."""
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"{ref}:{path}"], capture_output=True, text=True, check=True
    ).stdout


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Provider(BaseHTTPRequestHandler):
    """GitHub's POST/GET /repos/{owner}/{name}/pulls[/{n}] and GitLab's /api/v4/projects/{id}/merge_requests."""

    server: ProviderServer

    def _reply(self, status: int, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _shape(self, number: int) -> dict:
        pull = self.server.pulls[number]
        if "/merge_requests" in self.path:
            state = {"open": "opened"}.get(pull["state"], pull["state"])
            return {"iid": number, "web_url": pull["url"], "state": state, "merge_commit_sha": pull["merge_commit"]}
        merged = pull["state"] == "merged"
        state = "open" if pull["state"] == "open" else "closed"
        return {
            "number": number,
            "html_url": pull["url"],
            "state": state,
            "merged": merged,
            "merge_commit_sha": pull["merge_commit"],
        }

    def do_POST(self) -> None:
        self.server.calls.append(("POST", self.path, dict(self.headers)))
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        number = len(self.server.pulls) + 1
        self.server.pulls[number] = {
            "state": "open",
            "url": f"{self.server.url}/pull/{number}",
            "merge_commit": None,
            "request": data,
        }
        self._reply(201, self._shape(number))

    def do_GET(self) -> None:
        self.server.calls.append(("GET", self.path, dict(self.headers)))
        if self.path.startswith("/health"):
            body = self.server.health.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        number = int(self.path.rstrip("/").rsplit("/", 1)[1])
        if number not in self.server.pulls:
            self._reply(404, {"message": "Not Found"})
            return
        self._reply(200, self._shape(number))

    def log_message(self, *args) -> None:
        pass


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Provider)
        self.pulls: dict[int, dict] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self.health = "version: none"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def provider():
    server = ProviderServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class Scene:
    repo: Path
    team: object
    deployer: object
    approver: object
    application: object
    template: object
    environments: dict = field(default_factory=dict)
    releases: dict = field(default_factory=dict)

    def release(self, version: str):
        if version not in self.releases:
            artifact = register(
                self.application, version, by=self.deployer, uri=f"oci://registry.example.com/shop:{version}"
            )
            self.releases[version] = release_create(actor=None, application=self.application, artifacts=[artifact])
        return self.releases[version]

    def environment(self, slug: str, **repository):
        environment = make_environment(self.team, unique(slug))
        environment_grant(actor=None, environment=environment, team=self.team, action="deploy")
        make_target(environment, "cluster-eu")
        make_variable(environment, "REPLICAS", "3")
        make_variable(environment, "WEBHOOK_SECRET", WEBHOOK_SECRET, secret=True)
        make_variable(environment, "GIT_TOKEN", TOKEN, secret=True)
        fields = {
            "url": str(self.repo),
            "branch": "main",
            "path": f"{slug}/shop.yaml",
            "manifest_template": MANIFEST,
            "webhook_secret_variable": "WEBHOOK_SECRET",
            **repository,
        }
        repository_set(actor=None, environment=environment, **fields)
        self.environments[slug] = environment
        return environment


def gitops_template(**params):
    steps = [{"name": "Commit manifest", "kind": "gitops_commit", "params": params}]
    return template_create(actor=None, slug=unique("gitops"), name="GitOps", steps=steps)


@pytest.fixture
def scene(tmp_path, transactional_db):
    """A bare repository, a team with a deployer, an application; environments made with scene.environment()."""
    team = make_team()
    deployer = make_user(unique("deployer"), first_name="Dana", last_name="Deployer")
    team_add_member(actor=None, team=team, user=deployer)
    approver = make_user(unique("approver"), first_name="Avery", last_name="Approver")
    return Scene(
        repo=bare_repository(tmp_path / "environments.git"),
        team=team,
        deployer=deployer,
        approver=approver,
        application=make_application(team, unique("shop")),
        template=gitops_template(),
    )


class _SmartHTTP(BaseHTTPRequestHandler):
    """git's smart HTTP protocol (git http-backend as a CGI program) behind HTTP basic auth."""

    server: GitHTTPServer

    def _serve(self) -> None:
        expected = "Basic " + base64.b64encode(f"x-access-token:{self.server.token}".encode()).decode()
        self.server.authorizations.append(self.headers.get("Authorization", ""))
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        environ = {
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "x-access-token",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "PATH": "/usr/bin:/bin",
        }
        done = subprocess.run(
            ["git", "http-backend"], input=self.rfile.read(length), env=environ, capture_output=True, check=False
        )
        head, _, body = done.stdout.partition(b"\r\n\r\n")
        headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line]
        status = next((int(value.split()[0]) for name, value in headers if name == "Status"), 200)
        self.send_response(status)
        for name, value in headers:
            if name != "Status":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _serve

    def log_message(self, *args) -> None:
        pass


class GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _SmartHTTP)
        self.root, self.token = root, token
        self.authorizations: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def git_http(scene):
    """The scene's repository served over HTTP at {url}/environments.git, for the token TOKEN only."""
    server = GitHTTPServer(scene.repo.parent, TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class SSHServer:
    port: int
    private_key: str
    user: str
    known_hosts: str  # the server's host key, as a known_hosts line


@pytest.fixture
def sshd(tmp_path):
    """OpenSSH's sshd on a free local port, letting in the holder of a fresh key as the current user."""
    import getpass
    import os
    import shutil
    import socket
    import time

    from tests.conftest import require

    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    require(os.path.exists(binary), "OpenSSH's sshd (Debian: openssh-server) is not installed")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege separation directory
    directory = tmp_path / "sshd"
    directory.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True)
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPidFile {directory / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\n"
    )
    process = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None:
            raise AssertionError(f"sshd stopped: {process.stderr.read()}")
        time.sleep(0.1)
    host_key = (directory / "host_key.pub").read_text().split()
    known = f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n"
    yield SSHServer(port, (directory / "client_key").read_text(), getpass.getuser(), known)
    process.terminate()
    process.wait(timeout=10)
