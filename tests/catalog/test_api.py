"""The catalog API of API.md: artifact registration (the CI contract), artifact lists and filters, applications."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.catalog.models import Application, Artifact
from tests.factories import (
    bearer_client,
    digest_of,
    make_application,
    make_team,
    make_user,
    register,
    session_client,
)

ARTIFACTS = "/api/v1/artifacts/"
APPLICATIONS = "/api/v1/applications/"
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture
def ci(db):
    """A payments CI bot (member of payments, owner of payments-api) and its token client."""
    bot = make_user("ci-bot")
    team = make_team("payments", members=(bot,))
    application = make_application(team, "payments-api", name="Payments API")
    return {"user": bot, "team": team, "application": application}


@pytest.fixture
def ci_client(ci) -> APIClient:
    return bearer_client(ci["user"], scopes=("artifacts:write", "read"))


def build(**overrides) -> dict:
    body = {
        "application": "payments-api",
        "version": "1.4.2",
        "digest": DIGEST,
        "uri": "https://artifacts.example.com/payments-api/payments-api-1.4.2.tar.gz",
        "commit": "3f2a9c1d",
        "branch": "main",
        "build_url": "https://ci.example.com/payments-api/123",
        "labels": {"team": "payments"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


# --- registration ----------------------------------------------------------------------------------


def test_register_creates_201_with_provenance(ci, ci_client):
    response = ci_client.post(ARTIFACTS, build())
    assert response.status_code == 201, response.json()
    body = response.json()
    artifact = Artifact.objects.get()
    assert body["id"] == artifact.pk
    assert {k: body[k] for k in build()} == build()
    assert body["registered_by"] == "ci-bot"
    assert body["registered_token"] == artifact.registered_token.prefix
    assert artifact.registered_by == ci["user"]
    event = AuditEvent.objects.get(verb="artifact.registered")
    assert (event.actor, event.channel, event.object_id) == (ci["user"], "api", str(artifact.pk))
    assert event.token_prefix == artifact.registered_token.prefix
    assert event.details == {"application": "payments-api", "version": "1.4.2", "digest": DIGEST, "branch": "main"}
    assert artifact.history.get().history_type == "+"


def test_register_again_is_200_with_the_same_body(ci_client):
    first = ci_client.post(ARTIFACTS, build())
    again = ci_client.post(ARTIFACTS, build())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Artifact.objects.count() == 1
    assert AuditEvent.objects.filter(verb="artifact.registered").count() == 1


def test_register_again_returns_the_stored_record_not_the_offered_one(ci_client):
    """The identity is (application, version, digest); other fields of a repeat do not rewrite history."""
    first = ci_client.post(ARTIFACTS, build()).json()
    again = ci_client.post(ARTIFACTS, build(uri="oci://elsewhere/x", labels={"other": "x"}, branch="dev"))
    assert again.status_code == 200
    assert again.json() == first


def test_same_version_other_digest_is_409_and_audited(ci, ci_client):
    ci_client.post(ARTIFACTS, build())
    response = ci_client.post(ARTIFACTS, build(digest=digest_of("tampered")))
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert "digest" in body["fields"]
    assert DIGEST in body["detail"]
    assert Artifact.objects.get().digest == DIGEST
    event = AuditEvent.objects.get(verb="artifact.digest_mismatch")
    assert event.actor == ci["user"]
    assert event.details["offered_digest"] == digest_of("tampered")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"digest": "sha256:" + "0123456789ABCDEF" * 4}, "digest"),  # upper case
        ({"digest": "sha256:" + "ab" * 31}, "digest"),  # 62 hex digits
        ({"digest": "sha256:" + "ab" * 33}, "digest"),  # 66 hex digits
        ({"digest": "md5:" + "ab" * 16}, "digest"),
        ({"digest": "ab" * 32}, "digest"),  # no algorithm
        ({"digest": "sha256:" + "g" * 64}, "digest"),
        ({"digest": ...}, "digest"),  # missing
        ({"version": ""}, "version"),
        ({"version": "   "}, "version"),
        ({"version": "1.0 beta"}, "version"),
        ({"version": "-1.0"}, "version"),
        ({"version": "1" * 129}, "version"),
        ({"version": ...}, "version"),
        ({"version": 1.5}, "version"),
        ({"application": "nope"}, "application"),
        ({"application": ""}, "application"),
        ({"application": "not a slug"}, "application"),
        ({"application": ...}, "application"),
        ({"uri": "not-a-uri"}, "uri"),
        ({"uri": ...}, "uri"),
        ({"labels": "team=payments"}, "labels"),
        ({"labels": ["team", "payments"]}, "labels"),
        ({"labels": 7}, "labels"),
        ({"labels": None}, "labels"),
        ({"labels": {"team": 1}}, "labels"),
        ({"labels": {"": "x"}}, "labels"),
        ({"commit": "not-hex!"}, "commit"),
        ({"build_url": "ci/123"}, "build_url"),
    ],
)
def test_malformed_registration_is_400_with_the_field(ci_client, overrides, field):
    response = ci_client.post(ARTIFACTS, build(**overrides))
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"], body
    assert not Artifact.objects.exists()
    assert not AuditEvent.objects.filter(verb__startswith="artifact.").exists()


def test_body_that_is_not_an_object_is_400(ci_client):
    for body in ('["application"]', '"x"', "null", "{"):
        response = ci_client.post(ARTIFACTS, data=body, content_type="application/json")
        assert response.status_code == 400, body
        assert response.json()["error"] in ("invalid", "parse_error")


def test_10_mb_body_is_413(ci_client):
    body = build(labels={"blob": "x" * 255}, build_url="https://ci.example.com/" + "a" * (10 * 1024 * 1024))
    response = ci_client.post(ARTIFACTS, body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert not Artifact.objects.exists()


def test_an_application_the_caller_cannot_see_is_unknown(ci_client, db):
    """Another team's application: the same 400 as one that does not exist, so its existence stays hidden."""
    make_application(make_team("storefront"), "storefront-web")
    hidden = ci_client.post(ARTIFACTS, build(application="storefront-web")).json()
    missing = ci_client.post(ARTIFACTS, build(application="no-such-app")).json()
    assert hidden["fields"]["application"] == ["Unknown application 'storefront-web'."]
    assert missing["fields"]["application"] == ["Unknown application 'no-such-app'."]
    assert not Artifact.objects.exists()


