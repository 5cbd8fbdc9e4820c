"""The releases API of API.md: create (the CI contract), read, filter, change notes and artifacts, delete."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.releases.models import Release
from tests.factories import (
    bearer_client,
    make_application,
    make_release,
    make_team,
    make_user,
    register,
    session_client,
)

RELEASES = "/api/v1/releases/"


@pytest.fixture
def ci(db):
    """The payments CI bot (member of payments, owner of payments-api and payments-lib) with three builds."""
    bot = make_user("ci-bot")
    team = make_team("payments", members=(bot,))
    api = make_application(team, "payments-api")
    lib = make_application(team, "payments-lib")
    builds = {version: register(api, version, by=bot) for version in ("1.0.0", "1.1.0", "1.2.0")}
    builds["lib"] = register(lib, "0.1.0", by=bot)
    return {"user": bot, "team": team, "api": api, "lib": lib, "builds": builds}


@pytest.fixture
def ci_client(ci):
    return bearer_client(ci["user"], scopes=("releases:write", "read"))


def ids(ci, *versions) -> list[int]:
    return [ci["builds"][v].pk for v in versions]


def test_create_201_with_the_contract_fields(ci, ci_client):
    body = {"application": "payments-api", "artifacts": ids(ci, "1.2.0", "1.0.0"), "notes": "Faster refunds."}
    response = ci_client.post(RELEASES, body)
    assert response.status_code == 201, response.json()
    data = response.json()
    release = Release.objects.get()
    primary, other = ci["builds"]["1.2.0"], ci["builds"]["1.0.0"]
    assert data == {
        "id": release.pk,
        "application": "payments-api",
        "version": "1.2.0",  # the primary artifact's
        "notes": "Faster refunds.",
        "artifacts": [
            {"id": primary.pk, "version": "1.2.0", "digest": primary.digest, "uri": primary.uri},
            {"id": other.pk, "version": "1.0.0", "digest": other.digest, "uri": other.uri},
        ],
        "created_by": "ci-bot",
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "in_use": False,
    }
    event = AuditEvent.objects.get(verb="release.created")
    assert (event.actor, event.channel, event.object_id) == (ci["user"], "api", str(release.pk))
    assert event.token_prefix
    assert release.history.get().history_channel == "api"
    assert ci_client.get(f"{RELEASES}{release.pk}/").json() == data


def test_an_explicit_version(ci, ci_client):
    response = ci_client.post(
        RELEASES, {"application": "payments-api", "version": "2024.1", "artifacts": ids(ci, "1.0.0")}
    )
    assert response.status_code == 201, response.json()
    assert response.json()["version"] == "2024.1"


def test_a_duplicate_version_is_409(ci, ci_client):
    make_release(ci["api"], [ci["builds"]["1.0.0"]], by=ci["user"])
    response = ci_client.post(RELEASES, {"application": "payments-api", "artifacts": ids(ci, "1.0.0")})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert body["detail"] == "payments-api has a release 1.0.0 already; release versions are unique per application."
    assert "version" in body["fields"]
    assert Release.objects.count() == 1


def test_an_artifact_of_another_application_is_400_naming_the_field(ci, ci_client):
    lib = ci["builds"]["lib"]
    response = ci_client.post(RELEASES, {"application": "payments-api", "artifacts": [*ids(ci, "1.0.0"), lib.pk]})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["fields"] == {
        "artifacts": [f"Artifact {lib.pk} is payments-lib@0.1.0, not an artifact of payments-api."]
    }
    assert not Release.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"artifacts": []}, "artifacts"),
        ({"artifacts": list(range(1, 22))}, "artifacts"),
        ({"artifacts": [0]}, "artifacts.0"),
        ({"artifacts": ["x"]}, "artifacts.0"),
        ({"artifacts": [2**64]}, "artifacts.0"),
        ({"artifacts": "1"}, "artifacts"),
        ({"artifacts": [999_999]}, "artifacts"),
        ({"artifacts": ...}, "artifacts"),
        ({"version": "1.0 beta"}, "version"),
        ({"version": 1.5}, "version"),
        ({"application": "nope"}, "application"),
        ({"application": "not a slug"}, "application"),
        ({"application": ...}, "application"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"notes": "nul\x00"}, "notes"),
    ],
)
def test_malformed_creation_is_400_with_the_field(ci, ci_client, body, field):
    payload = {"application": "payments-api", "artifacts": ids(ci, "1.0.0"), **body}
    payload = {key: value for key, value in payload.items() if value is not ...}
    response = ci_client.post(RELEASES, payload)
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "invalid"
    assert field in response.json()["fields"], response.json()
    assert not Release.objects.exists()


def test_an_application_the_caller_cannot_see_is_unknown(ci, ci_client):
    """Another team's application: the same 400 as one that does not exist, so its existence stays hidden."""
    owner = make_user("steve")
    shop = make_application(make_team("storefront", members=(owner,)), "storefront-web")
    build = register(shop, "1.0.0", by=owner)
    hidden = ci_client.post(RELEASES, {"application": "storefront-web", "artifacts": [build.pk]}).json()
    missing = ci_client.post(RELEASES, {"application": "no-such-app", "artifacts": [build.pk]}).json()
    assert hidden["fields"] == {"application": ["Unknown application 'storefront-web'."]}
    assert missing["fields"] == {"application": ["Unknown application 'no-such-app'."]}
    # its artifacts are unknown too, for a release of the caller's own application
    own = ci_client.post(RELEASES, {"application": "payments-api", "artifacts": [build.pk]}).json()
    assert own["fields"] == {"artifacts": [f"Unknown artifact {build.pk}."]}
    assert not Release.objects.exists()


