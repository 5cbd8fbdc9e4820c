"""Catalog services: who may, what they validate, and the history and audit trail each write leaves."""

from __future__ import annotations

import pytest

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.catalog.models import Application, Artifact
from apps.catalog.services import (
    application_create,
    application_delete,
    application_grant,
    application_revoke,
    application_update,
    artifact_register,
)
from apps.core.context import Channel, acting
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import can
from tests.factories import digest_of, make_application, make_team, make_user, register


@pytest.fixture
def payments(db):
    paula = make_user("paula")
    return make_team("payments", members=(paula,)), paula


@pytest.fixture
def root(db):
    return make_user("root", is_staff=True, is_superuser=True)


def events(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("verb", flat=True))


def test_every_domain_model_keeps_history():
    from django.apps import apps

    for model in (Application, Artifact):
        assert apps.get_model("catalog", f"Historical{model.__name__}")._meta.db_table.startswith("catalog_historical")


# --- applications ---------------------------------------------------------------------------------------


def test_create_grants_the_owner_team_and_records_history_and_audit(payments, root):
    team, paula = payments
    with acting(channel=Channel.UI, user=root, ip="10.0.0.7"):
        application = application_create(actor=root, slug="payments-api", name="Payments API", owner_team=team)
    assert all(can(paula, action, application) for action in ("view", "register", "manage"))
    event = AuditEvent.objects.get(verb="application.created")
    assert (event.actor, event.channel, event.ip, event.object_id) == (root, "ui", "10.0.0.7", str(application.pk))
    assert event.details == {"owner_team": "payments"}
    grants = [event.details["permission"] for event in AuditEvent.objects.filter(verb="team.permission_granted")]
    assert sorted(grants) == ["catalog.manage_application", "catalog.register_application", "catalog.view_application"]
    row = application.history.get()
    assert (row.history_type, row.history_user, row.history_channel, row.history_ip) == ("+", root, "ui", "10.0.0.7")


def test_create_needs_the_global_permission(payments):
    team, paula = payments
    with pytest.raises(PermissionDenied):
        application_create(actor=paula, slug="x", name="X", owner_team=team)
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"slug": "bad slug"}, ValidationFailed),
        ({"name": ""}, ValidationFailed),
        ({"repository_url": "nope"}, ValidationFailed),
        ({"labels": {}}, ValidationFailed),  # not a field of applications
        ({"slug": "taken"}, Conflict),
    ],
)
def test_create_refuses_bad_input(payments, fields, error):
    team, _ = payments
    make_application(team, "taken")
    before = AuditEvent.objects.count()
    with pytest.raises(error):
        application_create(actor=None, **{"slug": "fresh", "name": "Fresh", "owner_team": team, **fields})
    assert Application.objects.count() == 1
    assert AuditEvent.objects.count() == before


def test_update_audits_the_diff_and_skips_no_op_changes(payments):
    team, paula = payments
    application = make_application(team, "payments-api", name="Payments API")
    application_update(actor=paula, application=application, name="Payments", description="Money")
    application_update(actor=paula, application=application, name="Payments")  # no change
    event = AuditEvent.objects.get(verb="application.updated")
    assert event.details == {"changes": {"name": ["Payments API", "Payments"], "description": ["", "Money"]}}
    assert application.history.count() == 2
    with pytest.raises(ValidationFailed):
        application_update(actor=paula, application=application, slug="renamed")


def test_update_and_delete_need_manage(payments):
    team, _ = payments
    application = make_application(team, "payments-api")
    viewer, stranger = make_user("vera"), make_user("sam")
    application_grant(actor=None, application=application, team=make_team("viewers", members=(viewer,)), action="view")
    with pytest.raises(PermissionDenied):
        application_update(actor=viewer, application=application, name="Mine")
    with pytest.raises(NotFound):
        application_update(actor=stranger, application=application, name="Mine")
    with pytest.raises(NotFound):
        application_delete(actor=stranger, application=application)
    assert Application.objects.get().name == "Payments Api"


def test_delete_keeps_applications_with_artifacts(payments):
    team, paula = payments
    application = make_application(team, "payments-api")
    register(application, "1.0.0", by=paula)
    with pytest.raises(Conflict):
        application_delete(actor=paula, application=application)
    empty = make_application(team, "empty")
    empty_id = empty.pk
    application_delete(actor=paula, application=empty)
    assert list(Application.objects.values_list("slug", flat=True)) == ["payments-api"]
    assert events(verb="application.deleted") == ["application.deleted"]
    assert Application.history.filter(id=empty_id).latest().history_type == "-"


