from io import StringIO

from django.core.management import call_command
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, Team, User
from apps.audit.models import AuditEvent
from apps.policies.models import PolicySet


def test_no_missing_migrations(db):
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_create_api_token_prints_a_working_token(user):
    out = StringIO()
    call_command(
        "create_api_token",
        "ursula",
        "--scopes",
        "read",
        "artifacts:write",
        "--expires-in",
        "90d",
        stdout=out,
        stderr=StringIO(),
    )
    raw = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert token.scopes == ["artifacts:write", "read"]
    assert raw.startswith(f"rh_{token.prefix}_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/audit-events/").status_code == 200
    assert AuditEvent.objects.get(verb="token.created").channel == "cli"


def test_create_api_token_rejects_bad_input(user):
    import pytest
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No active user"):
        call_command("create_api_token", "nobody")
    with pytest.raises(CommandError, match="--expires-in"):
        call_command("create_api_token", "ursula", "--expires-in", "soon")


def test_ensure_admin_and_seed_demo_are_idempotent(db, monkeypatch):
    monkeypatch.setenv("RELEASEHUB_ADMIN_PASSWORD", "s3cret-pass")
    for _ in range(2):
        call_command("ensure_admin", stdout=StringIO())
        call_command("seed_demo", stdout=StringIO())
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("s3cret-pass")
    assert Team.objects.count() == 5
    assert PolicySet.objects.get().tiers == ["production"]  # once, however often it runs
    assert User.objects.get(username="dave").has_perm("audit.view_auditevent")
    assert not User.objects.get(username="alice").has_perm("audit.view_auditevent")
    assert set(User.objects.get(username="bob").groups.values_list("team__slug", flat=True)) == {
        "release-managers",
        "platform",
    }
    call_command("audit_verify", stdout=StringIO())
