"""Application pages: list with search, detail with artifacts (by branch, paginated), artifact provenance,
history, access and the forms, for managers, viewers and strangers."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import team_add_member, team_create, token_create
from apps.audit.models import AuditEvent
from apps.catalog.models import Application, ApplicationGroupObjectPermission
from apps.catalog.services import application_create, application_grant, application_update, artifact_register
from apps.core.errors import ValidationFailed


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def register(application: Application, version: str, *, by, branch: str = "main", token=None, **fields):
    artifact, _ = artifact_register(
        actor=by,
        token=token,
        application=application.slug,
        version=version,
        digest=digest(f"{application.slug}@{version}"),
        uri=f"https://artifacts.example.com/{application.slug}/{version}.tar.gz",
        branch=branch,
        **fields,
    )
    return artifact


@pytest.fixture
def owners(user):
    """Payments, whose member ursula (`user`) manages its applications and registers builds."""
    team = team_create(actor=None, name="Payments", slug="payments")
    team_add_member(actor=None, team=team, user=user)
    return team


@pytest.fixture
def viewers(other_user):
    """Auditors, whose member oscar (`other_user`) may only view payments-api."""
    team = team_create(actor=None, name="Auditors", slug="auditors")
    team_add_member(actor=None, team=team, user=other_user)
    return team


@pytest.fixture
def app(owners, viewers):
    application = application_create(
        actor=None,
        slug="payments-api",
        name="Payments API",
        owner_team=owners,
        repository_url="https://git.example.com/payments/api",
        description="Takes the money.",
    )
    application_grant(actor=None, application=application, team=viewers, action="view")
    return application


@pytest.fixture
def staff(make_user):
    return make_user("stan", is_staff=True, is_superuser=True)


@pytest.fixture
def stranger(make_user):
    return make_user("sid")


def login(client, who):
    client.force_login(who)
    return client


def html(response) -> str:
    return response.content.decode()


def artifact_rows(response) -> list[str]:
    """The versions listed in the artifact table, in order."""
    table = html(response).split('data-testid="artifact-table"')[1].split("</table>")[0]
    return re.findall(r'/artifacts/([^/"]+)/"', table)


# --- Reading ---------------------------------------------------------------------------------------


def test_every_page_renders_for_a_manager(client, user, app):
    register(app, "1.0.0", by=user)
    login(client, user)
    pages = {
        "/applications/": "Payments API",
        "/applications/?search=pay": "Payments API",
        "/applications/payments-api/": "1.0.0",
        "/applications/payments-api/?branch=main": "1.0.0",
        "/applications/payments-api/history/": "Change history",
        "/applications/payments-api/access/": "Team permissions",
        "/applications/payments-api/edit/": "Edit Payments API",
        "/applications/payments-api/artifacts/1.0.0/": "Provenance",
    }
    for path, text in pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert text in html(response), path


def test_list_searches_with_the_api_filterset_and_shows_counts(client, user, owners, app):
    other = application_create(actor=None, slug="ledger", name="Ledger worker", owner_team=owners)
    for version in ["1.0.0", "1.10.0", "1.9.0"]:
        register(app, version, by=user)
    login(client, user)
    page = html(client.get("/applications/"))
    row = page.split('href="/applications/payments-api/"')[1].split("</tr>")[0]
    assert '<td class="text-end">3</td>' in row
    assert "1.10.0" in row  # the highest version, not the last registered
    assert "/applications/ledger/" in page

    searched = client.get("/applications/", {"search": "ledg"})
    assert "/applications/ledger/" in html(searched)
    assert "/applications/payments-api/" not in html(searched)
    fragment = client.get("/applications/", {"search": "pay"}, headers={"HX-Request": "true"})
    assert "<html" not in html(fragment)
    assert "/applications/payments-api/" in html(fragment)
    assert "/applications/ledger/" not in html(fragment)
    nothing = html(client.get("/applications/", {"search": "zzz"}))
    assert "No application matches" in nothing
    assert other.slug not in nothing.split('data-testid="application-table"')[1]


def test_artifacts_are_listed_newest_version_first_filtered_by_branch_and_paginated(client, user, app):
    for minor in range(55):
        register(app, f"1.{minor}.0", by=user, branch="main")
    for patch in range(3):
        register(app, f"2.0.0-rc.{patch}", by=user, branch="release/2.0")
    login(client, user)

    first = client.get("/applications/payments-api/")
    versions = artifact_rows(first)
    assert len(versions) == 50
    assert versions[:4] == ["2.0.0-rc.2", "2.0.0-rc.1", "2.0.0-rc.0", "1.54.0"]
    assert "Page 1 of 2 · 58 artifacts" in html(first)
    second = client.get("/applications/payments-api/", {"page": 2})
    assert artifact_rows(second) == [f"1.{minor}.0" for minor in range(7, -1, -1)]

    branch = client.get("/applications/payments-api/", {"branch": "release/2.0"})
    assert artifact_rows(branch) == ["2.0.0-rc.2", "2.0.0-rc.1", "2.0.0-rc.0"]
    assert '<option value="release/2.0" selected>' in html(branch)
    main_page_2 = client.get("/applications/payments-api/", {"branch": "main", "page": 2})
    assert len(artifact_rows(main_page_2)) == 5
    assert "branch=main&amp;page=1" in html(main_page_2)  # pagination keeps the filter

    fragment = client.get("/applications/payments-api/", {"branch": "release/2.0"}, headers={"HX-Request": "true"})
    assert "<html" not in html(fragment)
    assert artifact_rows(fragment) == ["2.0.0-rc.2", "2.0.0-rc.1", "2.0.0-rc.0"]
    none = client.get("/applications/payments-api/", {"branch": "no-such-branch"})
    assert artifact_rows(none) == []
    assert "No artifact built from" in html(none)


def test_artifact_detail_shows_provenance(client, user, other_user, app):
    token, _ = token_create(user=user, name="GitHub Actions", scopes=["artifacts:write"])
    artifact = register(
        app,
        "1.4.2",
        by=user,
        token=token,
        commit="a" * 40,
        build_url="https://ci.example.com/builds/42",
        labels={"team": "payments"},
    )
    page = html(login(client, other_user).get("/applications/payments-api/artifacts/1.4.2/"))
    for text in [
        "Payments API",
        "1.4.2",
        artifact.digest,
        artifact.uri,
        "a" * 40,
        'href="https://ci.example.com/builds/42"',
        "team=payments",
        f"rh_{token.prefix}_",
        "Ursula Lind",
        f"/audit/?object_type=catalog.artifact&amp;object_id={artifact.pk}",
        "/applications/payments-api/?branch=main",
    ]:
        assert text in page, text


def test_an_artifact_uri_is_a_link_only_for_http(client, user, app):
    register(app, "1.0.0", by=user)
    artifact_register(actor=user, application=app.slug, version="1.0.1", digest=digest("x"), uri="s3://bucket/x.tgz")
    with pytest.raises(ValidationFailed):
        artifact_register(
            actor=user, application=app.slug, version="1.0.2", digest=digest("y"), uri="javascript://x%0aalert(1)"
        )
    login(client, user)
    assert 'href="https://artifacts.example.com/' in html(client.get("/applications/payments-api/artifacts/1.0.0/"))
    assert 'href="s3://' not in html(client.get("/applications/payments-api/artifacts/1.0.1/"))


def test_what_the_user_may_not_view_is_a_404(client, stranger, user, app):
    register(app, "1.0.0", by=user)
    login(client, stranger)
    for path in [
        "/applications/payments-api/",
        "/applications/payments-api/history/",
        "/applications/payments-api/access/",
        "/applications/payments-api/edit/",
        "/applications/payments-api/artifacts/1.0.0/",
        "/applications/payments-api/artifacts/9.9.9/",
        "/applications/payments-api/artifacts/%00/",  # no such version can exist; PostgreSQL would refuse the NUL
        "/applications/nothing/",
    ]:
        assert client.get(path).status_code == 404, path
    before = AuditEvent.objects.count()
    for path in ["/applications/payments-api/delete/", "/applications/payments-api/access/grant/"]:
        assert client.post(path, {"team": "auditors", "action": "manage"}).status_code == 404, path
    assert AuditEvent.objects.count() == before
    assert "/applications/payments-api/" not in html(client.get("/applications/"))


def test_navbar_marks_applications_active_on_every_page_of_the_section(client, user, app):
    register(app, "1.0.0", by=user)
    login(client, user)
    for path in ["/applications/", "/applications/payments-api/", "/applications/payments-api/artifacts/1.0.0/"]:
        navbar = html(client.get(path)).split('aria-label="Main navigation"')[1].split("</nav>")[0]
        active = re.findall(r'class="nav-link active" aria-current="page"\s+href="([^"]+)"', navbar)
        assert active == ["/applications/"], path


# --- Viewers see no controls; manage forms refuse them with a message ----------------------------------


def test_a_viewer_sees_no_edit_controls_and_gets_messages_when_posting(client, other_user, app):
    login(client, other_user)
    detail = html(client.get("/applications/payments-api/"))
    assert "/applications/payments-api/edit/" not in detail
    assert "/applications/payments-api/delete/" not in detail
    assert "New application" not in html(client.get("/applications/"))
    access = html(client.get("/applications/payments-api/access/"))
    assert "read-only" in access
    assert 'data-testid="grant-form"' not in access

    before = AuditEvent.objects.count()
    for path, data in [
        ("/applications/payments-api/edit/", {"name": "Hacked", "owner_team": "payments"}),
        ("/applications/payments-api/delete/", {}),
        ("/applications/payments-api/access/grant/", {"team": "auditors", "action": "manage"}),
        ("/applications/payments-api/access/revoke/", {"team": "payments", "action": "manage"}),
    ]:
        response = client.post(path, data, follow=True)
        assert response.status_code == 200, path
        assert "You may not manage application Payments API." in html(response), path
    response = client.get("/applications/payments-api/edit/", follow=True)
    assert response.redirect_chain == [("/applications/payments-api/", 302)]
    assert AuditEvent.objects.count() == before
    app.refresh_from_db()
    assert app.name == "Payments API"


# --- Forms -----------------------------------------------------------------------------------------------


def test_creating_applications_needs_add_application(client, user, staff, owners):
    login(client, user)
    response = client.get("/applications/new/", follow=True)
    assert response.redirect_chain == [("/applications/", 302)]
    assert "You may not create applications" in html(response)
    client.post("/applications/new/", {"slug": "x", "name": "X", "owner_team": "payments"})
    assert not Application.objects.filter(slug="x").exists()

    login(client, staff)
    assert "New application" in html(client.get("/applications/"))
    response = client.post(
        "/applications/new/",
        {"slug": "web", "name": "Web shop", "owner_team": "payments", "repository_url": "https://git.example.com/web"},
    )
    assert response["Location"] == "/applications/web/"
    application = Application.objects.get(slug="web")
    event = AuditEvent.objects.get(verb="application.created")
    assert (event.actor, event.channel, event.object_id) == (staff, "ui", str(application.pk))

    taken = client.post("/applications/new/", {"slug": "web", "name": "Again", "owner_team": "payments"})
    assert taken.status_code == 200
    assert "Application with this Slug already exists." in html(taken)
    bad = client.post("/applications/new/", {"slug": "bad slug", "name": "", "owner_team": "nobody"})
    assert bad.status_code == 200
    assert html(bad).count("is-invalid") >= 3


def test_a_manager_edits_and_deletes_an_application(client, user, owners, app):
    login(client, user)
    assert 'value="https://git.example.com/payments/api"' in html(client.get("/applications/payments-api/edit/"))
    response = client.post(
        "/applications/payments-api/edit/",
        {"name": "Payments", "owner_team": "payments", "repository_url": "", "description": "New."},
    )
    assert response["Location"] == "/applications/payments-api/"
    app.refresh_from_db()
    assert (app.name, app.repository_url, app.description) == ("Payments", "", "New.")
    assert AuditEvent.objects.get(verb="application.updated").details["changes"]["name"] == ["Payments API", "Payments"]

    register(app, "1.0.0", by=user)
    kept = client.post("/applications/payments-api/delete/", follow=True)
    assert "their artifacts are the record" in html(kept)
    assert Application.objects.filter(slug="payments-api").exists()

    application_create(actor=None, slug="spare", name="Spare", owner_team=owners)
    deleted = client.post("/applications/spare/delete/", follow=True)
    assert deleted.redirect_chain == [("/applications/", 302)]
    assert not Application.objects.filter(slug="spare").exists()
    assert AuditEvent.objects.filter(verb="application.deleted").count() == 1


def test_access_tab_grants_and_revokes_with_audit(client, user, app):
    login(client, user)
    page = html(client.get("/applications/payments-api/access/"))
    table = page.split('data-testid="access-table"')[1].split("</table>")[0]
    assert "Payments" in table
    assert "Auditors" in table
    assert "Grant register to Auditors" in table

    client.post("/applications/payments-api/access/grant/", {"team": "auditors", "action": "register"})
    grants = ApplicationGroupObjectPermission.objects.filter(content_object=app, group__team__slug="auditors")
    assert set(grants.values_list("permission__codename", flat=True)) == {"view_application", "register_application"}
    granted = AuditEvent.objects.filter(verb="team.permission_granted").latest("id")
    assert granted.actor == user
    assert granted.details["permission"] == "catalog.register_application"

    response = client.post(
        "/applications/payments-api/access/revoke/", {"team": "auditors", "action": "register"}, follow=True
    )
    assert "Auditors may no longer register on Payments API." in html(response)
    assert not grants.filter(permission__codename="register_application").exists()
    assert AuditEvent.objects.filter(verb="team.permission_revoked", actor=user).count() == 1


def test_history_tab_shows_changes_with_who_and_channel(client, user, owners, app):
    login(client, user)
    client.post(
        "/applications/payments-api/edit/",
        {"name": "Payments API v2", "owner_team": "payments", "repository_url": "https://git.example.com/payments/api"},
        REMOTE_ADDR="198.51.100.4",
    )
    other_team = team_create(actor=None, name="Platform", slug="platform")
    application_update(actor=None, application=app, owner_team=other_team)
    page = html(client.get("/applications/payments-api/history/"))
    rows = page.split('data-testid="history-table"')[1]
    assert "Ursula Lind" in rows
    assert "198.51.100.4" in rows
    assert 'rh-channel-ui">ui<' in rows
    assert "Payments API v2" in rows
    assert "<code>description</code>" in rows  # "Takes the money." was cleared
    assert "Platform" in rows  # the owner team by name, not id
    assert "rh-kind-created" in rows


# --- Constant queries ------------------------------------------------------------------------------------


def _count_queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def _applications(owners, user, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        application = application_create(actor=None, slug=f"app-{index}", name=f"App {index}", owner_team=owners)
        register(application, "1.0.0", by=user)


def test_the_application_list_runs_the_same_queries_for_5_and_50(client, user, owners, django_assert_max_num_queries):
    login(client, user)
    _applications(owners, user, 5)
    with_5 = _count_queries(client, "/applications/")
    _applications(owners, user, 45, start=5)
    with django_assert_max_num_queries(with_5):
        page = html(client.get("/applications/"))
    assert len(re.findall(r'href="/applications/app-\d+/"', page)) == 50
    assert _count_queries(client, "/applications/") == with_5


def test_the_artifact_list_and_artifact_page_run_constant_queries(client, user, app, django_assert_max_num_queries):
    token, _ = token_create(user=user, name="ci", scopes=["artifacts:write"])
    login(client, user)
    for minor in range(5):
        register(app, f"1.{minor}.0", by=user, token=token)
    counts = {
        path: _count_queries(client, path)
        for path in [
            "/applications/payments-api/",
            "/applications/payments-api/?branch=main",
            "/applications/payments-api/artifacts/1.0.0/",
        ]
    }
    for minor in range(5, 50):
        register(app, f"1.{minor}.0", by=user, token=token)
    for path, count in counts.items():
        with django_assert_max_num_queries(count):
            client.get(path)
        assert _count_queries(client, path) == count, path
