"""API token authentication: every way a token can be good or bad, through a real endpoint."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.services import token_revoke
from apps.audit.models import AuditEvent

AUDIT_URL = "/api/v1/audit-events/"


def bearer(api_client, raw):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api_client


def test_valid_token_authenticates_as_its_user(api_client, user, make_token):
    token, raw = make_token(user)
    response = bearer(api_client, raw).get(AUDIT_URL)
    assert response.status_code == 200
    # The token's user sees their own events: this first use of the token.
    assert [e["verb"] for e in response.json()["results"]] == ["token.used"]
    assert response.json()["results"][0]["token"] == token.prefix


def test_no_credentials_is_401_with_bearer_challenge(api_client, db):
    response = api_client.get(AUDIT_URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rh_00000000_wrongsecret",
        "Bearer not-a-token",
        "Bearer",
        "Bearer a b",
        "Bearer rh_",
    ],
)
def test_wrong_or_malformed_token_is_401(api_client, user, make_token, header):
    make_token(user)
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get(AUDIT_URL)
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_right_prefix_wrong_secret_is_401(api_client, user, make_token):
    _token, raw = make_token(user)
    response = bearer(api_client, raw[:-4] + "AAAA").get(AUDIT_URL)
    assert response.status_code == 401


def test_expired_token_is_401(api_client, user, make_token):
    token, raw = make_token(user, expires_at=timezone.now() + timedelta(minutes=5))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(api_client, raw).get(AUDIT_URL)
    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "detail": "Invalid token."}


def test_revoked_token_is_401(api_client, user, make_token):
    token, raw = make_token(user)
    assert bearer(api_client, raw).get(AUDIT_URL).status_code == 200
    token_revoke(token_id=token.pk, actor=user)
    assert api_client.get(AUDIT_URL).status_code == 401


def test_token_of_deactivated_user_is_401(api_client, user, make_token):
    _, raw = make_token(user)
    user.is_active = False
    user.save()
    assert bearer(api_client, raw).get(AUDIT_URL).status_code == 401


def test_out_of_scope_token_is_403(api_client, user, make_token):
    _, raw = make_token(user, scopes=["artifacts:write"])
    response = bearer(api_client, raw).get(AUDIT_URL)
    assert response.status_code == 403
    assert response.json() == {"error": "permission_denied", "detail": "This token lacks the scope 'read'."}


def test_token_cannot_manage_tokens(api_client, user, make_token):
    _, raw = make_token(user, scopes=["read", "artifacts:write", "releases:write", "deployments:write"])
    bearer(api_client, raw)
    assert api_client.get("/api/v1/tokens/").status_code == 403
    response = api_client.post("/api/v1/tokens/", {"name": "x", "scopes": ["read"]}, format="json")
    assert response.status_code == 403
    assert ApiToken.objects.count() == 1


def test_use_updates_last_used_and_audits_new_addresses(api_client, user, make_token):
    token, raw = make_token(user)
    bearer(api_client, raw).get(AUDIT_URL, REMOTE_ADDR="10.0.0.1")
    bearer(api_client, raw).get(AUDIT_URL, REMOTE_ADDR="10.0.0.1")
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_ip == "10.0.0.1"
    bearer(api_client, raw).get(AUDIT_URL, REMOTE_ADDR="10.0.0.2")
    used = AuditEvent.objects.filter(verb="token.used").order_by("id")
    assert [(e.ip, e.channel, e.actor_id, e.token_prefix) for e in used] == [
        ("10.0.0.1", "api", user.pk, token.prefix),
        ("10.0.0.2", "api", user.pk, token.prefix),
    ]
    # Usage is bookkeeping: it adds no history rows to the token.
    assert token.history.count() == 1


@override_settings(API_TOKEN_RATE="3/min")
def test_token_is_throttled_per_token(api_client, user, make_token):
    _, raw = make_token(user)
    _, other_raw = make_token(user, name="other")
    statuses = [bearer(api_client, raw).get(AUDIT_URL).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get(AUDIT_URL)
    assert response.json()["error"] == "throttled"
    assert "Retry-After" in response
    # Another token of the same user has its own budget.
    assert bearer(api_client, other_raw).get(AUDIT_URL).status_code == 200


def test_guessing_tokens_is_limited_per_address(api_client, user, make_token, settings):
    settings.AUTH_FAILURES_PER_MINUTE = 3
    _, raw = make_token(user)
    statuses = [api_client.get(AUDIT_URL, HTTP_AUTHORIZATION="Bearer rh_00000000_guess").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Even the right token waits for the minute to pass, from that address.
    assert api_client.get(AUDIT_URL, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 429
    assert api_client.get(AUDIT_URL, HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="10.9.9.9").status_code == 200
