"""Many CI jobs registering the same build at once: one row, one audit event, every answer 200 or 201.

Real concurrency: pytest-django's live server (a thread per request, each with its own database
connection) and a pool of HTTP clients. The token is used for the first time by these requests,
so its first-use bookkeeping (an UPDATE and an audit event) races as well.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from apps.audit.services import audit_chain_check
from apps.catalog.models import Artifact
from tests.conftest import on_postgres
from tests.factories import digest_of, make_application, make_team, make_user

BODY = {
    "application": "payments-api",
    "version": "3.1.4",
    "digest": digest_of("payments-api@3.1.4"),
    "uri": "https://artifacts.example.com/payments-api/3.1.4.tar.gz",
    "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "branch": "main",
    "labels": {"team": "payments"},
}


def register_concurrently(live_server, *, requests_count: int, workers: int) -> list[tuple[int, dict | str]]:
    bot = make_user("ci-bot")
    make_application(make_team("payments", members=(bot,)), "payments-api")
    _, raw = token_create(user=bot, name="ci", scopes=["artifacts:write", "read"])
    url = f"{live_server.url}/api/v1/artifacts/"

    def post(_):
        response = requests.post(url, json=BODY, headers={"Authorization": f"Bearer {raw}"}, timeout=120)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(post, range(requests_count)))


def check(results: list[tuple[int, dict | str]]) -> None:
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 201}, [r for r in results if r[0] not in (200, 201)][:3]
    assert statuses[201] == 1
    assert Artifact.objects.count() == 1
    created = next(body for status, body in results if status == 201)
    assert all(body == created for _, body in results), "every repeat returns the stored record"
    assert AuditEvent.objects.filter(verb="artifact.registered").count() == 1
    assert not AuditEvent.objects.filter(verb="artifact.digest_mismatch").exists()
    assert audit_chain_check().ok, "concurrent appends keep the hash chain intact"


@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres(), reason="concurrency of PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_50_concurrent_registrations_make_one_artifact(live_server):
    check(register_concurrently(live_server, requests_count=50, workers=16))


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_on_any_database(live_server):
    """SQLite serializes writers (IMMEDIATE transactions, a 30 s busy timeout): no 'database is locked'."""
    check(register_concurrently(live_server, requests_count=12, workers=4))
