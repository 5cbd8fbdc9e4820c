"""Each built-in rule kind passes and fails on the right inputs; policy sets validate their rules when saved and
apply to the environments, tiers or all environments they are attached to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.accounts.services import team_add_member
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.policies.rules import KINDS, Context, branch_matches
from apps.policies.services import evaluate, policy_set_create, policy_sets_for
from apps.scheduling.services import booking_request, freeze_create
from tests.factories import make_application, make_environment, make_release, make_team, make_user, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene():
    team = make_team()
    user = make_user(is_superuser=True)
    team_add_member(actor=None, team=team, user=user)
    environment = make_environment(team, tier="production", timezone="Europe/Berlin")
    application = make_application(team)
    artifact = register(
        application,
        "1.4.2",
        by=user,
        branch="release/1.4",
        labels={"tests": "passed"},
        build_url="https://ci.example.com/builds/1",
    )
    return {"user": user, "environment": environment, "release": make_release(application, [artifact])}


def check(scene, kind: str, params: dict, **context):
    ctx = Context(
        release=scene["release"],
        artifacts=[ra.artifact for ra in scene["release"].release_artifacts.all()],
        environment=scene["environment"],
        strategy=context.pop("strategy", "canary"),
        requester=scene["user"],
        at=context.pop("at", datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),  # a Wednesday, 11:00 in Berlin
        **context,
    )
    return KINDS[kind].check(params, ctx)


@pytest.mark.parametrize(
    ("branch", "patterns", "allowed"),
    [
        ("main", ["main"], True),
        ("mainline", ["main"], False),
        ("release/1.4", ["release/*"], True),
        ("release/1.4/hotfix", ["release/*"], False),  # one * stays inside a path segment
        ("release/1.4/hotfix", ["release/**"], True),
        ("release", ["release/*"], False),
        ("feature/x", ["main", "release/*"], False),
        ("v1.2", ["v?.?"], True),
        ("", ["**"], False),  # a build without a branch is never allowed
        ("a.b", ["a?b"], True),
        ("a+b", ["a+b"], True),  # regex characters are literal
    ],
)
def test_branch_globs(branch, patterns, allowed):
    assert branch_matches(branch, patterns) is allowed


def test_allowed_strategies_and_branches(scene):
    assert check(scene, "allowed_strategies", {"strategies": ["canary", "blue_green"]}).passed
    failed = check(scene, "allowed_strategies", {"strategies": ["blue_green"]}, strategy="rolling")
    assert (failed.passed, failed.waitable) == (False, False)
    assert "allows only blue_green, not rolling" in failed.message
    assert check(scene, "allowed_branches", {"patterns": ["main", "release/*"]}).passed
    failed = check(scene, "allowed_branches", {"patterns": ["main"]})
    assert not failed.passed
    assert "1.4.2 (release/1.4)" in failed.message


def test_artifact_requirements(scene):
    assert check(
        scene, "artifact_requirements", {"digest": True, "build_url": True, "labels": {"tests": "passed"}}
    ).passed
    failed = check(scene, "artifact_requirements", {"labels": {"tests": "passed", "scan": "clean"}})
    assert not failed.passed
    assert "scan=(none), needs clean" in failed.message


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (datetime(2026, 11, 25, 7, 59, tzinfo=UTC), False),  # Wednesday 08:59 in Berlin (UTC+1)
        (datetime(2026, 11, 25, 8, 0, tzinfo=UTC), True),  # 09:00
        (datetime(2026, 11, 25, 15, 59, tzinfo=UTC), True),  # 16:59
        (datetime(2026, 11, 25, 16, 0, tzinfo=UTC), False),  # 17:00: the end is excluded
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 3, 29, 7, 30, tzinfo=UTC), False),  # Sunday of the switch to summer time
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),  # Monday 09:00 CEST (UTC+2)
        (datetime(2026, 3, 30, 6, 59, tzinfo=UTC), False),  # Monday 08:59 CEST
        (datetime(2026, 10, 26, 8, 0, tzinfo=UTC), True),  # Monday after the switch back: 09:00 CET
        (datetime(2026, 10, 26, 7, 30, tzinfo=UTC), False),  # 08:30 CET
    ],
)
def test_deployment_window_in_the_environments_time_zone_across_daylight_saving(scene, at, inside):
    params = {"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    outcome = check(scene, "deployment_window", params, at=at)
    assert outcome.passed is inside
    assert outcome.waitable is not inside
    assert outcome.inputs["timezone"] == "Europe/Berlin"


def test_no_freeze_and_require_booking_wait_rather_than_fail(scene):
    at = datetime.now(UTC) + timedelta(days=2)
    assert check(scene, "no_freeze", {}, at=at).passed
    freeze_create(
        actor=None,
        environments=[scene["environment"]],
        starts_at=at - timedelta(hours=1),
        ends_at=at + timedelta(hours=1),
        title="Launch",
        reason="Launch day",
    )
    frozen = check(scene, "no_freeze", {}, at=at)
    assert (frozen.passed, frozen.waitable) == (False, True)
    assert "Launch" in frozen.message
    later = at + timedelta(days=1)  # the calendar refuses bookings inside a freeze
    outside = check(scene, "require_booking", {}, at=later)
    assert (outside.passed, outside.waitable) == (False, True)
    booking_request(
        actor=scene["user"],
        environment=scene["environment"],
        starts_at=later - timedelta(minutes=30),
        ends_at=later + timedelta(minutes=30),
        title="Release 1.4.2",
    )
    inside = check(scene, "require_booking", {}, at=later)
    assert inside.passed, inside.message


def test_change_ticket_and_max_concurrent(scene):
    assert not check(scene, "change_ticket", {"pattern": r"^CHG-\d+$"}).passed
    assert not check(scene, "change_ticket", {"pattern": r"^CHG-\d+$"}, change_ticket="chg-1").passed
    assert check(scene, "change_ticket", {"pattern": r"^CHG-\d+$"}, change_ticket="CHG-42").passed
    params = {"environments": [scene["environment"].slug], "max": 1}
    assert check(scene, "max_concurrent", params).passed


def test_expressions_pass_fail_and_fail_closed(scene):
    holds = 'deployment.strategy in ["canary", "blue_green"] && artifacts.all(a, a.labels["tests"] == "passed")'
    assert check(scene, "expression", {"expression": holds}).passed
    assert check(scene, "expression", {"expression": 'environment.tier == "production" && time.hour == 11'}).passed
    false = check(scene, "expression", {"expression": 'time.weekday == "sat"', "message": "Saturdays only."})
    assert (false.passed, false.message) == (False, "Saturdays only.")
    broken = check(scene, "expression", {"expression": 'artifacts[0].labels["scan"] == "clean"'})
    assert not broken.passed
    assert "could not be evaluated" in broken.message
    assert "fails closed" in broken.message
    not_boolean = check(scene, "expression", {"expression": "release.version"})
    assert not not_boolean.passed
    assert "not true or false" in not_boolean.message


def test_policy_sets_validate_rules_when_saved(scene):
    environment = scene["environment"]
    with pytest.raises(ValidationFailed) as error:
        policy_set_create(
            actor=scene["user"],
            slug="prod",
            name="Production",
            environments=[environment],
            rules=[
                {"kind": "allowed_strategies", "params": {"strategies": ["teleport"]}},
                {"kind": "expression", "params": {"expression": "release.version =="}},
                {"kind": "no_such_kind"},
                {"kind": "change_ticket", "params": {"pattern": "(unclosed"}},
            ],
        )
    fields = error.value.fields
    assert set(fields) == {
        "rules[0].params.strategies.0",
        "rules[1].params.expression",
        "rules[2].kind",
        "rules[3].params.pattern",
    }
    assert fields["rules[1].params.expression"][0].startswith("Not a valid expression")
    with pytest.raises(PermissionDenied):
        policy_set_create(actor=make_user(), slug="x", name="X", all_environments=True, rules=[{"kind": "no_freeze"}])


def test_policy_sets_apply_by_environment_tier_or_all_and_evaluate_every_rule(scene):
    environment, user = scene["environment"], scene["user"]
    other = make_environment(make_team(), tier="development")
    policy_set_create(
        actor=user,
        slug="prod",
        name="Production",
        tiers=["production"],
        rules=[
            {"kind": "allowed_strategies", "params": {"strategies": ["canary", "blue_green"]}},
            {"kind": "allowed_branches", "params": {"patterns": ["main"]}, "overridable": False},
        ],
    )
    policy_set_create(
        actor=user,
        slug="everywhere",
        name="Everywhere",
        all_environments=True,
        rules=[
            {"kind": "artifact_requirements", "params": {"digest": True}},
        ],
    )
    policy_set_create(actor=user, slug="dev", name="Dev", environments=[other], rules=[{"kind": "no_freeze"}])
    assert [s.slug for s in policy_sets_for(environment)] == ["everywhere", "prod"]
    assert [s.slug for s in policy_sets_for(other)] == ["dev", "everywhere"]
    results = evaluate(release=scene["release"], environment=environment, strategy="canary", requester=user)
    assert [(r.policy_set, r.kind, r.passed, r.overridable) for r in results] == [
        ("everywhere", "artifact_requirements", True, True),
        ("prod", "allowed_strategies", True, True),
        ("prod", "allowed_branches", False, False),
    ]


def _succeeded(release, environment, finished_at):
    """A deployment row that succeeded at `finished_at` (what the soak time reads)."""
    from apps.deployments.models import Deployment, TemplateVersion
    from tests.deployments.conftest import RELEASE_DIR, make_template

    version = TemplateVersion.objects.get(template=make_template(RELEASE_DIR))
    return Deployment.objects.create(
        release=release,
        environment=environment,
        application=release.application,
        template_version=version,
        strategy="all_at_once",
        status="succeeded",
        plan={},
        plan_digest="0" * 64,
        finished_at=finished_at,
    )


def test_require_previous_stage_with_a_soak_time(scene):
    from apps.environments.services import lifecycle_create
    from apps.releases.models import Release

    team = scene["environment"].owner_team
    staging = make_environment(team, tier="staging")
    flow = lifecycle_create(
        actor=None,
        slug="flow",
        name="Flow",
        stages=[
            {"name": "staging", "automatic": True, "environments": [staging]},
            {"name": "production", "automatic": False, "environments": [scene["environment"]]},
        ],
    )
    Release.objects.filter(pk=scene["release"].pk).update(lifecycle=flow)
    scene["release"].refresh_from_db()
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    missing = check(scene, "require_previous_stage", {"soak": "24h"}, at=at)
    assert (missing.passed, missing.waitable) == (False, False)
    assert "has not succeeded in" in missing.message
    _succeeded(scene["release"], staging, at - timedelta(hours=23))
    soaking = check(scene, "require_previous_stage", {"soak": "24h"}, at=at)
    assert (soaking.passed, soaking.waitable) == (False, True)
    assert soaking.inputs["ready_at"] == (at + timedelta(hours=1)).isoformat()
    assert check(scene, "require_previous_stage", {"soak": "24h"}, at=at + timedelta(hours=1)).passed
    assert check(scene, "require_previous_stage", {}, at=at).passed


def test_max_concurrent_counts_what_runs_across_the_group(scene):
    from apps.deployments.models import Deployment

    params = {"environments": [scene["environment"].slug], "max": 1}
    assert check(scene, "max_concurrent", params).passed
    running = _succeeded(scene["release"], scene["environment"], None)
    Deployment.objects.filter(pk=running.pk).update(status="running")
    busy = check(scene, "max_concurrent", params)
    assert (busy.passed, busy.waitable, busy.inputs["running"]) == (False, True, 1)
    assert check(scene, "max_concurrent", params, deployment=running).passed  # itself does not count


def test_require_approvals_reads_the_approval_gate(scene):
    from apps.approvals.services import policy_set as approval_gate_set

    approvers = make_team()
    params = {"min": 2, "teams": [approvers.slug]}
    assert not check(scene, "require_approvals", params).passed
    approval_gate_set(actor=None, environment=scene["environment"], required_approvals=1)
    assert "fewer than the 2" in check(scene, "require_approvals", params).message
    approval_gate_set(actor=None, environment=scene["environment"], required_approvals=2, eligible_teams=[approvers])
    assert check(scene, "require_approvals", params).passed
    assert not check(scene, "require_approvals", {"min": 2, "teams": ["someone-else"]}).passed


def test_an_expression_that_runs_too_long_fails_closed(scene, monkeypatch):
    from apps.policies import rules

    monkeypatch.setattr(rules, "EXPRESSION_SECONDS", 0.001)
    numbers = "[" + ",".join(str(n) for n in range(1, 31)) + "]"
    slow = f"{numbers}.all(x, {numbers}.all(y, {numbers}.all(z, x * y * z > 0)))"  # 27,000 products
    outcome = check(scene, "expression", {"expression": slow})
    assert not outcome.passed
    assert "fails closed" in outcome.message
