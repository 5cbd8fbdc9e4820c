"""Schemathesis over the whole OpenAPI schema: no 5xx, and every response as the schema documents it.

The schema is the one the app serves at /api/schema/, loaded in-process from the WSGI
application, and every operation in it is called in-process too (see conftest.py), twice:

- with an API token holding every scope (`Authorization: Bearer`), as CI systems call;
- with a signed-in browser session (cookie + CSRF), as the UI calls, which is the only way
  /api/v1/tokens/ answers anything but 403.

Each operation gets positive (schema-valid) and negative (schema-violating) requests from
schemathesis' examples, coverage and fuzzing phases; RELEASEHUB_FUZZ_EXAMPLES raises the
number of fuzzed examples for a longer local run (`RELEASEHUB_FUZZ_EXAMPLES=500 make fuzz`).

Checks, and the built-in ones left out, with why:

- not_a_server_error, status_code_conformance, content_type_conformance,
  response_schema_conformance, response_headers_conformance: the issue's requirement.
  An undocumented status or a body that breaks its schema is a bug of the app or of its
  schema annotations (apps/core/schema.py documents the error responses), never excluded.
- unsupported_method, allow_header_conformance: methods outside the schema answer 405 (or
  401/403 before dispatch), and OPTIONS advertises exactly the documented methods.
- ignored_auth (token run only): re-sends each successful call without credentials and with
  invalid ones, and expects 401/403. The session run passes its cookie as a transport cookie,
  which the check cannot tell from a generated one, so it would report the session itself.
- Left out: negative_data_rejection. It expects a 4xx for every schema-violating request,
  but the API is lenient with query parameters by design, in django-filter's and DRF's
  convention: an empty filter (`?until=`, `?channel=`, as the audit page's filter form
  sends them) means "no filter", and a `page_size` that is not a number falls back to the
  default. Negative requests are still sent: they must not cause a 5xx and their error
  responses must match the schema.
- Left out: positive_data_acceptance. It expects a 2xx for every schema-valid request, but
  rules the schema cannot state answer 400 by design: a token's `expires_at` must lie in
  the future, its name must not be blank once trimmed.
- Left out: stateful and object-level checks (use_after_free, ensure_resource_availability,
  object_level_authorization): they need schemathesis' stateful phase and links between
  operations, which this per-operation run does not have.
"""

import os
from datetime import datetime, timedelta, timezone

import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from apps.audit.services import audit_record
from apps.core.context import Channel, acting
from releasehub.wsgi import application

# Date-times across the whole range RFC 3339 can write (years 1 to 9999), at every UTC offset
# (±23:59), and often within a day of either end: where the database layer broke (year 1 at
# +01:00 is before year 1 in UTC), as did offsets beyond ±15:59 on PostgreSQL.
_OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda minutes: timezone(timedelta(minutes=minutes)))
_FIRST, _LAST = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)
_DATE_TIMES = st.one_of(
    st.datetimes(_FIRST, _LAST, timezones=_OFFSETS),
    st.datetimes(_FIRST, _FIRST + timedelta(days=1), timezones=_OFFSETS),
    st.datetimes(_LAST - timedelta(days=1), _LAST, timezones=_OFFSETS),
)
schemathesis.openapi.format("date-time", _DATE_TIMES.map(lambda value: value.isoformat().replace("+00:00", "Z")))

# The schema view touches no database, so loading it while collecting is fine.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
    allow_header_conformance,
]

