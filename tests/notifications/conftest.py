"""A local HTTP server standing in for webhook receivers and chat services, and helpers to wait for deliveries."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.notifications.models import Delivery

SECRET = "whsec-0123456789abcdef-local"
FINAL = {"sent", "gave_up"}


@dataclass
class Received:
    """One request the server got: path, headers, the raw body, and whether its signature matched the secret."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool = field(default=False)


class _Handler(BaseHTTPRequestHandler):
    server: HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # The receiver's side of the scheme: recompute the HMAC of the exact bytes received.
        expected = "sha256=" + hmac.new(self.server.secret.encode(), body, hashlib.sha256).hexdigest()
        signature = self.headers.get("X-ReleaseHub-Signature-256", "")
        with self.server.lock:
            self.server.received.append(
                Received(self.path, dict(self.headers.items()), body, hmac.compare_digest(expected, signature))
            )
            status = self.server.statuses.pop(0) if self.server.statuses else self.server.default_status
        answer = b"ok" if status < 300 else b"receiver broke"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


class HookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = SECRET
        self.statuses: list[int] = []  # answered in order, then default_status
        self.default_status = 200
        self.received: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture
def hook_server():
    """A local receiver: records every POST and checks its X-ReleaseHub-Signature-256 against SECRET."""
    server = HookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_retries(settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0


def wait_for_deliveries(count: int, timeout: float = 30, **filters) -> list[Delivery]:
    """Poll until `count` deliveries matching `filters` are sent or given up; they are returned oldest first."""
    deadline = time.monotonic() + timeout
    deliveries: list[Delivery] = []
    while time.monotonic() < deadline:
        deliveries = list(Delivery.objects.filter(**filters).order_by("id"))
        if len(deliveries) >= count and all(d.status in FINAL for d in deliveries):
            return deliveries
        time.sleep(0.1)
    raise AssertionError(
        f"deliveries still open after {timeout}s: {[(d.pk, d.status, d.attempts) for d in deliveries]}"
    )


def send_pending() -> list[Delivery]:
    """Run every open delivery's attempts in this thread (what the worker does), for tests without a worker."""
    from apps.notifications.services import delivery_attempt

    for delivery_id in (
        Delivery.objects.filter(status__in=["pending", "failed"]).order_by("id").values_list("pk", flat=True)
    ):
        while delivery_attempt(delivery_id=delivery_id) is not None:
            pass
    return list(Delivery.objects.order_by("id"))