def test_grant_and_revoke(payments):
    team, paula = payments
    application = make_application(team, "payments-api")
    ci = make_user("ci")
    builders = make_team("builders", members=(ci,))
    application_grant(actor=paula, application=application, team=builders, action="register")
    assert can(ci, "register", application)
    application_revoke(actor=paula, application=application, team=builders, action="register")
    assert not can(User.objects.get(pk=ci.pk), "register", application)
    with pytest.raises(ValidationFailed):
        application_grant(actor=paula, application=application, team=builders, action="deploy")
    assert events(verb__startswith="team.permission_")[-2:] == ["team.permission_granted", "team.permission_revoked"]


# --- artifacts ---------------------------------------------------------------------------------------------


def registration(**overrides) -> dict:
    return {
        "application": "payments-api",
        "version": "1.0.0",
        "digest": digest_of("build-1"),
        "uri": "https://artifacts.example.com/payments-api-1.0.0.tgz",
        **overrides,
    }


@pytest.fixture
def application(payments):
    return make_application(payments[0], "payments-api")


def test_register_then_repeat_then_conflict(application, payments):
    _, paula = payments
    artifact, created = artifact_register(actor=paula, **registration())
    assert created
    again, created_again = artifact_register(actor=paula, **registration())
    assert (again.pk, created_again) == (artifact.pk, False)
    with pytest.raises(Conflict):
        artifact_register(actor=paula, **registration(digest=digest_of("build-2")))
    assert Artifact.objects.count() == 1
    assert events(object_type="catalog.artifact") == ["artifact.registered", "artifact.digest_mismatch"]
    assert artifact.history.count() == 1


def test_register_needs_register_and_hides_invisible_applications(application):
    viewer, stranger = make_user("vera"), make_user("sam")
    application_grant(actor=None, application=application, team=make_team("viewers", members=(viewer,)), action="view")
    with pytest.raises(PermissionDenied):
        artifact_register(actor=viewer, **registration())
    with pytest.raises(ValidationFailed) as hidden:
        artifact_register(actor=stranger, **registration())
    with pytest.raises(ValidationFailed) as missing:
        artifact_register(actor=stranger, **registration(application="nothing"))
    assert hidden.value.fields == {"application": ["Unknown application 'payments-api'."]}
    assert missing.value.fields == {"application": ["Unknown application 'nothing'."]}
    assert not Artifact.objects.exists()


def test_register_permission_without_view_is_enough(application):
    """A CI team granted only `register` may register (and thus knows the application exists)."""
    bot = make_user("bot")
    application_grant(actor=None, application=application, team=make_team("ci", members=(bot,)), action="register")
    artifact, created = artifact_register(actor=bot, **registration())
    assert created
    assert artifact.registered_by == bot


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"digest": "sha256:xyz"}, "digest"),
        ({"version": ""}, "version"),
        ({"version": "a b"}, "version"),
        ({"uri": "relative/path"}, "uri"),
        ({"labels": ["x"]}, "labels"),
        ({"build_url": "not a url"}, "build_url"),
    ],
)
def test_register_validates_in_the_service_too(application, payments, overrides, field):
    """Other callers than the API (pages, commands) get the same validation."""
    with pytest.raises(ValidationFailed) as error:
        artifact_register(actor=payments[1], **registration(**overrides))
    assert field in error.value.fields
    assert not Artifact.objects.exists()


def test_register_stores_the_sort_key_and_provenance(application, payments):
    from apps.catalog.versions import version_sort_key

    _, paula = payments
    artifact, _ = artifact_register(
        actor=paula,
        **registration(version="2.0.0-rc.1", commit="abc1234", branch="release/2.0", labels={"team": "payments"}),
    )
    artifact.refresh_from_db()
    assert artifact.version_key == version_sort_key("2.0.0-rc.1", artifact.registered_at)
    assert (artifact.commit, artifact.branch, artifact.labels) == ("abc1234", "release/2.0", {"team": "payments"})
    assert str(artifact) == "payments-api@2.0.0-rc.1"