FUZZ = settings(
    max_examples=int(os.environ.get("RELEASEHUB_FUZZ_EXAMPLES", "40")),
    deadline=None,  # the first request of a test pays for URL resolving and imports
    database=None,  # no .hypothesis/ folder in the work tree; failures print their reproduction
    # The same examples on every run, so CI is reproducible; RELEASEHUB_FUZZ_RANDOM=1 explores new ones.
    derandomize=os.environ.get("RELEASEHUB_FUZZ_RANDOM") != "1",
    # The fixtures (user, token, session) are made once per operation and shared by its
    # examples on purpose; rows the examples make (tokens, audit events) stay until the end
    # of the test, so later examples meet them, as a real client would.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@schema.parametrize()
@FUZZ
def test_api_with_token(case, token_auth):
    case.call_and_validate(checks=[*CHECKS, ignored_auth], **token_auth)


@schema.parametrize()
@FUZZ
def test_api_with_session(case, session_auth):
    # Schemathesis generates values for every declared security scheme; a generated bearer
    # token would take precedence over the session (and rightly answer 401) on every call.
    for name in [name for name in case.headers if name.lower() == "authorization"]:
        del case.headers[name]
    case.call_and_validate(checks=CHECKS, **session_auth)


# --- Responses the fuzzer rarely or never provokes, checked against the same schema ---------------

RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def call(method: str, path: str, auth: dict, expected: int, **case):
    """One hand-made call of a schema operation, validated like the generated ones."""
    response = schema[path][method].Case(**case).call_and_validate(checks=RESPONSE_CHECKS, **auth)
    assert response.status_code == expected, response.text
    return response


def test_token_management_answers_as_documented(session_auth, fuzz_user, make_token):
    token, _ = make_token(fuzz_user)
    one = "/api/v1/tokens/{id}/"
    call("DELETE", one, session_auth, 204, path_parameters={"id": token.pk})
    call("DELETE", one, session_auth, 409, path_parameters={"id": token.pk})  # already revoked
    call("DELETE", one, session_auth, 404, path_parameters={"id": token.pk + 1000})
    body = {"name": "deploy bot", "scopes": ["read", "deployments:write"], "expires_at": None}
    created = call("POST", "/api/v1/tokens/", session_auth, 201, body=body).json()
    assert created["token"].startswith(f"rh_{created['prefix']}_")
    listed = call("GET", "/api/v1/tokens/", session_auth, 200, query={"name": "deploy bot"}).json()
    assert [t["id"] for t in listed["results"]] == [created["id"]]
    call("GET", "/api/v1/tokens/", session_auth, 404, query={"page": 2})
    call("POST", "/api/v1/tokens/", session_auth, 413, body={**body, "name": "x" * 3_000_000})
    without_csrf = {"cookies": session_auth["cookies"]}
    call("POST", "/api/v1/tokens/", without_csrf, 403, body=body)


def test_audit_and_refusals_answer_as_documented(token_auth, fuzz_user, settings):
    with acting(channel=Channel.UI, user=fuzz_user, ip="192.0.2.1"):
        audit_record(verb="fuzz.seeded", object_type="test.thing", object_id=1, details={"k": ["v", 1, None]})
    events = call("GET", "/api/v1/audit-events/", token_auth, 200, query={"verb": "fuzz.seeded"}).json()["results"]
    assert len(events) == 1
    call("GET", "/api/v1/audit-events/{id}/", token_auth, 200, path_parameters={"id": events[0]["id"]})
    call("GET", "/api/v1/audit-events/{id}/", token_auth, 404, path_parameters={"id": events[0]["id"] + 1000})
    csv = call("GET", "/api/v1/audit-events/export/", token_auth, 200, query={"format": "csv"})
    assert csv.headers["content-type"] == ["text/csv"]
    call("GET", "/api/v1/audit-events/export/", token_auth, 200, query={"format": "json"})
    call("GET", "/api/v1/tokens/", token_auth, 403)  # tokens are managed from a session only
    call("GET", "/api/v1/audit-events/", {}, 401)
    call("GET", "/api/v1/audit-events/", {"headers": {"Authorization": "Bearer rh_00000000_nope"}}, 401)
    settings.API_TOKEN_RATE = "1/min"
    cache.clear()  # the throttle's request history
    call("GET", "/api/v1/audit-events/", token_auth, 200)
    call("GET", "/api/v1/audit-events/", token_auth, 429)
