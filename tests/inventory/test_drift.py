"""Drift: what targets say they run, compared with the installation records that real deployments wrote.

Targets are directories deployed by the release_dir step through a real worker; with `stage(versions=True)`
their health check URL (a real local HTTP server) answers the VERSION file behind their `current` symlink,
so changing a target by hand is changing that symlink or file.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.deployments.services import deployment_create, deployment_rollback
from apps.environments.services import environment_grant, target_update
from apps.inventory.models import Installation, Observation
from apps.inventory.services import drift_check, target_report
from apps.inventory.tasks import check_drift
from apps.notifications.models import Delivery
from tests.factories import (
    bearer_client,
    digest_of,
    make_application,
    make_environment,
    make_target,
    make_team,
    make_user,
    session_client,
)
from tests.notifications.conftest import wait_for_deliveries

from .conftest import deploy, subscribe_to_drift, wait_for


def drift_events(verb: str, target) -> list[AuditEvent]:
    """drift.detected / drift.cleared events of one target, oldest first."""
    return list(
        AuditEvent.objects.filter(verb=verb, object_type="environments.target", object_id=str(target.pk)).order_by("id")
    )


def observation(target) -> Observation:
    return Observation.objects.select_related("expected").get(target=target)


def by_target(readings) -> dict[str, tuple]:
    """Drift check readings as {target: (version read, drifted, problem)}."""
    return {
        r.target.name: (
            r.observation.version if r.observation else None,
            bool(r.observation and r.observation.drifted),
            r.problem,
        )
        for r in readings
    }


def point_current_at(s, target, version: str) -> None:
    """What someone with a shell on the target does: switch `current` to another release, outside ReleaseHub."""
    link = s.root / target.name / "current"
    tmp = link.with_name("current.by-hand")
    os.symlink(f"releases/{version}", tmp)
    os.replace(tmp, link)


def version_file(s, target, version: str) -> Path:
    return s.root / target.name / "releases" / version / "VERSION"


# --- Reported readings -------------------------------------------------------------------------------------


def test_drift_is_detected_for_a_target_whose_reported_version_differs_and_cleared_when_it_matches(
    stage, celery_worker, hook_server
):
    s = stage(targets=2)
    deploy(s, "1.0.0")
    web1, web2 = s.targets
    subscription = subscribe_to_drift(s.deployer, s.environment, hook_server)
    client = bearer_client(s.deployer, scopes=("read", "inventory:write"))
    url = f"/api/v1/environments/{s.environment.slug}/targets/web-1/report/"
    app = s.application.slug

    response = client.post(url, {"application": app, "version": "1.0.0"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["target"], body["application"], body["version"], body["source"]) == ("web-1", app, "1.0.0", "report")
    assert (body["drifted"], body["recorded_version"], body["drifted_since"]) == (False, "1.0.0", None)
    assert drift_events("drift.detected", web1) == []

    body = client.post(url, {"application": app, "version": "1.0.1-hotfix"}).json()
    assert (body["version"], body["drifted"], body["recorded_version"]) == ("1.0.1-hotfix", True, "1.0.0")
    assert body["drifted_since"] is not None
    saved = observation(web1)
    assert (saved.drifted, saved.expected.version, saved.reported_by) == (True, "1.0.0", s.deployer)
    (detected,) = drift_events("drift.detected", web1)
    assert detected.details["reported"]["version"] == "1.0.1-hotfix"
    assert detected.details["recorded"]["version"] == "1.0.0"
    (delivery,) = wait_for_deliveries(1, event="drift.detected")
    assert (delivery.status, delivery.subscription_id) == ("sent", subscription.pk)
    (request,) = hook_server.received
    assert request.signature_ok
    assert request.headers["X-ReleaseHub-Event"] == "drift.detected"
    sent = json.loads(request.body)
    assert (sent["data"]["target"], sent["data"]["reported"]["version"]) == ("web-1", "1.0.1-hotfix")

    # The same drift reported again is the same drift: not announced twice, still drifted since the first time.
    again = client.post(url, {"application": app, "version": "1.0.1-hotfix"}).json()
    assert (again["drifted"], again["drifted_since"]) == (True, body["drifted_since"])
    assert len(drift_events("drift.detected", web1)) == 1
    assert Delivery.objects.filter(event="drift.detected").count() == 1

    body = client.post(url, {"application": app, "version": "1.0.0"}).json()
    assert (body["drifted"], body["drifted_since"]) == (False, None)
    (cleared,) = drift_events("drift.cleared", web1)
    assert cleared.details["reported"]["version"] == "1.0.0"
    assert Delivery.objects.filter(event="drift.detected").count() == 1  # clearing is audited, not announced
    assert not Observation.objects.filter(target=web2).exists()  # only web-1 said anything

    # When the target sends the digest, the digest decides, whatever the version says.
    built = s.releases["1.0.0"].release_artifacts.get().artifact
    body = client.post(url, {"application": app, "version": "whatever", "digest": built.digest}).json()
    assert (body["drifted"], body["recorded_digest"]) == (False, built.digest)
    body = client.post(url, {"application": app, "version": "1.0.0", "digest": digest_of("rebuilt")}).json()
    assert body["drifted"] is True
    assert len(drift_events("drift.detected", web1)) == 2


def test_a_reading_taken_before_the_last_deployment_is_not_drift(stage, celery_worker):
    s = stage(targets=1)
    (web1,) = s.targets
    target_update(actor=None, target=web1, health_check_url="")  # only what the target reports counts here
    deploy(s, "1.0.0")
    reading = target_report(
        actor=s.deployer, environment=s.environment, target=web1, application=s.application, version="1.0.0"
    )
    assert reading.drifted is False

    deploy(s, "2.0.0")  # the 1.0.0 reading is now older than the record: it proves nothing either way
    stale = observation(web1)
    assert (stale.version, stale.expected.version, stale.drifted) == ("1.0.0", "2.0.0", False)
    assert check_drift() == 0  # the periodic check compares reported readings again: still stale
    assert observation(web1).drifted is False
    assert drift_events("drift.detected", web1) == []

    # The same version reported after the deployment is a fresh reading: now it is drift.
    fresh = target_report(
        actor=s.deployer, environment=s.environment, target=web1, application=s.application, version="1.0.0"
    )
    assert (fresh.drifted, fresh.expected.version) == (True, "2.0.0")
    assert len(drift_events("drift.detected", web1)) == 1


def test_a_reading_taken_before_a_rollback_to_nothing_is_not_drift(stage, celery_worker, hook_server):
    """The first deployment to a target is rolled back: ReleaseHub itself removed the release, so the target's
    reading from before the rollback proves nothing, like any reading older than the last change of the record."""
    s = stage(
        targets=1,
        versions=True,
        steps=[
            {"name": "Install", "kind": "release_dir", "params": {}},
            {"name": "Look", "kind": "manual_intervention", "params": {"instructions": "Check the site."}},
        ],
    )
    (web1,) = s.targets
    subscribe_to_drift(s.deployer, s.environment, hook_server)
    deployment = wait_for(
        deployment_create(
            actor=s.deployer,
            release=s.releases["1.0.0"],
            environment=s.environment,
            template=s.template,
            strategy_options={"health_gate": False},
        ),
        {"paused"},
    )
    assert s.current(web1) == "1.0.0"
    assert by_target(drift_check(actor=None, environment=s.environment)) == {"web-1": ("1.0.0", False, "")}

    back = wait_for(deployment_rollback(actor=s.deployer, deployment=deployment))
    assert back.status == "rolled_back", back.status_reason
    assert s.current(web1) is None  # release_dir removed what it installed first
    assert not Installation.objects.filter(target=web1, current=True).exists()
    # BUG (apps/inventory/services.py, _compare): the stale rule only applies while an installation is current,
    # so the 1.0.0 reading from before the rollback is compared with "nothing recorded" and flagged as drift,
    # audited and announced as a change made outside ReleaseHub - a false alarm that stays (the target now
    # answers 500, so no new reading replaces it).
    assert drift_events("drift.detected", web1) == [], "a rollback to nothing turns the last reading into drift"
    assert observation(web1).drifted is False
    assert not Delivery.objects.filter(event="drift.detected").exists()


# --- Changed by hand, found by reading the targets -----------------------------------------------------------


def test_a_target_changed_by_hand_shows_up_as_drift_until_redeployed_or_fixed(stage, celery_worker, hook_server):
    s = stage(targets=3, versions=True)
    deploy(s, "1.0.0")
    deploy(s, "2.0.0")  # releases/1.0.0 stays next to releases/2.0.0 on every target
    _, web2, web3 = s.targets
    subscription = subscribe_to_drift(s.deployer, s.environment, hook_server)
    client = bearer_client(s.deployer, scopes=("read", "inventory:write"))
    check_url = f"/api/v1/environments/{s.environment.slug}/drift-check/"

    response = client.post(check_url)
    assert response.status_code == 200, response.json()
    assert [(r["target"], r["observation"]["version"], r["observation"]["drifted"]) for r in response.json()] == [
        ("web-1", "2.0.0", False),
        ("web-2", "2.0.0", False),
        ("web-3", "2.0.0", False),
    ]
    assert not AuditEvent.objects.filter(verb="drift.detected").exists()

    point_current_at(s, web2, "1.0.0")  # someone went back by hand
    assert s.current(web2) == "1.0.0"
    response = client.post(check_url)
    rows = {r["target"]: r for r in response.json()}
    assert {name: (r["observation"]["version"], r["observation"]["drifted"]) for name, r in rows.items()} == {
        "web-1": ("2.0.0", False),
        "web-2": ("1.0.0", True),
        "web-3": ("2.0.0", False),
    }
    assert (rows["web-2"]["observation"]["source"], rows["web-2"]["observation"]["recorded_version"]) == (
        "health_check",
        "2.0.0",
    )
    (detected,) = drift_events("drift.detected", web2)
    assert detected.actor_name == s.deployer.username
    assert detected.details["reported"] == {"version": "1.0.0", "digest": "", "source": "health_check"}
    checked = AuditEvent.objects.filter(verb="drift.checked").latest("id")
    assert checked.details == {"read": 3, "drifted": 1}
    (delivery,) = wait_for_deliveries(1, event="drift.detected")
    assert (delivery.status, delivery.subscription_id) == ("sent", subscription.pk)
    assert json.loads(hook_server.received[0].body)["data"]["target"] == "web-2"

    # Someone patches web-3's files in place; the periodic task (no person: the system) finds it.
    version_file(s, web3, "2.0.0").write_text("2.0.0-patched")
    assert check_drift() == 2
    assert by_target(drift_check(actor=None, environment=s.environment)) == {
        "web-1": ("2.0.0", False, ""),
        "web-2": ("1.0.0", True, ""),
        "web-3": ("2.0.0-patched", True, ""),
    }
    (detected,) = drift_events("drift.detected", web3)
    assert detected.actor_name == "system"
    assert len(drift_events("drift.detected", web2)) == 1  # still the same drift: not announced again
    deliveries = wait_for_deliveries(2, event="drift.detected")
    assert [json.loads(r.body)["data"]["target"] for r in hook_server.received] == ["web-2", "web-3"]
    assert [d.status for d in deliveries] == ["sent", "sent"]

    # Fixed by hand: the next periodic check clears it.
    version_file(s, web3, "2.0.0").write_text("2.0.0")
    assert check_drift() == 1
    assert observation(web3).drifted is False
    (cleared,) = drift_events("drift.cleared", web3)
    assert cleared.actor_name == "system"

    # Fixed by redeploying: current is switched back and the target then reports the recorded version.
    deploy(s, "2.0.0")
    assert s.current(web2) == "2.0.0"
    assert by_target(drift_check(actor=s.deployer, environment=s.environment)) == {
        "web-1": ("2.0.0", False, ""),
        "web-2": ("2.0.0", False, ""),
        "web-3": ("2.0.0", False, ""),
    }
    assert len(drift_events("drift.cleared", web2)) == 1
    assert check_drift() == 0
    assert Delivery.objects.filter(event="drift.detected").count() == 2  # one per drift, none for clearing


def test_drift_check_reads_json_answers_and_reports_unreadable_targets_as_problems(stage, celery_worker):
    s = stage(targets=4)
    deploy(s, "1.0.0")
    web1, web2, web3, web4 = s.targets
    built = s.releases["1.0.0"].release_artifacts.get().artifact
    s.server.files["/about/web-1"] = json.dumps({"application": s.application.slug, "digest": built.digest}).encode()
    s.server.files["/about/web-2"] = json.dumps({"version": "1.0.0", "digest": digest_of("rebuilt")}).encode()
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}/version"
    for target, url in (
        (web1, f"{s.server.url}/about/web-1"),
        (web2, f"{s.server.url}/about/web-2"),
        (web3, f"{s.server.url}/missing"),
        (web4, nowhere),
    ):
        target_update(actor=None, target=target, health_check_url=url)

    readings = by_target(drift_check(actor=s.deployer, environment=s.environment))
    assert readings["web-1"] == ("", False, "")  # the digest alone, and it is the recorded build's
    assert readings["web-2"] == ("1.0.0", True, "")  # the right version number, but another build
    assert readings["web-3"] == (None, False, "answered 404")
    assert readings["web-4"][:2] == (None, False)
    assert readings["web-4"][2].startswith("unreachable: ")
    assert set(Observation.objects.filter(environment=s.environment).values_list("target__name", flat=True)) == {
        "web-1",
        "web-2",
    }
    assert [e.object_id for e in AuditEvent.objects.filter(verb="drift.detected")] == [str(web2.pk)]


# --- Who may report and check --------------------------------------------------------------------------------


def test_report_and_drift_check_need_deploy_on_the_environment_and_the_inventory_write_scope(db):
    deployer, viewer, stranger = make_user(), make_user(), make_user()
    team = make_team(members=(deployer,))
    watchers = make_team(members=(viewer,))
    make_team(members=(stranger,))
    environment = make_environment(team)
    environment_grant(actor=None, environment=environment, team=watchers, action="view")
    make_target(environment, "web-1")
    application = make_application(team)
    application_grant(actor=None, application=application, team=watchers, action="view")
    hidden = make_application(make_team())  # an application the deployer cannot see
    slug = environment.slug
    report = f"/api/v1/environments/{slug}/targets/web-1/report/"
    check = f"/api/v1/environments/{slug}/drift-check/"
    body = {"application": application.slug, "version": "1.0.0"}
    writer = ("read", "inventory:write")

    def error(response, status: int) -> dict:
        assert response.status_code == status, (response.status_code, response.content)
        return response.json()

    # The scope: a read-only token may not report or check, even for someone who may deploy.
    for url, data in ((report, body), (check, None)):
        denied = error(bearer_client(deployer, scopes=("read",)).post(url, data), 403)
        assert "inventory:write" in denied["detail"]
        # People with view but not deploy are refused; people who cannot see the environment do not learn it exists.
        assert error(bearer_client(viewer, scopes=writer).post(url, data), 403)["error"] == "permission_denied"
        assert error(session_client(viewer).post(url, data), 403)["error"] == "permission_denied"
        assert error(bearer_client(stranger, scopes=writer).post(url, data), 404)["error"] == "not_found"
    assert not Observation.objects.exists()

    client = bearer_client(deployer, scopes=writer)
    assert error(client.post(f"/api/v1/environments/{slug}/targets/web-9/report/", body), 404)["error"] == "not_found"
    assert error(client.post("/api/v1/environments/nowhere/drift-check/"), 404)["error"] == "not_found"
    missing = error(client.post(report, {"application": application.slug}), 400)
    assert list(missing["fields"]) == ["version"]
    unknown = error(client.post(report, {"application": "no-such-app", "version": "1"}), 400)
    assert list(unknown["fields"]) == ["application"]
    invisible = error(client.post(report, {"application": hidden.slug, "version": "1"}), 400)
    assert list(invisible["fields"]) == ["application"]
    bad_digest = error(client.post(report, {"application": application.slug, "digest": "md5:abc"}), 400)
    assert list(bad_digest["fields"]) == ["digest"]
    assert not Observation.objects.exists()

    accepted = error(client.post(report, body), 200)
    assert (accepted["drifted"], accepted["recorded_version"]) == (True, None)  # nothing deployed there yet
    assert error(session_client(deployer).post(check), 200) == []  # no target has a health check URL
    assert error(client.post(check), 200) == []
