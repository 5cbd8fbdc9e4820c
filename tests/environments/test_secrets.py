"""Secrets: a secret value never leaves the request that set it, except as ciphertext; key rotation.

The leak test sets secrets through the API, then looks for the plaintext everywhere it could
surface: every API response and page that shows variables, environments or the audit trail,
the stored idempotent response, a dump of the whole database (history and audit included),
session data, every log record (at DEBUG), and every SQL statement with its parameters.
"""

from __future__ import annotations

import io
import logging
import uuid

import pytest
from cryptography.fernet import Fernet
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from apps.audit.models import AuditEvent
from apps.core import crypto
from apps.core.errors import ValidationFailed
from apps.environments.models import Variable
from apps.environments.services import secrets_rotate, variable_update
from tests.factories import (
    make_environment,
    make_lifecycle,
    make_target,
    make_team,
    make_user,
    make_variable,
    session_client,
)

ENV = "/api/v1/environments/payments-dev"


@pytest.fixture
def setup(db):
    paula = make_user("paula")
    team = make_team("payments", members=(paula,))
    environment = make_environment(team, "payments-dev")
    make_target(environment, "web-1")
    make_lifecycle([[environment]], slug="main")
    root = make_user("root", is_staff=True, is_superuser=True)
    return {"paula": session_client(paula), "root": session_client(root), "environment": environment}


def pages(environment, variable_ids) -> list[str]:
    """The environment pages that exist (they are being built beside this suite)."""
    candidates = [
        ("environments:list", {}),
        ("environments:detail", {"slug": environment.slug}),
        ("environments:history", {"slug": environment.slug}),
        ("environments:access", {"slug": environment.slug}),
        ("audit:log", {}),
        *[("environments:variable-edit", {"slug": environment.slug, "pk": pk}) for pk in variable_ids],
    ]
    urls = []
    for name, kwargs in candidates:
        try:
            urls.append(reverse(name, kwargs=kwargs))
        except NoReverseMatch:
            continue
    return urls