def test_without_token_401(api_client, ci):
    response = api_client.post(ARTIFACTS, build())
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    bad = api_client.post(ARTIFACTS, build(), HTTP_AUTHORIZATION="Bearer rh_0123abcd_nope")
    assert bad.status_code == 401
    assert not Artifact.objects.exists()


def test_token_of_a_user_without_register_is_403(ci, db):
    """A storefront member may view payments-api (granted) but not register its builds."""
    from apps.catalog.services import application_grant

    outsider = make_user("steve")
    storefront = make_team("storefront", members=(outsider,))
    application_grant(actor=None, application=ci["application"], team=storefront, action="view")
    client = bearer_client(outsider, scopes=("artifacts:write", "read"))
    response = client.post(ARTIFACTS, build())
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert not Artifact.objects.exists()


def test_token_without_artifacts_write_scope_is_403(ci):
    client = bearer_client(ci["user"], scopes=("read", "releases:write", "config:write"))
    response = client.post(ARTIFACTS, build())
    assert response.status_code == 403
    assert "artifacts:write" in response.json()["detail"]
    assert not Artifact.objects.exists()


def test_expired_or_revoked_token_is_401(ci):
    from datetime import timedelta

    from django.utils import timezone

    from apps.accounts.models import ApiToken
    from apps.accounts.services import token_create, token_revoke

    token, raw = token_create(user=ci["user"], name="ci", scopes=["artifacts:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.post(ARTIFACTS, build()).status_code == 401
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
    token_revoke(token_id=token.pk, actor=ci["user"])
    assert client.post(ARTIFACTS, build()).status_code == 401
    assert not Artifact.objects.exists()


def test_session_registration_works_and_has_no_token(ci):
    response = session_client(ci["user"]).post(ARTIFACTS, build())
    assert response.status_code == 201
    assert response.json()["registered_token"] is None


def test_artifacts_are_immutable(ci, ci_client):
    artifact_id = ci_client.post(ARTIFACTS, build()).json()["id"]
    client = session_client(ci["user"])
    for method in ("put", "patch", "delete"):
        response = getattr(client, method)(f"{ARTIFACTS}{artifact_id}/", {"version": "6.6.6"}, format="json")
        assert response.status_code == 405, method
    assert Artifact.objects.get().version == "1.4.2"


# --- reading artifacts -------------------------------------------------------------------------------


@pytest.fixture
def catalog(ci):
    """payments-api: 1.9.0 and 1.10.0 on main, 2.0.0-rc.1 on release/2.0; payments-worker: 0.1.0 on main."""
    bot = ci["user"]
    app = ci["application"]
    register(app, "1.9.0", by=bot, branch="main", labels={"team": "payments", "arch": "amd64"})
    register(app, "1.10.0", by=bot, branch="main", labels={"team": "payments", "arch": "arm64"})
    register(app, "2.0.0-rc.1", by=bot, branch="release/2.0", labels={"team": "payments", "2024": "yes"})
    worker = make_application(ci["team"], "payments-worker")
    register(worker, "0.1.0", by=bot, branch="main", labels={"team": "ledger", "app.kubernetes.io/name": "w"})
    return ci


def versions(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [f"{row['application']}@{row['version']}" for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {},
            ["payments-api@2.0.0-rc.1", "payments-api@1.10.0", "payments-api@1.9.0", "payments-worker@0.1.0"],
        ),
        ({"application": "payments-worker"}, ["payments-worker@0.1.0"]),
        ({"application": "nothing"}, []),
        ({"branch": "main", "application": "payments-api"}, ["payments-api@1.10.0", "payments-api@1.9.0"]),
        ({"branch": "release/2.0"}, ["payments-api@2.0.0-rc.1"]),
        ({"version": "1.10.0"}, ["payments-api@1.10.0"]),
        ({"version": "1.10"}, []),
        ({"digest": digest_of("payments-api@1.9.0")}, ["payments-api@1.9.0"]),
        ({"label": "arch:arm64"}, ["payments-api@1.10.0"]),
        ({"label": "team:ledger"}, ["payments-worker@0.1.0"]),
        ({"label": "team:"}, []),
        ({"label": "2024:yes"}, ["payments-api@2.0.0-rc.1"]),  # a numeric key is a key, not an array index
        ({"label": "app.kubernetes.io/name:w"}, ["payments-worker@0.1.0"]),
        ({"label": "nobody:home"}, []),
        (
            {"application": "payments-api", "ordering": "registered_at"},
            [
                "payments-api@1.9.0",
                "payments-api@1.10.0",
                "payments-api@2.0.0-rc.1",
            ],
        ),
        (
            {"application": "payments-api", "ordering": "version_key"},
            [
                "payments-api@1.9.0",
                "payments-api@1.10.0",
                "payments-api@2.0.0-rc.1",
            ],
        ),
    ],
)
def test_artifact_filters_and_ordering(catalog, ci_client, query, expected):
    assert versions(ci_client.get(ARTIFACTS, query)) == expected


@pytest.mark.parametrize("label", ["no-colon", ":value", "a__b:c", "sp ace:x"])
def test_malformed_label_filter_is_400(catalog, ci_client, label):
    response = ci_client.get(ARTIFACTS, {"label": label})
    assert response.status_code == 400
    assert "label" in response.json()["fields"]


def test_artifact_detail(catalog, ci_client):
    artifact = Artifact.objects.get(version="1.10.0")
    body = ci_client.get(f"{ARTIFACTS}{artifact.pk}/").json()
    assert (body["application"], body["version"], body["branch"]) == ("payments-api", "1.10.0", "main")
    assert ci_client.get(f"{ARTIFACTS}999999/").status_code == 404
    assert ci_client.get(f"{ARTIFACTS}abc/").status_code == 404


def test_artifact_list_queries_do_not_grow(catalog, ci_client, django_assert_max_num_queries):
    ci_client.get(ARTIFACTS)
    with CaptureQueriesContext(connection) as few:
        ci_client.get(ARTIFACTS)
    for i in range(20):
        register(catalog["application"], f"3.{i}.0", by=catalog["user"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert ci_client.get(ARTIFACTS).json()["count"] == 24


# --- applications ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(db):
    return session_client(make_user("root", is_staff=True, is_superuser=True))


def test_application_create_update_delete(admin_client, ci):
    response = admin_client.post(
        APPLICATIONS, {"slug": "ledger", "name": "Ledger", "owner_team": "payments", "description": "Books"}
    )
    assert response.status_code == 201, response.json()
    assert response.json()["owner_team"] == "payments"
    ledger = Application.objects.get(slug="ledger")
    # the owner team may register and manage it at once
    assert (
        bearer_client(ci["user"], scopes=("artifacts:write",)).post(ARTIFACTS, build(application="ledger")).status_code
        == 201
    )

    patched = admin_client.patch(f"{APPLICATIONS}ledger/", {"name": "Ledger v2", "slug": "other"})
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["slug"]) == ("Ledger v2", "ledger")

    # kept while it has artifacts
    assert admin_client.delete(f"{APPLICATIONS}ledger/").status_code == 409
    assert Application.objects.filter(pk=ledger.pk).exists()
    empty = make_application(ci["team"], "empty")
    assert admin_client.delete(f"{APPLICATIONS}{empty.slug}/").status_code == 204

    def verbs(application):
        events = AuditEvent.objects.filter(object_type="catalog.application", object_id=str(application.pk))
        return list(events.order_by("id").values_list("verb", flat=True))

    assert verbs(ledger) == ["application.created", "application.updated"]
    assert verbs(empty) == ["application.created", "application.deleted"]
    assert AuditEvent.objects.filter(verb="application.updated", object_id=str(ledger.pk)).get().details == {
        "changes": {"name": ["Ledger", "Ledger v2"]}
    }


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"slug": "payments-api", "name": "Dup", "owner_team": "payments"}, 409, None),
        ({"slug": "bad slug", "name": "x", "owner_team": "payments"}, 400, "slug"),
        ({"slug": "x", "name": "", "owner_team": "payments"}, 400, "name"),
        ({"slug": "x", "name": "x", "owner_team": "nobody"}, 400, "owner_team"),
        ({"slug": "x", "name": "x", "owner_team": "payments", "repository_url": "nope"}, 400, "repository_url"),
        ({"slug": "x", "name": "x"}, 400, "owner_team"),
    ],
)
def test_application_create_errors(admin_client, ci, body, status, field):
    response = admin_client.post(APPLICATIONS, body)
    assert response.status_code == status, response.json()
    if field:
        assert field in response.json()["fields"]
    assert Application.objects.count() == 1


