"""Release pages: list filtered by application (htmx), detail, history and the forms, for people who may register
on the application, viewers and strangers."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.releases.models import Release
from apps.releases.services import release_update
from tests.factories import make_application, make_release, make_team, register


@pytest.fixture
def owners(user):
    """Payments, whose member ursula (`user`) may register on its applications."""
    return make_team("payments", members=(user,))


@pytest.fixture
def viewers(other_user):
    """Auditors, whose member oscar (`other_user`) may only view payments-api."""
    return make_team("auditors", members=(other_user,))


@pytest.fixture
def app(owners, viewers):
    application = make_application(owners, "payments-api", name="Payments API")
    application_grant(actor=None, application=application, team=viewers, action="view")
    return application


@pytest.fixture
def builds(app, user):
    return {version: register(app, version, by=user, branch="main") for version in ("1.0.0", "1.1.0", "1.2.0")}


@pytest.fixture
def release(app, builds, user):
    return make_release(app, [builds["1.2.0"], builds["1.0.0"]], by=user, notes="Faster refunds.")


@pytest.fixture
def stranger(make_user):
    return make_user("sid")


def login(client, who):
    client.force_login(who)
    return client


def html(response) -> str:
    return response.content.decode()


def release_rows(response) -> list[str]:
    """The release links of the list's table, in order."""
    table = html(response).split('data-testid="release-table"')[1].split("</table>")[0]
    return re.findall(r'href="/releases/(\d+)/"', table)


# --- Reading ---------------------------------------------------------------------------------------------------


def test_every_page_renders_for_someone_who_may_register(client, user, release):
    login(client, user)
    pages = {
        "/releases/": "Faster refunds.",
        "/releases/?application=payments-api": "1.2.0",
        f"/releases/{release.pk}/": "plan preview",
        f"/releases/{release.pk}/history/": "Change history",
        f"/releases/{release.pk}/edit/": "Edit notes of 1.2.0",
        "/releases/new/": "New release",
    }
    for path, text in pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert text in html(response), path


def test_the_detail_shows_the_summary_artifacts_in_order_and_the_sections(client, other_user, release, builds):
    page = html(login(client, other_user).get(f"/releases/{release.pk}/"))
    table = page.split('data-testid="release-artifact-table"')[1].split("</table>")[0]
    assert re.findall(r"/artifacts/([^/]+)/", table) == ["1.2.0", "1.0.0"]
    assert "primary" in table
    assert f'title="{builds["1.2.0"].digest}"' in table
    assert builds["1.2.0"].digest[:19] + "…" in table
    assert builds["1.0.0"].uri in table
    for text in ["Payments API", "Ursula Lind", "Faster refunds.", "Not deployed yet.", 'data-testid="plan-preview"']:
        assert text in page, text
    # a viewer sees no controls
    assert f"/releases/{release.pk}/edit/" not in page
    assert f"/releases/{release.pk}/delete/" not in page
    assert "New release" not in html(client.get("/releases/"))


def test_the_list_shows_visible_releases_and_filters_by_application(
    client, user, make_user, owners, app, builds, release
):
    lib = make_application(owners, "payments-lib", name="Payments lib")
    lib_release = make_release(lib, [register(lib, "0.1.0", by=user)], by=user)
    steve = make_user("steve")
    hidden_app = make_application(make_team("storefront", members=(steve,)), "storefront-web")
    hidden = make_release(hidden_app, [register(hidden_app, "5.0.0", by=steve)])
    login(client, user)
    assert release_rows(client.get("/releases/")) == [str(lib_release.pk), str(release.pk)]
    filtered = client.get("/releases/", {"application": "payments-lib"})
    assert release_rows(filtered) == [str(lib_release.pk)]
    assert '<option value="payments-lib" selected>' in html(filtered)
    fragment = client.get("/releases/", {"application": "payments-api"}, headers={"HX-Request": "true"})
    assert "<html" not in html(fragment)
    assert release_rows(fragment) == [str(release.pk)]
    nothing = client.get("/releases/", {"application": "payments-api", "version": "9.9.9"})
    assert release_rows(nothing) == []
    assert "No release matches these filters." in html(nothing)
    assert f"/releases/{hidden.pk}/" not in html(client.get("/releases/"))


