"""Release services: who may, what they validate, the artifact order, and the history and audit trail each
write leaves."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.core.context import Channel, acting
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.deployments.services import deployment_create, template_create
from apps.releases.models import Release, ReleaseArtifact
from apps.releases.selectors import (
    applications_for_releases,
    release_artifacts,
    release_for,
    release_history,
    release_in_use,
    releases_visible_to,
)
from apps.releases.services import release_create, release_delete, release_update
from tests.factories import (
    bearer_client,
    make_application,
    make_environment,
    make_release,
    make_target,
    make_team,
    make_user,
    register,
)


@pytest.fixture
def payments(db):
    """Payments (paula) owns payments-api with builds 1.0.0, 1.1.0, 1.2.0, and payments-lib with 0.1.0."""
    paula = make_user("paula")
    team = make_team("payments", members=(paula,))
    api = make_application(team, "payments-api")
    lib = make_application(team, "payments-lib")
    builds = {version: register(api, version, by=paula) for version in ("1.0.0", "1.1.0", "1.2.0")}
    builds["lib"] = register(lib, "0.1.0", by=paula)
    return {"team": team, "paula": paula, "api": api, "lib": lib, "builds": builds}


@pytest.fixture
def viewer(payments):
    """vera may view payments-api (not register on it)."""
    vera = make_user("vera")
    application_grant(
        actor=None, application=payments["api"], team=make_team("viewers", members=(vera,)), action="view"
    )
    return vera


def events(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("verb", flat=True))


def test_every_domain_model_keeps_history():
    from django.apps import apps

    for model in (Release, ReleaseArtifact):
        assert apps.get_model("releases", f"Historical{model.__name__}")._meta.db_table.startswith(
            "releases_historical"
        )


# --- create --------------------------------------------------------------------------------------------------


def test_create_keeps_the_order_defaults_the_version_and_records_history_and_audit(payments):
    paula, builds = payments["paula"], payments["builds"]
    with acting(channel=Channel.UI, user=paula, ip="10.0.0.7"):
        release = release_create(
            actor=paula,
            application="payments-api",
            artifacts=[builds["1.2.0"].pk, builds["1.0.0"]],  # ids or objects
            notes="Faster refunds.",
        )
    assert (release.version, release.notes, release.created_by) == ("1.2.0", "Faster refunds.", paula)
    rows = list(release.release_artifacts.order_by("position").values_list("position", "artifact__version"))
    assert rows == [(0, "1.2.0"), (1, "1.0.0")]
    assert [a.version for a in release_artifacts(release_for(paula, release.pk))] == ["1.2.0", "1.0.0"]
    event = AuditEvent.objects.get(verb="release.created")
    assert (event.actor, event.channel, event.ip, event.object_id) == (paula, "ui", "10.0.0.7", str(release.pk))
    assert event.details == {
        "application": "payments-api",
        "version": "1.2.0",
        "artifacts": ["1.2.0", "1.0.0"],
        "lifecycle": None,
    }
    row = release.history.get()
    assert (row.history_type, row.history_user, row.history_channel) == ("+", paula, "ui")
    assert ReleaseArtifact.history.filter(release_id=release.pk, history_type="+").count() == 2


def test_an_explicit_version_wins_and_an_application_object_works(payments):
    release = release_create(
        actor=payments["paula"],
        application=payments["api"],
        artifacts=[payments["builds"]["1.0.0"]],
        version=" 2024.1 ",
    )
    assert release.version == "2024.1"


def test_the_system_may_create_releases(payments):
    release = make_release(payments["api"], [payments["builds"]["1.1.0"]])
    assert (release.version, release.created_by) == ("1.1.0", None)
    assert AuditEvent.objects.get(verb="release.created").actor_name == "system"


def test_a_version_is_unique_per_application(payments):
    paula, builds = payments["paula"], payments["builds"]
    make_release(payments["api"], [builds["1.0.0"]], by=paula)
    with pytest.raises(Conflict) as duplicate:
        release_create(actor=paula, application="payments-api", artifacts=[builds["1.1.0"]], version="1.0.0")
    assert "payments-api has a release 1.0.0 already" in duplicate.value.detail
    assert "version" in duplicate.value.fields
    # the same version of another application is fine
    make_release(payments["lib"], [builds["lib"]], version="1.0.0", by=paula)
    assert events(verb="release.created") == ["release.created", "release.created"]


@pytest.mark.parametrize(
    ("artifacts", "message"),
    [
        ([], "Give at least one artifact"),
        ("1", "Give a list of artifact ids."),
        (["1"], "Artifact ids are whole numbers."),
        ([True], "Artifact ids are whole numbers."),
        ([999_999], "Unknown artifact 999999."),
        ([2**70], f"Unknown artifact {2**70}."),
        ([0], "Unknown artifact 0."),
        (["1.0.0", "1.0.0"], "Artifact {1.0.0} is listed more than once."),
        (["1.0.0", "lib"], "Artifact {lib} is payments-lib@0.1.0, not an artifact of payments-api."),
        (["1.0.0"] * 21, "A release holds at most 20 artifacts; 21 given."),
    ],
)
def test_a_bad_artifact_list_is_refused_naming_the_field(payments, artifacts, message):
    builds = payments["builds"]
    ids = artifacts if isinstance(artifacts, str) else [builds[a].pk if a in builds else a for a in artifacts]
    message = message.replace("{1.0.0}", str(builds["1.0.0"].pk)).replace("{lib}", str(builds["lib"].pk))
    with pytest.raises(ValidationFailed) as error:
        release_create(actor=payments["paula"], application="payments-api", artifacts=ids)
    assert list(error.value.fields) == ["artifacts"]
    assert any(m.startswith(message) for m in error.value.fields["artifacts"]), error.value.fields
    assert not Release.objects.exists()
    assert not events(verb="release.created")


def test_an_artifact_of_an_application_the_actor_cannot_see_reads_as_unknown(payments):
    storefront_owner = make_user("steve")
    shop = make_application(make_team("storefront", members=(storefront_owner,)), "shop")
    hidden = register(shop, "9.0.0", by=storefront_owner)
    with pytest.raises(ValidationFailed) as error:
        release_create(actor=payments["paula"], application="payments-api", artifacts=[hidden.pk])
    assert error.value.fields == {"artifacts": [f"Unknown artifact {hidden.pk}."]}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"version": "1.0 beta"}, "version"),
        ({"version": "-1"}, "version"),
        ({"version": 7}, "version"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"notes": "nul\x00"}, "notes"),
    ],
)
def test_version_and_notes_are_validated_in_the_service(payments, fields, field):
    with pytest.raises(ValidationFailed) as error:
        release_create(
            actor=payments["paula"], application="payments-api", artifacts=[payments["builds"]["1.0.0"]], **fields
        )
    assert field in error.value.fields
    assert not Release.objects.exists()


def test_unknown_and_invisible_applications_look_the_same(payments):
    stranger = make_user("sam")
    with pytest.raises(ValidationFailed) as hidden:
        release_create(actor=stranger, application="payments-api", artifacts=[payments["builds"]["1.0.0"]])
    with pytest.raises(ValidationFailed) as missing:
        release_create(actor=stranger, application="nothing", artifacts=[payments["builds"]["1.0.0"]])
    assert hidden.value.fields == {"application": ["Unknown application 'payments-api'."]}
    assert missing.value.fields == {"application": ["Unknown application 'nothing'."]}


def test_creating_needs_register(payments, viewer):
    with pytest.raises(PermissionDenied):
        release_create(actor=viewer, application="payments-api", artifacts=[payments["builds"]["1.0.0"]])
    assert not Release.objects.exists()
    assert applications_for_releases(viewer).count() == 0
    assert list(applications_for_releases(payments["paula"]).values_list("slug", flat=True)) == [
        "payments-api",
        "payments-lib",
    ]


# --- update and delete ---------------------------------------------------------------------------------------


@pytest.fixture
def release(payments):
    builds = payments["builds"]
    return make_release(payments["api"], [builds["1.2.0"], builds["1.1.0"]], by=payments["paula"], notes="First.")


def positions(release) -> list[tuple[int, str]]:
    return list(release.release_artifacts.order_by("position").values_list("position", "artifact__version"))


def test_update_changes_notes_and_artifacts_and_audits_the_diff(payments, release):
    paula, builds = payments["paula"], payments["builds"]
    release_update(actor=paula, release=release, notes="Second.")
    release_update(actor=paula, release=release, notes="Second.")  # no change: no event, no history row
    release_update(actor=paula, release=release, artifacts=[builds["1.2.0"].pk, builds["1.0.0"].pk])
    assert positions(release) == [(0, "1.2.0"), (1, "1.0.0")]
    updates = AuditEvent.objects.filter(verb="release.updated").order_by("id")
    assert [e.details for e in updates] == [
        {"changes": {"notes": ["First.", "Second."]}},
        {"changes": {"artifacts": [["1.2.0", "1.1.0"], ["1.2.0", "1.0.0"]]}},
    ]
    # only the changed position was replaced
    kinds = list(
        ReleaseArtifact.history.filter(release_id=release.pk)
        .order_by("history_id")
        .values_list("history_type", "position")
    )
    assert kinds == [("+", 0), ("+", 1), ("-", 1), ("+", 1)]
    release.refresh_from_db()
    assert release.notes == "Second."


def test_update_can_reorder_and_shrink_the_list(payments, release):
    builds = payments["builds"]
    release_update(actor=None, release=release, artifacts=[builds["1.1.0"], builds["1.2.0"], builds["1.0.0"]])
    assert positions(release) == [(0, "1.1.0"), (1, "1.2.0"), (2, "1.0.0")]
    release_update(actor=None, release=release, artifacts=[builds["1.0.0"]])
    assert positions(release) == [(0, "1.0.0")]
    assert Release.objects.get().version == "1.2.0"  # the version stays


def test_update_validates_like_create(payments, release):
    builds = payments["builds"]
    with pytest.raises(ValidationFailed) as error:
        release_update(actor=payments["paula"], release=release, artifacts=[builds["lib"].pk], notes="x" * 10_001)
    assert set(error.value.fields) == {"artifacts", "notes"}
    with pytest.raises(ValidationFailed):
        release_update(actor=payments["paula"], release=release, artifacts=[])
    assert positions(release) == [(0, "1.2.0"), (1, "1.1.0")]


def test_update_and_delete_need_register_and_hide_invisible_releases(payments, release, viewer):
    stranger = make_user("sam")
    with pytest.raises(PermissionDenied):
        release_update(actor=viewer, release=release, notes="Mine")
    with pytest.raises(PermissionDenied):
        release_delete(actor=viewer, release=release)
    with pytest.raises(NotFound):
        release_update(actor=stranger, release=release, notes="Mine")
    with pytest.raises(NotFound):
        release_delete(actor=stranger, release=release)
    assert Release.objects.get().notes == "First."
    assert not events(verb__in=["release.updated", "release.deleted"])


def test_delete_removes_the_release_and_its_list_but_keeps_the_artifacts(payments, release):
    release_id = release.pk
    release_delete(actor=payments["paula"], release=release)
    assert not Release.objects.exists()
    assert not ReleaseArtifact.objects.exists()
    assert len(payments["builds"]) == 4
    event = AuditEvent.objects.get(verb="release.deleted")
    assert (event.object_id, event.details) == (str(release_id), {"application": "payments-api", "version": "1.2.0"})
    assert Release.history.filter(id=release_id).latest().history_type == "-"
    assert ReleaseArtifact.history.filter(release_id=release_id, history_type="-").count() == 2
    with pytest.raises(NotFound):
        release_delete(actor=payments["paula"], release=release)


def test_a_release_no_deployment_used_is_not_in_use(release):
    assert release_in_use(release) is False


# --- selectors -------------------------------------------------------------------------------------------------


def test_visibility_follows_the_application(payments, release, viewer):
    stranger = make_user("sam")
    assert [r.pk for r in releases_visible_to(viewer)] == [release.pk]
    assert list(releases_visible_to(stranger)) == []
    assert release_for(viewer, release.pk).in_use is False
    for pk in (release.pk, 999_999, "abc", None):
        with pytest.raises(NotFound):
            release_for(stranger if pk == release.pk else viewer, pk)


def test_history_lists_the_release_and_its_artifact_list(payments, release):
    builds = payments["builds"]
    release_update(actor=payments["paula"], release=release, notes="Second.", artifacts=[builds["1.0.0"]])
    entries = release_history(release)
    described = [(e.kind, e.subject, e.label) for e in entries]
    assert ("created", "release", "1.2.0") in described
    assert ("changed", "release", "1.2.0") in described
    assert ("created", "artifact", "#1 1.2.0") in described
    assert ("deleted", "artifact", "#2 1.1.0") in described
    assert ("created", "artifact", "#1 1.0.0") in described
    notes = next(e for e in entries if e.kind == "changed" and e.subject == "release")
    assert [(c.field, c.old, c.new) for c in notes.changes] == [("notes", "First.", "Second.")]
    created = next(e for e in entries if e.kind == "created" and e.subject == "release")
    assert {c.field: c.new for c in created.changes}["application"] == "payments-api"
    # a change of the artifact list alone shows as its artifact rows, not as an empty change of the release
    release_update(actor=None, release=release, artifacts=[builds["1.1.0"]])
    changed = [e for e in release_history(release) if e.subject == "release" and e.kind == "changed"]
    assert len(changed) == 1
    assert release.history.count() == 3


def test_a_release_a_deployment_used_never_changes(payments, release):
    environment = make_environment(payments["team"])
    make_target(environment, "web-1")
    template = template_create(
        actor=None, slug="noop", name="No-op", steps=[{"name": "Wait", "kind": "wait", "params": {"seconds": 0}}]
    )
    deployment_create(actor=None, release=release, environment=environment, template=template)
    with pytest.raises(Conflict, match="immutable once deployed"):
        release_update(actor=payments["paula"], release=release, notes="Changed.")
    with pytest.raises(Conflict, match="immutable once deployed"):
        release_delete(actor=payments["paula"], release=release)
    client = bearer_client(payments["paula"])
    assert client.get(f"/api/v1/releases/{release.pk}/").json()["in_use"] is True