def test_a_viewer_without_register_gets_403(ci):
    viewer = make_user("vera")
    application_grant(actor=None, application=ci["api"], team=make_team("viewers", members=(viewer,)), action="view")
    client = bearer_client(viewer, scopes=("releases:write", "read"))
    response = client.post(RELEASES, {"application": "payments-api", "artifacts": ids(ci, "1.0.0")})
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    release = make_release(ci["api"], [ci["builds"]["1.0.0"]], by=ci["user"])
    assert client.get(f"{RELEASES}{release.pk}/").status_code == 200
    assert client.patch(f"{RELEASES}{release.pk}/", {"notes": "Mine"}).status_code == 403
    assert client.delete(f"{RELEASES}{release.pk}/").status_code == 403
    assert Release.objects.get().notes == ""


def test_a_token_without_releases_write_is_403(ci):
    client = bearer_client(ci["user"], scopes=("read", "artifacts:write", "deployments:write"))
    response = client.post(RELEASES, {"application": "payments-api", "artifacts": ids(ci, "1.0.0")})
    assert response.status_code == 403
    assert "releases:write" in response.json()["detail"]
    release = make_release(ci["api"], [ci["builds"]["1.0.0"]], by=ci["user"])
    assert client.patch(f"{RELEASES}{release.pk}/", {"notes": "x"}).status_code == 403
    assert client.delete(f"{RELEASES}{release.pk}/").status_code == 403
    assert client.get(f"{RELEASES}{release.pk}/").status_code == 200
    assert Release.objects.count() == 1


def test_without_credentials_401(api_client, ci):
    assert api_client.get(RELEASES).status_code == 401
    assert api_client.post(RELEASES, {"application": "payments-api", "artifacts": ids(ci, "1.0.0")}).status_code == 401


def test_idempotency_key_replays_the_creation(ci, ci_client):
    body = {"application": "payments-api", "artifacts": ids(ci, "1.0.0")}
    first = ci_client.post(RELEASES, body, HTTP_IDEMPOTENCY_KEY="build-77")
    again = ci_client.post(RELEASES, body, HTTP_IDEMPOTENCY_KEY="build-77")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Release.objects.count() == 1


# --- reading ----------------------------------------------------------------------------------------------------


@pytest.fixture
def releases(ci):
    """payments-api 1.0.0 and 1.1.0, payments-lib 0.1.0, and storefront-web 5.0.0 (which payments cannot see)."""
    bot, builds = ci["user"], ci["builds"]
    make_release(ci["api"], [builds["1.0.0"]], by=bot)
    make_release(ci["api"], [builds["1.1.0"], builds["1.0.0"]], by=bot)
    make_release(ci["lib"], [builds["lib"]], by=bot)
    owner = make_user("steve")
    shop = make_application(make_team("storefront", members=(owner,)), "storefront-web")
    make_release(shop, [register(shop, "5.0.0", by=owner)], by=owner)
    return ci