def test_the_list_paginates_keeping_the_filter(client, user, app):
    for minor in range(55):
        make_release(app, [register(app, f"2.{minor}.0", by=user)], by=user)
    login(client, user)
    first = client.get("/releases/", {"application": "payments-api"})
    assert len(release_rows(first)) == 50
    assert "Page 1 of 2 · 55 releases" in html(first)
    assert "application=payments-api&amp;page=2" in html(first)
    assert len(release_rows(client.get("/releases/", {"application": "payments-api", "page": 2}))) == 5


def test_what_the_user_may_not_view_is_a_404(client, stranger, release):
    login(client, stranger)
    for path in [
        f"/releases/{release.pk}/",
        f"/releases/{release.pk}/history/",
        f"/releases/{release.pk}/edit/",
        "/releases/999999/",
        "/releases/99999999999999999999999/",
    ]:
        assert client.get(path).status_code == 404, path
    before = AuditEvent.objects.count()
    assert client.post(f"/releases/{release.pk}/delete/").status_code == 404
    assert client.post(f"/releases/{release.pk}/edit/", {"notes": "x"}).status_code == 404
    assert AuditEvent.objects.count() == before
    assert f"/releases/{release.pk}/" not in html(client.get("/releases/"))
    assert "You see the releases of the applications" in html(client.get("/releases/"))


def test_navbar_marks_releases_active_on_every_page_of_the_section(client, user, release):
    login(client, user)
    for path in ["/releases/", f"/releases/{release.pk}/", f"/releases/{release.pk}/history/", "/releases/new/"]:
        navbar = html(client.get(path)).split('aria-label="Main navigation"')[1].split("</nav>")[0]
        active = re.findall(r'class="nav-link active" aria-current="page"\s+href="([^"]+)"', navbar)
        assert active == ["/releases/"], path


def test_history_tab_shows_the_release_and_artifact_changes(client, user, release, builds):
    login(client, user)
    client.post(f"/releases/{release.pk}/edit/", {"notes": "Even faster refunds."}, REMOTE_ADDR="198.51.100.4")
    release_update(actor=None, release=release, artifacts=[builds["1.2.0"], builds["1.1.0"]])
    page = html(client.get(f"/releases/{release.pk}/history/"))
    assert f"/audit/?object_type=releases.release&amp;object_id={release.pk}" in page
    rows = page.split('data-testid="history-table"')[1]
    assert "Ursula Lind" in rows
    assert "198.51.100.4" in rows
    assert 'rh-channel-ui">ui<' in rows
    assert "Even faster refunds." in rows
    assert "#2 1.1.0" in rows
    assert "#2 1.0.0" in rows
    assert "rh-kind-deleted" in rows


# --- Forms -----------------------------------------------------------------------------------------------------


def test_new_release_form_posts_and_redirects(client, user, app, builds):
    login(client, user)
    form = html(client.get("/releases/new/"))
    # the only application the user may register on is chosen, with its newest builds first
    assert '<option value="payments-api" selected>' in form
    assert re.findall(r'<option value="\d+">(\d\.\d\.\d)', form)[:3] == ["1.2.0", "1.1.0", "1.0.0"]
    response = client.post(
        "/releases/new/",
        {
            "application": "payments-api",
            "primary_artifact": builds["1.1.0"].pk,
            "artifacts": [builds["1.2.0"].pk, builds["1.1.0"].pk],  # the primary one again is ignored
            "version": "",
            "notes": "From the browser.",
        },
    )
    release = Release.objects.get()
    assert response["Location"] == f"/releases/{release.pk}/"
    assert (release.version, release.notes, release.created_by) == ("1.1.0", "From the browser.", user)
    assert list(release.release_artifacts.order_by("position").values_list("artifact__version", flat=True)) == [
        "1.1.0",
        "1.2.0",
    ]
    event = AuditEvent.objects.get(verb="release.created")
    assert (event.actor, event.channel) == (user, "ui")


