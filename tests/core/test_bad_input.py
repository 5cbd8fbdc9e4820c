"""Input the schemathesis run found (or came close to) that used to answer 500: each one is a 400 now.

API.md: "Never 500 for bad input". Both databases matter: SQLite failed on some of these,
PostgreSQL on others.
"""

from datetime import datetime, timedelta, timezone

import pytest

AUDIT = "/api/v1/audit-events/"
TOKENS = "/api/v1/tokens/"


@pytest.mark.parametrize("url", [AUDIT, f"{AUDIT}export/"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC: SQLite's adapter overflowed
        ("until", "9999-12-31T23:59:59-01:00"),  # after year 9999 in UTC
    ],
)
def test_time_filters_out_of_range_are_400(session_client, url, name, value):
    response = session_client.get(url, {name: value})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert name in response.json()["fields"]


@pytest.mark.parametrize("value", ["0032-03-21T09:56:46.6+17:30", "2030-01-01T00:00:00-23:59"])
def test_time_filters_take_any_iso_offset(session_client, value):
    """PostgreSQL refuses offsets beyond ±15:59; the filter hands it UTC."""
    response = session_client.get(AUDIT, {"since": value})
    assert response.status_code == 200


@pytest.mark.parametrize("hours", [5, 17.5, -23])
def test_time_filters_compare_the_instant_whatever_the_offset(session_client, hours):
    """The session_client fixture's login is the one event; the bounds name its instant at other offsets."""
    at = datetime.fromisoformat(session_client.get(AUDIT).json()["results"][0]["at"])
    elsewhere = at.astimezone(timezone(timedelta(hours=hours))).isoformat()
    assert session_client.get(AUDIT, {"since": elsewhere}).json()["count"] == 1
    assert session_client.get(AUDIT, {"until": elsewhere}).json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "\\ud800", "scopes": ["read"]}',  # a lone surrogate: no database or response encodes it
        '{"name": "x", "scopes": ["read"], "\\udfff": 1}',  # also as a key
        "[" * 100_000 + "]" * 100_000,  # nested deeper than Python's json module recurses
    ],
    ids=["lone-surrogate-value", "lone-surrogate-key", "deep-nesting"],
)
def test_unparsable_json_is_400(session_client, body):
    response = session_client.post(TOKENS, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_surrogate_pairs_are_fine(session_client):
    response = session_client.post(
        TOKENS, data='{"name": "rocket \\ud83d\\ude80", "scopes": ["read"]}', content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["name"] == "rocket \U0001f680"


@pytest.mark.parametrize("token", ["rh_\x00abc_secret", "rh_ABCDEF12_secret", "rh_0123456789_secret"])
def test_malformed_token_prefix_is_401(api_client, db, token):
    """PostgreSQL refused a NUL in the prefix lookup (500); a prefix that is not 8 hex digits is never looked up."""
    response = api_client.get(AUDIT, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "detail": "Invalid token."}


@pytest.mark.parametrize("page", ["0", "999", "abc"])
def test_page_out_of_range_is_a_documented_404(session_client, page):
    """DRF's pagination answers 404 for such pages; the schema says so for every paginated list."""
    from drf_spectacular.generators import SchemaGenerator

    response = session_client.get(AUDIT, {"page": page})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in (AUDIT, TOKENS):
        assert "404" in paths[path]["get"]["responses"]
    assert "404" not in paths[f"{AUDIT}export/"]["get"]["responses"]  # not paginated