def test_application_filters(admin_client, ci):
    make_application(make_team("storefront"), "storefront-web", name="Web shop")

    def slugs(query):
        return [row["slug"] for row in admin_client.get(APPLICATIONS, query).json()["results"]]

    assert slugs({}) == ["payments-api", "storefront-web"]
    assert slugs({"owner_team": "storefront"}) == ["storefront-web"]
    assert slugs({"search": "shop"}) == ["storefront-web"]
    assert slugs({"search": "PAYMENTS"}) == ["payments-api"]
    assert slugs({"ordering": "-slug"}) == ["storefront-web", "payments-api"]


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("post", APPLICATIONS, {"slug": "x", "name": "x", "owner_team": "pay\x00ments"}, "owner_team"),
        ("patch", f"{APPLICATIONS}payments-api/", {"owner_team": "\x00"}, "owner_team"),
        ("post", ARTIFACTS, build(application="payments\x00"), "application"),
        ("post", ARTIFACTS, build(branch="ma\x00in"), "branch"),
        ("post", ARTIFACTS, build(labels={"team": "pay\x00"}), "labels"),
    ],
)
def test_nul_characters_are_400_not_500(admin_client, ci, method, url, body, field):
    """PostgreSQL refuses NUL in text, also in the lookups of referenced objects."""
    response = getattr(admin_client, method)(url, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