def test_the_form_shows_errors(client, user, app, builds, release):
    login(client, user)
    duplicate = client.post(
        "/releases/new/", {"application": "payments-api", "primary_artifact": builds["1.2.0"].pk, "version": ""}
    )
    assert duplicate.status_code == 200
    assert "payments-api has a release 1.2.0 already" in html(duplicate)
    assert "is-invalid" in html(duplicate)
    bad = client.post(
        "/releases/new/", {"application": "payments-api", "primary_artifact": builds["1.0.0"].pk, "version": "1 0"}
    )
    assert bad.status_code == 200
    assert "Letters, digits" in html(bad)
    missing = client.post("/releases/new/", {"application": "payments-api"})
    assert "This field is required." in html(missing)
    unknown = client.post("/releases/new/", {"application": "storefront-web", "primary_artifact": 1})
    assert "Select a valid choice." in html(unknown)
    assert Release.objects.count() == 1


def test_choosing_an_application_reloads_the_artifact_fields(client, user, owners, app, builds):
    lib = make_application(owners, "payments-lib")
    register(lib, "0.1.0", by=user)
    make_application(owners, "empty-app")
    login(client, user)
    form = html(client.get("/releases/new/"))
    assert 'hx-get="/releases/new/"' in form
    assert "No artifacts" in form  # nothing chosen yet: several applications
    fragment = html(client.get("/releases/new/", {"application": "payments-lib"}, headers={"HX-Request": "true"}))
    assert "<html" not in fragment
    assert 'id="artifact-fields"' in fragment
    assert "0.1.0" in fragment
    assert "1.2.0" not in fragment
    empty = html(client.get("/releases/new/", {"application": "empty-app"}, headers={"HX-Request": "true"}))
    assert 'data-testid="no-artifacts"' in empty


def test_viewers_may_not_create_edit_or_delete(client, other_user, release):
    login(client, other_user)
    response = client.get("/releases/new/", follow=True)
    assert response.redirect_chain == [("/releases/", 302)]
    assert "You may not create releases" in html(response)
    edit = client.post(f"/releases/{release.pk}/edit/", {"notes": "Hacked"}, follow=True)
    assert "You may not change releases of payments-api" in html(edit)
    delete = client.post(f"/releases/{release.pk}/delete/", follow=True)
    assert "You may not change releases of payments-api" in html(delete)
    release.refresh_from_db()
    assert release.notes == "Faster refunds."
    assert not AuditEvent.objects.filter(verb__in=["release.updated", "release.deleted"]).exists()


def test_edit_notes_and_delete(client, user, release):
    login(client, user)
    page = html(client.get(f"/releases/{release.pk}/"))
    assert f"/releases/{release.pk}/edit/" in page
    assert f"/releases/{release.pk}/delete/" in page
    assert "Faster refunds." in html(client.get(f"/releases/{release.pk}/edit/"))
    response = client.post(f"/releases/{release.pk}/edit/", {"notes": "Refunds in seconds."})
    assert response["Location"] == f"/releases/{release.pk}/"
    release.refresh_from_db()
    assert release.notes == "Refunds in seconds."
    too_long = client.post(f"/releases/{release.pk}/edit/", {"notes": "x" * 10_001})
    assert too_long.status_code == 200
    assert "is-invalid" in html(too_long)

    deleted = client.post(f"/releases/{release.pk}/delete/", follow=True)
    assert deleted.redirect_chain == [("/releases/", 302)]
    assert "Release 1.2.0 of Payments API deleted." in html(deleted)
    assert not Release.objects.exists()
    assert AuditEvent.objects.filter(verb="release.deleted", actor=user).count() == 1


# --- Constant queries --------------------------------------------------------------------------------------------


def _count_queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def _releases(app, user, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        builds = [register(app, f"9.{index}.{n}", by=user) for n in range(3)]
        make_release(app, builds, by=user)


def test_the_pages_run_constant_queries(client, user, app, django_assert_max_num_queries):
    login(client, user)
    _releases(app, user, 3)
    release = Release.objects.order_by("id").first()
    paths = [
        "/releases/",
        "/releases/?application=payments-api",
        f"/releases/{release.pk}/",
        f"/releases/{release.pk}/history/",
        "/releases/new/",
    ]
    counts = {path: _count_queries(client, path) for path in paths}
    _releases(app, user, 30, start=3)
    release_update(actor=None, release=release, artifacts=list(app.artifacts.order_by("id")[:20]))
    for path, count in counts.items():
        with django_assert_max_num_queries(count):
            client.get(path)
        assert _count_queries(client, path) == count, path
    assert len(release_rows(client.get("/releases/"))) == 33
