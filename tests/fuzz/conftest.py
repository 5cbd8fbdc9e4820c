"""Fixtures of the schemathesis run: a caller with every token scope, and one with a browser session.

Schemathesis calls the Django WSGI application in-process (through Werkzeug's test client),
so requests run in this thread, on this test's database connection and inside the
transaction of pytest-django's `db` fixture: rows that one example creates are seen by
the next ones and rolled back after the test.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils.crypto import get_random_string

ALL_SCOPES = list(django_settings.API_TOKEN_SCOPES)


@pytest.fixture
def keep_db_connection():
    """Keep Django from closing the test's connection after each request.

    The WSGI handler closes "old" connections when a request starts and finishes; inside
    the test transaction that closes it for good. Django's own test client disconnects the
    same receivers, for the same reason.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def no_throttle(settings):
    """Hundreds of requests per test from one caller: well over API_TOKEN_RATE / API_USER_RATE."""
    settings.API_TOKEN_RATE = "1000000/min"
    settings.API_USER_RATE = "1000000/min"


@pytest.fixture
def fuzz_user(db, keep_db_connection, no_throttle, make_user):
    return make_user("fuzzer", first_name="Fuzz", last_name="Er")


@pytest.fixture
def token_auth(fuzz_user, make_token) -> dict:
    """call_and_validate() keyword arguments: `Authorization: Bearer` with a token of every scope."""
    _, raw = make_token(fuzz_user, scopes=ALL_SCOPES, name="schemathesis")
    return {"headers": {"Authorization": f"Bearer {raw}"}}


@pytest.fixture
def session_auth(fuzz_user) -> dict:
    """call_and_validate() keyword arguments: a signed-in session cookie, with CSRF cookie and header.

    The session is what /api/v1/tokens/ requires (it refuses tokens with 403); the CSRF pair
    lets unsafe methods through, so their bodies are exercised rather than refused.
    """
    client = Client()
    client.force_login(fuzz_user)
    csrf = get_random_string(32)  # a CSRF secret: the cookie and the header only have to match
    cookies = {
        django_settings.SESSION_COOKIE_NAME: client.cookies[django_settings.SESSION_COOKIE_NAME].value,
        django_settings.CSRF_COOKIE_NAME: csrf,
    }
    return {"cookies": cookies, "headers": {"X-CSRFToken": csrf}}
