"""Actor, channel and client IP reach history rows and audit events from every channel."""

import pytest
from django.test import RequestFactory, override_settings

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent
from apps.core.context import client_ip


def test_ui_request_stamps_history_and_audit(client, user):
    client.force_login(user)
    client.post("/account/", {"name": "from the UI", "scopes": ["read"], "expires_in": "30"}, REMOTE_ADDR="203.0.113.9")
    token = ApiToken.objects.get(name="from the UI")
    row = token.history.get()
    assert (row.history_user, row.history_channel, row.history_ip, row.history_type) == (user, "ui", "203.0.113.9", "+")
    event = AuditEvent.objects.get(verb="token.created")
    assert (event.actor, event.channel, event.ip) == (user, "ui", "203.0.113.9")


def test_api_request_stamps_history_and_audit(session_client, user):
    session_client.post("/api/v1/tokens/", {"name": "from the API", "scopes": ["read"]}, REMOTE_ADDR="2001:db8::1")
    row = ApiToken.objects.get(name="from the API").history.get()
    assert (row.history_user, row.history_channel, row.history_ip) == (user, "api", "2001:db8::1")


def test_cli_has_no_actor(db, make_token, user):
    token, _ = make_token(user)
    row = token.history.get()
    assert (row.history_user, row.history_channel, row.history_ip) == (None, "cli", "")
    assert AuditEvent.objects.get(verb="token.created").actor_name == "system"


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "10.0.0.1", "6.6.6.6", "10.0.0.1"),  # no trusted proxy: the header is ignored
        (1, "10.0.0.1", "198.51.100.4", "198.51.100.4"),
        (1, "10.0.0.1", "6.6.6.6, 198.51.100.4", "198.51.100.4"),  # the client cannot push its own entry
        (2, "10.0.0.1", "6.6.6.6, 198.51.100.4, 10.0.0.2", "198.51.100.4"),
        (1, "10.0.0.1", "", "10.0.0.1"),
        (1, "10.0.0.1", "not-an-ip", None),
    ],
)
def test_client_ip(proxies, remote, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(RELEASEHUB_TRUSTED_PROXIES=proxies):
        assert client_ip(request) == expected
