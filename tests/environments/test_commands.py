"""`manage.py rotate_encryption_key`: re-encrypt every secret with the first configured key."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.core import crypto
from apps.environments.models import Variable
from tests.factories import make_environment, make_team, make_variable


@pytest.fixture
def keys(settings, db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.RELEASEHUB_ENCRYPTION_KEY = old
    environment = make_environment(make_team("payments"), "payments-dev")
    make_variable(environment, "DB_PASSWORD", "pw", secret=True)
    make_variable(environment, "API_KEY", "key", secret=True)
    make_variable(environment, "LOG_LEVEL", "info")
    return settings, old, new


def test_rotate_encryption_key(keys):
    settings, old, new = keys
    before = dict(Variable.objects.filter(secret=True).values_list("name", "value"))
    settings.RELEASEHUB_ENCRYPTION_KEY = f"{new},{old}"
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "Re-encrypted 2 secret(s)" in out.getvalue()
    settings.RELEASEHUB_ENCRYPTION_KEY = new
    after = dict(Variable.objects.filter(secret=True).values_list("name", "value"))
    assert all(after[name] != before[name] for name in before)
    assert {name: crypto.decrypt(value) for name, value in after.items()} == {"DB_PASSWORD": "pw", "API_KEY": "key"}
    event = AuditEvent.objects.get(verb="secrets.rotated", object_type="environments.variable")
    assert (event.channel, event.actor_name, event.details) == ("cli", "system", {"count": 2})


def test_rotate_encryption_key_refuses_when_a_key_is_missing(keys):
    settings, _, new = keys
    before = dict(Variable.objects.values_list("pk", "value"))
    settings.RELEASEHUB_ENCRYPTION_KEY = new  # the old key was dropped too early
    with pytest.raises(CommandError, match="none of the configured keys"):
        call_command("rotate_encryption_key", stdout=io.StringIO())
    assert dict(Variable.objects.values_list("pk", "value")) == before


def test_rotate_encryption_key_with_nothing_to_do(settings, db):
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "Re-encrypted 0 secret(s)" in out.getvalue()
