"""Installation records: a timeline per target and application, and one open row for what runs now."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from apps.accounts.services import team_add_member
from apps.catalog.services import application_grant
from apps.deployments.services import deployment_create, template_create
from apps.inventory.models import Installation
from apps.inventory.selectors import current_installations
from apps.inventory.services import record_installation, record_rollback
from tests.factories import (
    make_application,
    make_environment,
    make_release,
    make_target,
    make_team,
    make_user,
    register,
)


@pytest.fixture
def scene(db):
    team = make_team()
    ci = make_user("ci")
    environment = make_environment(team)
    target = make_target(environment, "web-1")
    application = make_application(team)

    team_add_member(actor=None, team=team, user=ci)
    application_grant(actor=None, application=application, team=team, action="register")
    builds = {v: register(application, v, by=ci) for v in ("1.0.0", "2.0.0")}
    template = template_create(
        actor=None, slug="w", name="W", steps=[{"name": "W", "kind": "wait", "params": {"seconds": 0}}]
    )
    deployments = {
        v: deployment_create(
            actor=None, release=make_release(application, [builds[v]]), environment=environment, template=template
        )
        for v in builds
    }
    return {"target": target, "builds": builds, "deployments": deployments, "environment": environment}


def test_installing_closes_the_previous_record_and_rollback_reopens_what_it_replaced(scene):
    target, builds, deployments = scene["target"], scene["builds"], scene["deployments"]
    first = record_installation(deployment=deployments["1.0.0"], target_id=target.pk, artifact_id=builds["1.0.0"].pk)
    again = record_installation(deployment=deployments["1.0.0"], target_id=target.pk, artifact_id=builds["1.0.0"].pk)
    assert again == first  # a re-run step records nothing new
    second = record_installation(deployment=deployments["2.0.0"], target_id=target.pk, artifact_id=builds["2.0.0"].pk)
    first.refresh_from_db()
    assert (first.current, first.until is not None, second.replaced) == (False, True, first)
    restored = record_rollback(deployment=deployments["2.0.0"], target_id=target.pk)
    assert (restored.artifact, restored.current, restored.replaced) == (builds["1.0.0"], True, second)
    assert [i.artifact.version for i in Installation.objects.filter(target=target).order_by("since", "id")] == [
        "1.0.0",
        "2.0.0",
        "1.0.0",
    ]


def test_what_runs_where_is_one_query(scene, django_assert_num_queries):
    for name in ("web-2", "web-3"):
        target = make_target(scene["environment"], name)
        record_installation(
            deployment=scene["deployments"]["2.0.0"], target_id=target.pk, artifact_id=scene["builds"]["2.0.0"].pk
        )
    with django_assert_num_queries(1):
        rows = [(i.target.name, i.artifact.version) for i in current_installations(environment=scene["environment"])]
    assert rows == [("web-2", "2.0.0"), ("web-3", "2.0.0")]


def test_the_database_keeps_one_open_record_per_target_and_application(scene):
    target, builds, deployments = scene["target"], scene["builds"], scene["deployments"]
    first = record_installation(deployment=deployments["1.0.0"], target_id=target.pk, artifact_id=builds["1.0.0"].pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Installation.objects.create(
            environment=first.environment,
            target=target,
            application=first.application,
            artifact=builds["2.0.0"],
            deployment=deployments["2.0.0"],
            since=first.since,
        )


def test_undoing_twice_restores_once(scene):
    target, builds, deployments = scene["target"], scene["builds"], scene["deployments"]
    record_installation(deployment=deployments["1.0.0"], target_id=target.pk, artifact_id=builds["1.0.0"].pk)
    record_installation(deployment=deployments["2.0.0"], target_id=target.pk, artifact_id=builds["2.0.0"].pk)
    first = record_rollback(deployment=deployments["2.0.0"], target_id=target.pk)
    again = record_rollback(deployment=deployments["2.0.0"], target_id=target.pk)
    assert again == first
    assert [i.artifact.version for i in current_installations(target=target)] == ["1.0.0"]
