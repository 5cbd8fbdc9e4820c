"""The error body of API.md for every kind of failure; never a 500 for bad input."""

import pytest
from django.test import override_settings

TOKENS = "/api/v1/tokens/"


def test_400_has_fields(session_client):
    response = session_client.post(TOKENS, {"name": "", "scopes": ["nope"]})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "detail": "Invalid input.",
        "fields": {"name": ["This field may not be blank."], "scopes.0": ['"nope" is not a valid choice.']},
    }


def test_400_for_malformed_json(session_client):
    response = session_client.generic("POST", TOKENS, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert set(response.json()) == {"error", "detail"}


def test_400_for_a_body_that_is_not_an_object(session_client):
    response = session_client.post(TOKENS, ["a", "list"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_401(api_client, db):
    response = api_client.get(TOKENS)
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated", "detail": "Authentication credentials were not provided."}


def test_403(api_client, user, make_token):
    _, raw = make_token(user, scopes=["read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.get(TOKENS)
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert set(response.json()) == {"error", "detail"}


def test_404(session_client):
    response = session_client.delete(f"{TOKENS}999999/")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not found."}


def test_404_for_unknown_api_path_is_json(session_client):
    response = session_client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No API endpoint at /api/v1/nothing-here/."}


def test_405(session_client):
    response = session_client.put(TOKENS, {})
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_409_from_a_domain_error(session_client, user, make_token):
    token, _ = make_token(user)
    session_client.delete(f"{TOKENS}{token.pk}/")
    response = session_client.delete(f"{TOKENS}{token.pk}/")
    assert response.json() == {"error": "conflict", "detail": "This token is already revoked."}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_413_for_an_oversized_body(session_client):
    response = session_client.post(TOKENS, {"name": "x" * 2000, "scopes": ["read"]})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_415_for_form_posts(session_client):
    response = session_client.post(TOKENS, "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize("path", ["/no-such-page/", "/audit/nope/"])
def test_html_404_page(client, user, path):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