def listed(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [f"{row['application']}@{row['version']}" for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["payments-lib@0.1.0", "payments-api@1.1.0", "payments-api@1.0.0"]),
        ({"application": "payments-api"}, ["payments-api@1.1.0", "payments-api@1.0.0"]),
        ({"application": "payments-api", "version": "1.0.0"}, ["payments-api@1.0.0"]),
        ({"version": "1.1"}, []),
        ({"application": "storefront-web"}, []),  # invisible
        ({"application": "nothing"}, []),
        ({"ordering": "created_at"}, ["payments-api@1.0.0", "payments-api@1.1.0", "payments-lib@0.1.0"]),
    ],
)
def test_the_list_shows_visible_releases_newest_first_and_filters(releases, ci_client, query, expected):
    assert listed(ci_client.get(RELEASES, query)) == expected


def test_staff_see_every_release_and_strangers_none(releases):
    staff = make_user("stella", is_staff=True)
    assert len(listed(session_client(staff).get(RELEASES))) == 4
    assert listed(session_client(make_user("sam")).get(RELEASES)) == []


def test_an_invisible_or_unknown_release_is_404(releases, ci_client):
    hidden = Release.objects.get(application__slug="storefront-web")
    for url in (f"{RELEASES}{hidden.pk}/", f"{RELEASES}999999/", f"{RELEASES}abc/"):
        assert ci_client.get(url).status_code == 404, url
        assert ci_client.patch(url, {"notes": "x"}).status_code == 404, url
        assert ci_client.delete(url).status_code == 404, url
    assert Release.objects.get(pk=hidden.pk).notes == ""


def test_the_list_runs_constant_queries(releases, ci_client, django_assert_max_num_queries):
    ci_client.get(RELEASES)
    with CaptureQueriesContext(connection) as few:
        ci_client.get(RELEASES)
    bot, app = releases["user"], releases["api"]
    for i in range(20):
        builds = [register(app, f"3.{i}.{n}", by=bot) for n in range(3)]
        make_release(app, builds, by=bot)
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = ci_client.get(RELEASES).json()
    assert body["count"] == 23
    assert len(body["results"][0]["artifacts"]) == 3


# --- changing ---------------------------------------------------------------------------------------------------


def test_patch_changes_notes_and_artifacts_but_not_the_identity(ci, ci_client):
    release = make_release(ci["api"], [ci["builds"]["1.0.0"]], by=ci["user"], notes="First.")
    url = f"{RELEASES}{release.pk}/"
    response = ci_client.patch(url, {"notes": "Second.", "version": "6.6.6", "application": "payments-lib"})
    assert response.status_code == 200, response.json()
    assert (response.json()["notes"], response.json()["version"], response.json()["application"]) == (
        "Second.",
        "1.0.0",
        "payments-api",
    )
    response = ci_client.patch(url, {"artifacts": ids(ci, "1.1.0", "1.0.0")})
    assert [a["version"] for a in response.json()["artifacts"]] == ["1.1.0", "1.0.0"]
    assert ci_client.patch(url, {"artifacts": []}).status_code == 400
    bad = ci_client.patch(url, {"artifacts": ids(ci, "lib")})
    assert bad.status_code == 400
    assert "artifacts" in bad.json()["fields"]
    assert ci_client.put(url, {"notes": "x"}).status_code == 405
    details = [e.details for e in AuditEvent.objects.filter(verb="release.updated").order_by("id")]
    assert details == [
        {"changes": {"notes": ["First.", "Second."]}},
        {"changes": {"artifacts": [["1.0.0"], ["1.1.0", "1.0.0"]]}},
    ]


def test_delete_is_204_and_audited(ci, ci_client):
    release = make_release(ci["api"], [ci["builds"]["1.0.0"]], by=ci["user"])
    response = ci_client.delete(f"{RELEASES}{release.pk}/")
    assert response.status_code == 204
    assert not Release.objects.exists()
    event = AuditEvent.objects.get(verb="release.deleted")
    assert (event.actor, event.channel, event.object_id) == (ci["user"], "api", str(release.pk))
    assert ci_client.get(f"{RELEASES}{release.pk}/").status_code == 404
