"""Account pages: sign-in, the token page (shown once, Post/Redirect/Get), revocation."""

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent


def test_sign_in_and_out_are_audited(client, user):
    response = client.post("/login/", {"username": "ursula", "password": "pw"})
    assert response.status_code == 302
    client.post("/logout/")
    assert list(AuditEvent.objects.order_by("id").values_list("verb", "channel")) == [
        ("user.logged_in", "ui"),
        ("user.logged_out", "ui"),
    ]


def test_wrong_password_shows_an_error(client, user):
    response = client.post("/login/", {"username": "ursula", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_token_is_shown_once_after_a_redirect(client, user):
    client.force_login(user)
    response = client.post("/account/", {"name": "CI", "scopes": ["read"], "expires_in": "never"})
    assert response.status_code == 302
    first = client.get("/account/").content.decode()
    token = ApiToken.objects.get()
    assert token.expires_at is None
    assert f"rh_{token.prefix}_" in first
    assert 'data-testid="new-token"' in first
    again = client.get("/account/").content.decode()
    assert 'data-testid="new-token"' not in again
    assert ApiToken.objects.count() == 1


def test_token_form_errors(client, user):
    client.force_login(user)
    response = client.post("/account/", {"name": "", "scopes": [], "expires_in": "7"})
    assert response.status_code == 200
    assert ApiToken.objects.count() == 0
    assert "This field is required." in response.content.decode()


def test_revoke_from_the_page(client, user, other_user, make_token):
    token, _ = make_token(user)
    theirs, _ = make_token(other_user)
    client.force_login(user)
    client.post(f"/account/tokens/{token.pk}/revoke/")
    response = client.post(f"/account/tokens/{theirs.pk}/revoke/", follow=True)
    assert "No such token." in response.content.decode()
    token.refresh_from_db()
    theirs.refresh_from_db()
    assert token.revoked_at is not None
    assert theirs.revoked_at is None


def test_pages_require_sign_in(client, db):
    for path in ["/", "/account/", "/teams/", "/releases/", "/audit/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/?next=")


def test_sign_ins_add_no_history_rows(client, user):
    before = user.history.count()
    for _ in range(3):
        client.post("/login/", {"username": "ursula", "password": "pw"})
        client.post("/logout/")
    user.refresh_from_db()
    assert user.last_login is not None
    assert user.history.count() == before


def test_failed_sign_ins_are_limited_per_address(client, user, settings):
    settings.AUTH_FAILURES_PER_MINUTE = 3
    for _ in range(3):
        assert client.post("/login/", {"username": "ursula", "password": "nope"}).status_code == 200
    refused = client.post("/login/", {"username": "ursula", "password": "pw"})
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.content.decode()
    # Another address is not affected.
    assert client.post("/login/", {"username": "ursula", "password": "pw"}, REMOTE_ADDR="10.9.9.9").status_code == 302
