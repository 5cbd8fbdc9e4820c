"""The token endpoints of API.md: create (shown once), list (never the secret), revoke."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, hash_secret
from apps.audit.models import AuditEvent

URL = "/api/v1/tokens/"


def test_create_returns_the_token_once_and_stores_only_a_hash(session_client, user):
    response = session_client.post(URL, {"name": "GitHub Actions", "scopes": ["artifacts:write", "read"]})
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    assert raw.startswith(f"rh_{body['prefix']}_")
    token = ApiToken.objects.get(pk=body["id"])
    assert token.user == user
    assert token.scopes == ["artifacts:write", "read"]
    assert token.secret_hash == hash_secret(raw.split("_", 2)[2])
    assert raw.split("_", 2)[2] not in str(ApiToken.objects.values().get(pk=token.pk))
    # Default expiry: 90 days.
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)
    # The listing never shows it again.
    listed = session_client.get(URL).json()
    assert listed["count"] == 1
    assert "token" not in listed["results"][0]
    assert raw not in str(listed)
    event = AuditEvent.objects.get(verb="token.created")
    assert (event.actor, event.channel, event.object_id) == (user, "api", str(token.pk))
    assert raw not in str(event.details)


def test_created_token_works_with_its_scopes(session_client):
    raw = session_client.post(URL, {"name": "reader", "scopes": ["read"], "expires_at": None}).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/audit-events/").status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["admin"]}, "scopes.0"),
        ({"name": "x", "scopes": "read"}, "scopes"),
        ({"name": "x" * 101, "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": ["read"], "expires_at": "yesterday"}, "expires_at"),
        ({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "   ", "scopes": ["read"]}, "name"),
    ],
)
def test_create_rejects_bad_input_with_field_errors(session_client, payload, field):
    response = session_client.post(URL, payload)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"], body
    assert ApiToken.objects.count() == 0


def test_list_shows_only_own_tokens(session_client, user, other_user, make_token):
    make_token(user, name="mine")
    make_token(other_user, name="theirs")
    names = [t["name"] for t in session_client.get(URL).json()["results"]]
    assert names == ["mine"]


def test_list_runs_a_constant_number_of_queries(session_client, user, make_token, django_assert_max_num_queries):
    for i in range(3):
        make_token(user, name=f"t{i}")
    with django_assert_max_num_queries(6) as few:
        session_client.get(URL)
    for i in range(30):
        make_token(user, name=f"u{i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert session_client.get(URL).json()["count"] == 33


def test_revoke(session_client, user, make_token):
    token, _ = make_token(user)
    assert session_client.delete(f"{URL}{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert session_client.get(URL).json()["results"][0]["status"] == "revoked"
    again = session_client.delete(f"{URL}{token.pk}/")
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    assert AuditEvent.objects.filter(verb="token.revoked", object_id=str(token.pk)).count() == 1


def test_cannot_see_or_revoke_someone_elses_token(session_client, other_user, make_token):
    token, _ = make_token(other_user)
    response = session_client.delete(f"{URL}{token.pk}/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    token.refresh_from_db()
    assert token.revoked_at is None


def test_session_writes_need_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(URL, {"name": "x", "scopes": ["read"]}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert ApiToken.objects.count() == 0


def test_anonymous_gets_401(api_client, db):
    assert api_client.get(URL).status_code == 401
    assert api_client.post(URL, {"name": "x", "scopes": ["read"]}).status_code == 401
