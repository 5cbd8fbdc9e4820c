"""`Idempotency-Key` on POST (apps.core.idempotency): replay, reuse with another body, in flight, expiry."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from apps.catalog.models import Artifact
from apps.core.idempotency import purge_expired
from apps.core.models import IdempotencyKey
from apps.environments.models import Environment, Target
from tests.conftest import on_postgres
from tests.factories import (
    bearer_client,
    digest_of,
    make_application,
    make_environment,
    make_team,
    make_user,
    session_client,
)

ARTIFACTS = "/api/v1/artifacts/"


def artifact(version="1.0.0", **overrides) -> dict:
    return {
        "application": "payments-api",
        "version": version,
        "digest": digest_of(f"payments-api@{version}"),
        "uri": f"https://artifacts.example.com/{version}.tgz",
        **overrides,
    }


@pytest.fixture
def bot(db):
    bot = make_user("ci-bot")
    team = make_team("payments", members=(bot,))
    make_application(team, "payments-api")
    make_environment(team, "payments-dev")
    return bot


@pytest.fixture
def ci(bot):
    return bearer_client(bot, scopes=("artifacts:write", "config:write", "read"))


def test_same_key_same_body_replays_the_stored_response(ci):
    first = ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="build-123")
    replay = ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="build-123")
    assert (first.status_code, replay.status_code) == (201, 201)  # a plain repeat would be a 200
    assert replay["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert replay.json() == first.json()
    assert Artifact.objects.count() == 1
    assert AuditEvent.objects.filter(verb="artifact.registered").count() == 1


def test_replay_of_a_create_that_would_now_conflict(ci):
    """Without the key, creating the same target twice is a 409; with it, the client gets its 201 again."""
    url = "/api/v1/environments/payments-dev/targets/"
    body = {"name": "web-1", "address": "10.0.0.1"}
    first = ci.post(url, body, HTTP_IDEMPOTENCY_KEY="t-1")
    assert ci.post(url, body, HTTP_IDEMPOTENCY_KEY="t-1").json() == first.json()
    assert ci.post(url, body).status_code == 409
    assert Target.objects.count() == 1


def test_same_key_other_body_is_422(ci):
    ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="build-123")
    response = ci.post(ARTIFACTS, artifact("1.0.1"), HTTP_IDEMPOTENCY_KEY="build-123")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert list(Artifact.objects.values_list("version", flat=True)) == ["1.0.0"]


def test_same_key_other_endpoint_is_422(ci):
    ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="k")
    response = ci.post(
        "/api/v1/environments/payments-dev/targets/", {"name": "a", "address": "b"}, HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 422
    assert not Target.objects.exists()


def test_same_key_while_the_first_request_is_in_flight_is_409(ci, bot):
    """The first request's claim is recorded before its work starts, without a response yet."""
    first = ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="done")
    claim = IdempotencyKey.objects.get(key="done")
    IdempotencyKey.objects.create(user=bot, key="running", fingerprint=claim.fingerprint)
    response = ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="running")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert first.status_code == 201
    assert IdempotencyKey.objects.get(key="running").response_status is None  # still the first request's


def test_a_failed_request_forgets_its_key(ci):
    bad = ci.post(ARTIFACTS, artifact(digest="sha256:nope"), HTTP_IDEMPOTENCY_KEY="retry-me")
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="retry-me")
    assert fixed.status_code == 201
    conflict = ci.post(ARTIFACTS, artifact(digest=digest_of("other")), HTTP_IDEMPOTENCY_KEY="other-key")
    assert conflict.status_code == 409
    assert not IdempotencyKey.objects.filter(key="other-key").exists()


def test_keys_belong_to_their_user(ci, bot):
    other = make_user("ci-2")
    team = bot.groups.get().team
    team.group.user_set.add(other)
    theirs = bearer_client(other, scopes=("artifacts:write",))
    assert ci.post(ARTIFACTS, artifact("1.0.0"), HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    response = theirs.post(ARTIFACTS, artifact("1.0.1"), HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert IdempotencyKey.objects.filter(key="shared").count() == 2


@pytest.mark.parametrize("key", ["x" * 256, "tab\there", "nul\x00"])
def test_malformed_keys_are_400(ci, key):
    response = ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert not Artifact.objects.exists()


def test_an_expired_key_starts_afresh(ci, settings):
    ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL + 1))
    again = ci.post(ARTIFACTS, artifact(), HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 200  # processed again: the artifact exists, so 200, not the replayed 201
    assert "Idempotent-Replayed" not in again
    assert IdempotencyKey.objects.get().response_status == 200


def test_purge_expired(ci, settings):
    ci.post(ARTIFACTS, artifact("1.0.0"), HTTP_IDEMPOTENCY_KEY="a")
    ci.post(ARTIFACTS, artifact("1.0.1"), HTTP_IDEMPOTENCY_KEY="b")
    IdempotencyKey.objects.filter(key="a").update(
        created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL + 1)
    )
    assert purge_expired() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["b"]


def test_session_posts_honour_the_key_too(db):
    root = make_user("root", is_staff=True, is_superuser=True)
    team = make_team("payments")
    client = session_client(root)
    body = {"slug": "prod", "name": "Prod", "owner_team": team.slug}
    first = client.post("/api/v1/environments/", body, HTTP_IDEMPOTENCY_KEY="e-1")
    replay = client.post("/api/v1/environments/", body, HTTP_IDEMPOTENCY_KEY="e-1")
    assert (first.status_code, replay.status_code, replay["Idempotent-Replayed"]) == (201, 201, "true")
    assert Environment.objects.count() == 1


def test_requests_without_a_key_are_not_recorded(ci):
    ci.post(ARTIFACTS, artifact())
    assert not IdempotencyKey.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(
    not on_postgres(), reason="holds PostgreSQL's audit-chain advisory lock to keep a request in flight"
)
@pytest.mark.django_db(transaction=True)
def test_a_real_request_in_flight(live_server):
    """The first request is held inside its transaction (it waits for the audit chain's lock, which this test
    holds); a second request with the same key meanwhile gets 409; once the first finishes, a third is replayed."""
    from apps.audit.services import _CHAIN_LOCK_KEY

    bot = make_user("ci-bot")
    make_application(make_team("payments", members=(bot,)), "payments-api")
    _, raw = token_create(user=bot, name="ci", scopes=["artifacts:write", "read"])
    url = f"{live_server.url}{ARTIFACTS}"
    headers = {"Authorization": f"Bearer {raw}", "Idempotency-Key": "slow"}
    assert requests.get(url, headers=headers, timeout=30).status_code == 200  # the token's first use is audited
    outcome = {}

    def first():
        response = requests.post(url, json=artifact(), headers=headers, timeout=60)
        outcome["first"] = (response.status_code, response.json())

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_CHAIN_LOCK_KEY])
    thread = threading.Thread(target=first)
    try:
        thread.start()
        deadline = time.monotonic() + 30
        while not IdempotencyKey.objects.filter(key="slow").exists():
            assert time.monotonic() < deadline, "the first request never claimed its key"
            time.sleep(0.05)
        second = requests.post(url, json=artifact(), headers=headers, timeout=30)
        assert second.status_code == 409
        assert second.json()["error"] == "conflict"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_CHAIN_LOCK_KEY])
        thread.join(60)
    assert outcome["first"][0] == 201
    third = requests.post(url, json=artifact(), headers=headers, timeout=30)
    assert (third.status_code, third.headers["Idempotent-Replayed"]) == (201, "true")
    assert third.json() == outcome["first"][1]
    assert Artifact.objects.count() == 1