def test_a_secret_value_appears_in_no_response_page_row_event_or_log(setup, caplog):
    first, second, override = (f"s3cret-{uuid.uuid4().hex}" for _ in range(3))
    secrets = (first, second, override)
    paula, root = setup["paula"], setup["root"]
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    texts: dict[str, str] = {}

    def keep(label: str, response) -> None:
        assert response.status_code < 500, (label, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        texts[label] = body.decode() + str(response.headers)

    with CaptureQueriesContext(connection) as queries:  # also turns on SQL logging (with parameters) at DEBUG
        create = {"name": "DB_PASSWORD", "value": first, "secret": True}
        response = paula.post(f"{ENV}/variables/", create, HTTP_IDEMPOTENCY_KEY="k-1")
        assert response.status_code == 201, response.json()
        keep("create", response)
        variable_id = response.json()["id"]
        keep("create replayed", paula.post(f"{ENV}/variables/", create, HTTP_IDEMPOTENCY_KEY="k-1"))
        keep(
            "create reused key",
            paula.post(f"{ENV}/variables/", {**create, "value": second}, HTTP_IDEMPOTENCY_KEY="k-1"),
        )
        keep("create duplicate", paula.post(f"{ENV}/variables/", create))
        keep("create bad name", paula.post(f"{ENV}/variables/", {**create, "name": "bad name"}))
        keep("create bad target", paula.post(f"{ENV}/variables/", {**create, "name": "X", "target": "no-such-target"}))
        response = paula.post(
            f"{ENV}/variables/", {"name": "DB_PASSWORD", "value": override, "secret": True, "target": "web-1"}
        )
        assert response.status_code == 201
        keep("create override", response)
        override_id = response.json()["id"]
        response = paula.patch(f"{ENV}/variables/{variable_id}/", {"value": second})
        assert response.status_code == 200
        keep("update", response)
        keep("update to plain without a value", paula.patch(f"{ENV}/variables/{variable_id}/", {"secret": False}))
        keep("update too long", paula.patch(f"{ENV}/variables/{variable_id}/", {"value": second * 5000}))

        for who, client in (("paula", paula), ("root", root)):
            for url in (
                f"{ENV}/variables/",
                f"{ENV}/variables/{variable_id}/",
                f"{ENV}/variables/{override_id}/",
                f"{ENV}/",
                f"{ENV}/targets/",
                "/api/v1/environments/",
                "/api/v1/lifecycles/",
                "/api/v1/audit-events/",
                "/api/v1/audit-events/export/?format=csv",
                "/api/v1/audit-events/export/?format=json",
                *pages(setup["environment"], [variable_id, override_id]),
            ):
                keep(f"{who} {url}", client.get(url))

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    texts["database dump"] = dump.getvalue()
    texts["sessions"] = str([session.get_decoded() for session in Session.objects.all()])
    texts["logs"] = caplog.text
    texts["sql"] = "\n".join(query["sql"] for query in queries.captured_queries)

    leaks = [(label, secret[:12]) for label, text in texts.items() for secret in secrets if secret in text]
    assert leaks == [], leaks

    # The search was not vacuous: the values are stored (encrypted), the SQL was logged, the events exist.
    stored = dict(Variable.objects.values_list("pk", "value"))
    assert crypto.decrypt(stored[variable_id]) == second
    assert crypto.decrypt(stored[override_id]) == override
    assert stored[variable_id] in texts["database dump"]
    assert '"environments.historicalvariable"' in texts["database dump"]
    assert '"audit.auditevent"' in texts["database dump"]
    assert '"core.idempotencykey"' in texts["database dump"]
    assert "environments_variable" in texts["logs"]
    assert "environments_historicalvariable" in texts["sql"]
    verbs = set(AuditEvent.objects.values_list("verb", flat=True))
    assert {"variable.created", "variable.updated"} <= verbs
    assert '"DB_PASSWORD"' in texts["root /api/v1/audit-events/export/?format=json"]


def test_a_secret_in_the_environment_history_is_ciphertext_only(setup):
    variable = make_variable(setup["environment"], "TOKEN", "plain-at-first")
    variable_update(actor=None, variable=variable, secret=True)
    variable_update(actor=None, variable=variable, value="now-secret")
    values = list(variable.history.order_by("history_id").values_list("secret", "value"))
    assert values[0] == (False, "plain-at-first")  # it was not a secret then
    assert all(secret for secret, _ in values[1:])
    assert [crypto.decrypt(value) for _, value in values[1:]] == ["plain-at-first", "now-secret"]
    assert "now-secret" not in str(AuditEvent.objects.values_list("details_json", flat=True))


# --- key rotation -----------------------------------------------------------------------------------------


@pytest.fixture
def keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.RELEASEHUB_ENCRYPTION_KEY = old
    return settings, old, new


@pytest.fixture
def secrets(keys, setup):
    environment = setup["environment"]
    target = environment.targets.get()
    values = {"DB_PASSWORD": "pw-1", "API_KEY": "key-2", "EMPTY": ""}
    made = {name: make_variable(environment, name, value, secret=True) for name, value in values.items()}
    made["OVERRIDE"] = make_variable(environment, "DB_PASSWORD", "pw-override", secret=True, target=target)
    values["OVERRIDE"] = "pw-override"
    make_variable(environment, "LOG_LEVEL", "info")
    return {name: (variable.pk, values[name]) for name, variable in made.items()}


def test_rotation_re_encrypts_every_secret_with_the_new_key(keys, secrets):
    settings, old, new = keys
    before = dict(Variable.objects.values_list("pk", "value"))
    history_before = Variable.history.count()

    settings.RELEASEHUB_ENCRYPTION_KEY = f"{new},{old}"
    assert secrets_rotate() == 4

    after = dict(Variable.objects.values_list("pk", "value"))
    for pk, _ in secrets.values():
        assert after[pk] != before[pk]
    plain = Variable.objects.get(name="LOG_LEVEL")
    assert after[plain.pk] == before[plain.pk] == "info"

    settings.RELEASEHUB_ENCRYPTION_KEY = new  # the old key dropped
    for pk, value in secrets.values():
        assert crypto.decrypt(after[pk]) == value
    settings.RELEASEHUB_ENCRYPTION_KEY = old
    for pk, _ in secrets.values():
        with pytest.raises(crypto.InvalidToken):
            crypto.decrypt(after[pk])

    event = AuditEvent.objects.get(verb="secrets.rotated")
    assert (event.details, event.actor_name) == ({"count": 4}, "system")
    assert Variable.history.count() == history_before + 4  # each re-encryption is a history row (ciphertext)


def test_rotation_with_a_secret_no_key_opens_changes_nothing(keys, secrets):
    settings, old, new = keys
    stranger = Fernet.generate_key().decode()
    settings.RELEASEHUB_ENCRYPTION_KEY = stranger
    lost = make_variable(Variable.objects.first().environment, "LOST", "gone", secret=True)
    before = dict(Variable.objects.values_list("pk", "value"))
    settings.RELEASEHUB_ENCRYPTION_KEY = f"{new},{old}"
    with pytest.raises(ValidationFailed, match="LOST"):
        secrets_rotate()
    assert dict(Variable.objects.values_list("pk", "value")) == before
    assert not AuditEvent.objects.filter(verb="secrets.rotated").exists()
    assert lost.pk in before


def test_rotation_twice_is_harmless(keys, secrets):
    settings, old, new = keys
    settings.RELEASEHUB_ENCRYPTION_KEY = f"{new},{old}"
    secrets_rotate()
    assert secrets_rotate() == 4
    settings.RELEASEHUB_ENCRYPTION_KEY = new
    stored = dict(Variable.objects.values_list("pk", "value"))
    assert {crypto.decrypt(stored[pk]) for pk, _ in secrets.values()} == {v for _, v in secrets.values()}
