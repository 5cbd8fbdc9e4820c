"""Environment services: permissions, validation, and the history and audit trail of every write."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core import crypto
from apps.core.context import Channel, acting
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import can
from apps.environments.models import MASK, Environment, Lifecycle, LifecycleStage, Target, Variable
from apps.environments.services import (
    environment_create,
    environment_delete,
    environment_grant,
    environment_revoke,
    environment_update,
    lifecycle_create,
    lifecycle_delete,
    lifecycle_update,
    target_create,
    target_delete,
    target_update,
    variable_create,
    variable_delete,
    variable_update,
)
from tests.factories import make_environment, make_lifecycle, make_target, make_team, make_user, make_variable


@pytest.fixture
def payments(db):
    paula = make_user("paula")
    return make_team("payments", members=(paula,)), paula


@pytest.fixture
def env(payments):
    return make_environment(payments[0], "payments-dev", tier="development")


@pytest.fixture
def paula(payments):
    return payments[1]


def fresh(user: User) -> User:
    """The user without cached permissions."""
    return User.objects.get(pk=user.pk)


def verbs(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("verb", flat=True))


def test_every_domain_model_keeps_history():
    for model in (Environment, Target, Variable, Lifecycle, LifecycleStage):
        assert hasattr(model, "history"), model
        assert apps.get_model(model._meta.app_label, f"Historical{model.__name__}")


# --- environments -------------------------------------------------------------------------------------


def test_create_grants_the_owner_team_everything_but_approve(payments):
    team, paula = payments
    admin = make_user("admin")
    admin.user_permissions.add(Permission.objects.get(codename="add_environment"))
    with acting(channel=Channel.API, user=admin, ip="192.0.2.1"):
        environment = environment_create(
            actor=fresh(admin), slug="payments-dev", name="Dev", owner_team=team, labels={"team": "payments"}
        )
    assert [a for a in ("view", "deploy", "approve", "book", "manage") if can(paula, a, environment)] == [
        "view",
        "deploy",
        "book",
        "manage",
    ]
    event = AuditEvent.objects.get(verb="environment.created")
    assert (event.actor, event.channel, event.ip) == (admin, "api", "192.0.2.1")
    assert event.details == {"tier": "development", "owner_team": "payments"}
    row = environment.history.get()
    assert (row.history_type, row.history_user, row.history_channel, row.history_ip) == ("+", admin, "api", "192.0.2.1")


def test_create_needs_add_environment(payments):
    team, paula = payments
    with pytest.raises(PermissionDenied):
        environment_create(actor=paula, slug="x", name="X", owner_team=team)
    staff = make_user("stella", is_staff=True)
    with pytest.raises(PermissionDenied):
        environment_create(actor=staff, slug="x", name="X", owner_team=team)
    assert not Environment.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"slug": "not a slug"}, "slug"),
        ({"name": ""}, "name"),
        ({"tier": "moon"}, "tier"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"labels": ["a"]}, "labels"),
        ({"labels": {"k": 1}}, "labels"),
        ({"labels": {f"k{i}": "v" for i in range(51)}}, "labels"),
        ({"labels": {"bad key": "v"}}, "labels"),
        ({"labels": {"k": "v" * 256}}, "labels"),
        ({"secret_sauce": 1}, "secret_sauce"),
    ],
)
def test_create_refuses_bad_fields(payments, fields, field):
    base = {"slug": "dev", "name": "Dev", "owner_team": payments[0]}
    with pytest.raises(ValidationFailed) as error:
        environment_create(actor=None, **{**base, **fields})
    assert field in error.value.fields
    assert not Environment.objects.exists()
    assert not AuditEvent.objects.filter(verb="environment.created").exists()


def test_create_refuses_a_taken_slug(env, payments):
    with pytest.raises(Conflict):
        environment_create(actor=None, slug="payments-dev", name="Again", owner_team=payments[0])
    assert Environment.objects.count() == 1


def test_update_records_the_diff(env, paula):
    with acting(channel=Channel.API, user=paula):
        environment_update(actor=paula, environment=env, name="Development", labels={"team": "payments", "x": "y"})
        environment_update(actor=paula, environment=env, name="Development")  # nothing changes: nothing recorded
    event = AuditEvent.objects.get(verb="environment.updated")
    assert event.details == {
        "changes": {"name": ["Payments Dev", "Development"], "labels": [{}, {"team": "payments", "x": "y"}]}
    }
    assert env.history.count() == 2
    assert env.history.latest().history_user == paula


def test_update_refuses_the_slug_and_bad_values(env, paula):
    with pytest.raises(ValidationFailed):
        environment_update(actor=paula, environment=env, slug="renamed")
    with pytest.raises(ValidationFailed):
        environment_update(actor=paula, environment=env, timezone="Nowhere/Else")
    env.refresh_from_db()
    assert (env.slug, env.timezone) == ("payments-dev", "UTC")
    assert not AuditEvent.objects.filter(verb="environment.updated").exists()


def test_viewers_get_permission_denied_and_strangers_not_found(env):
    viewer, stranger = make_user("vera"), make_user("sam")
    environment_grant(actor=None, environment=env, team=make_team("viewers", members=(viewer,)), action="view")
    for call in (
        lambda who: environment_update(actor=who, environment=env, name="Mine"),
        lambda who: environment_delete(actor=who, environment=env),
        lambda who: target_create(actor=who, environment=env, name="t", address="a"),
        lambda who: variable_create(actor=who, environment=env, name="V", value="v"),
        lambda who: environment_grant(actor=who, environment=env, team=make_team(), action="view"),
    ):
        with pytest.raises(PermissionDenied):
            call(viewer)
        with pytest.raises(NotFound):
            call(stranger)
    assert Environment.objects.get().name == "Payments Dev"


def test_delete_only_empty_environments(env, paula):
    target = make_target(env, "web-1")
    with pytest.raises(Conflict):
        environment_delete(actor=paula, environment=env)
    target_delete(actor=paula, target=target)
    make_variable(env, "V")
    with pytest.raises(Conflict):
        environment_delete(actor=paula, environment=env)
    variable_delete(actor=paula, variable=Variable.objects.get())
    lifecycle = make_lifecycle([[env]])
    with pytest.raises(Conflict):
        environment_delete(actor=paula, environment=env)
    lifecycle_delete(actor=None, lifecycle=lifecycle)
    env_id = env.pk
    environment_delete(actor=paula, environment=env)
    assert not Environment.objects.exists()
    assert Environment.history.filter(id=env_id).latest().history_type == "-"
    assert verbs(verb="environment.deleted") == ["environment.deleted"]


def test_grant_and_revoke(env, paula):
    ops = make_team("ops")
    environment_grant(actor=paula, environment=env, team=ops, action="approve")
    environment_grant(actor=paula, environment=env, team=ops, action="approve")  # held already: nothing new
    environment_revoke(actor=paula, environment=env, team=ops, action="approve")
    with pytest.raises(ValidationFailed):
        environment_grant(actor=paula, environment=env, team=ops, action="destroy")
    # Granting approve grants view too (approving what one cannot see is no use); revoking leaves view.
    assert verbs(object_type="accounts.team", object_id=str(ops.pk)) == [
        "team.created",
        "team.permission_granted",
        "team.permission_granted",
        "team.permission_revoked",
    ]
    assert [
        e.details["permission"]
        for e in AuditEvent.objects.filter(verb="team.permission_granted", object_id=str(ops.pk)).order_by("id")
    ] == [
        "environments.view_environment",
        "environments.approve_environment",
    ]


# --- targets ---------------------------------------------------------------------------------------------


def test_target_lifecycle_is_audited(env, paula):
    with acting(channel=Channel.UI, user=paula, ip="10.0.0.1"):
        target = target_create(
            actor=paula, environment=env, name="web-1", address="10.0.0.5", attributes={"port": 8080}, slot="blue"
        )
        target_update(actor=paula, target=target, address="10.0.0.6", attributes={"port": 8081})
        target_update(actor=paula, target=target, address="10.0.0.6")
        target_id = target.pk
        target_delete(actor=paula, target=target)
    assert verbs(object_type="environments.target") == ["target.created", "target.updated", "target.deleted"]
    updated = AuditEvent.objects.get(verb="target.updated")
    assert updated.details == {
        "environment": "payments-dev",
        "changes": {"address": ["10.0.0.5", "10.0.0.6"], "attributes": [{"port": 8080}, {"port": 8081}]},
    }
    history = Target.history.filter(id=target_id).order_by("history_id")
    assert [(h.history_type, h.history_channel) for h in history] == [("+", "ui"), ("~", "ui"), ("-", "ui")]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "has space"}, "name"),
        ({"name": ""}, "name"),
        ({"address": ""}, "address"),
        ({"slot": "red"}, "slot"),
        ({"health_check_url": "nope"}, "health_check_url"),
        ({"attributes": {"1bad": "x"}}, "attributes"),
        ({"attributes": {"nested": {"a": 1}}}, "attributes"),
        ({"attributes": {"nan": float("nan")}}, "attributes"),
        ({"labels": "x"}, "labels"),
    ],
)
def test_target_validation(env, fields, field):
    with pytest.raises(ValidationFailed) as error:
        target_create(actor=None, environment=env, **{"name": "web-1", "address": "10.0.0.1", **fields})
    assert field in error.value.fields
    assert not Target.objects.exists()


def test_target_names_are_unique_per_environment(env, payments):
    make_target(env, "web-1")
    with pytest.raises(Conflict):
        target_create(actor=None, environment=env, name="web-1", address="x")
    other = make_environment(payments[0], "other")
    make_target(other, "web-1")  # fine elsewhere
    web2 = make_target(env, "web-2")
    with pytest.raises(Conflict):
        target_update(actor=None, target=web2, name="web-1")
    assert sorted(env.targets.values_list("name", flat=True)) == ["web-1", "web-2"]


def test_deleting_a_target_deletes_its_overrides_and_says_so(env, paula):
    target = make_target(env, "web-1")
    make_variable(env, "LOG_LEVEL", "info")
    make_variable(env, "LOG_LEVEL", "debug", target=target)
    target_delete(actor=paula, target=target)
    assert list(Variable.objects.values_list("name", "target")) == [("LOG_LEVEL", None)]
    assert AuditEvent.objects.get(verb="target.deleted").details["overrides_deleted"] == ["LOG_LEVEL"]


# --- variables -----------------------------------------------------------------------------------------


def test_plain_variable_lifecycle(env, paula):
    variable = variable_create(actor=paula, environment=env, name="LOG_LEVEL", value="info")
    variable_update(actor=paula, variable=variable, value="debug")
    variable_update(actor=paula, variable=variable, value="debug")  # no change, no event
    variable_delete(actor=paula, variable=variable)
    assert verbs(object_type="environments.variable") == ["variable.created", "variable.updated", "variable.deleted"]
    updated = AuditEvent.objects.get(verb="variable.updated")
    assert updated.details == {
        "environment": "payments-dev",
        "name": "LOG_LEVEL",
        "secret": False,
        "value": "debug",
        "changes": {"value": ["info", "debug"]},
    }


def test_secret_is_encrypted_before_it_reaches_the_database(env, paula):
    variable = variable_create(actor=paula, environment=env, name="DB_PASSWORD", value="s3cr3t!", secret=True)
    stored = Variable.objects.values_list("value", flat=True).get()
    assert stored != "s3cr3t!"
    assert crypto.decrypt(stored) == "s3cr3t!"
    assert crypto.decrypt(variable.history.get().value) == "s3cr3t!"
    assert variable.display_value == MASK
    event = AuditEvent.objects.get(verb="variable.created")
    assert event.details == {"environment": "payments-dev", "name": "DB_PASSWORD", "secret": True}

    variable_update(actor=paula, variable=variable, value="n3w")
    variable.refresh_from_db()
    assert crypto.decrypt(variable.value) == "n3w"
    assert AuditEvent.objects.get(verb="variable.updated").details["changes"] == {"value": ["(hidden)", "(hidden)"]}


def test_secret_update_with_the_same_value_is_still_recorded_without_revealing_it(env, paula):
    """Comparing would need decryption: a new value for a secret always counts as a change."""
    variable = make_variable(env, "TOKEN", "same", secret=True)
    variable_update(actor=paula, variable=variable, value="same")
    assert verbs(verb="variable.updated") == ["variable.updated"]


def test_making_a_plain_variable_secret_encrypts_it(env, paula):
    variable = make_variable(env, "API_KEY", "abc")
    variable_update(actor=paula, variable=variable, secret=True)
    variable.refresh_from_db()
    assert variable.secret
    assert crypto.decrypt(variable.value) == "abc"
    assert AuditEvent.objects.get(verb="variable.updated").details == {
        "environment": "payments-dev",
        "name": "API_KEY",
        "secret": True,
        "changes": {"secret": [False, True]},
    }


def test_a_secret_becomes_plain_only_with_a_new_value(env, paula):
    variable = make_variable(env, "API_KEY", "abc", secret=True)
    with pytest.raises(ValidationFailed):
        variable_update(actor=paula, variable=variable, secret=False)
    variable.refresh_from_db()
    assert variable.secret
    assert crypto.decrypt(variable.value) == "abc"
    variable_update(actor=paula, variable=variable, secret=False, value="public")
    variable.refresh_from_db()
    assert (variable.secret, variable.value) == (False, "public")
    changes = AuditEvent.objects.get(verb="variable.updated").details["changes"]
    assert changes == {"secret": [True, False], "value": ["(hidden)", "(hidden)"]}


def test_variable_overrides_per_target(env, payments):
    web1, other_env = make_target(env, "web-1"), make_environment(payments[0], "other")
    make_variable(env, "LOG_LEVEL", "info")
    override = make_variable(env, "LOG_LEVEL", "debug", target=web1)
    assert str(override) == "LOG_LEVEL@web-1"
    with pytest.raises(Conflict):
        make_variable(env, "LOG_LEVEL", "again")
    with pytest.raises(Conflict):
        make_variable(env, "LOG_LEVEL", "again", target=web1)
    with pytest.raises(ValidationFailed) as error:
        make_variable(other_env, "LOG_LEVEL", "x", target=web1)
    assert "target" in error.value.fields
    assert AuditEvent.objects.filter(verb="variable.created").latest("id").details["target"] == "web-1"


@pytest.mark.parametrize("name", ["1ABC", "has-dash", "", "a b", "x" * 101])
def test_variable_names_are_identifiers(env, name):
    with pytest.raises(ValidationFailed):
        variable_create(actor=None, environment=env, name=name, value="v")
    assert not Variable.objects.exists()


# --- lifecycles -----------------------------------------------------------------------------------------


def test_lifecycle_create_update_delete(env, payments):
    staging = make_environment(payments[0], "staging", tier="staging")
    lifecycle = lifecycle_create(
        actor=None,
        slug="main",
        name="Main",
        stages=[
            {"name": "dev", "automatic": True, "environments": [env]},
            {"name": "staging", "environments": [staging]},
        ],
    )
    assert [(s.position, s.name, s.automatic) for s in lifecycle.stages.all()] == [
        (1, "dev", True),
        (2, "staging", False),
    ]
    lifecycle_update(
        actor=None,
        lifecycle=lifecycle,
        description="The path",
        stages=[{"name": "all", "environments": [env, staging]}],
    )
    assert [(s.position, s.name) for s in lifecycle.stages.all()] == [(1, "all")]
    assert set(lifecycle.stages.get().environments.values_list("slug", flat=True)) == {"payments-dev", "staging"}
    lifecycle_id = lifecycle.pk
    lifecycle_delete(actor=None, lifecycle=lifecycle)
    assert not LifecycleStage.objects.exists()
    assert verbs(object_type="environments.lifecycle") == [
        "lifecycle.created",
        "lifecycle.updated",
        "lifecycle.deleted",
    ]
    assert AuditEvent.objects.get(verb="lifecycle.updated").details == {
        "changes": {
            "description": ["", "The path"],
            "stages": [{"name": "all", "automatic": False, "environments": ["payments-dev", "staging"]}],
        }
    }
    # every stage ever written left history, and the stages' environments too (m2m history)
    stage_history = LifecycleStage.history.filter(lifecycle_id=lifecycle_id).order_by("history_id")
    assert [(h.name, h.history_type) for h in stage_history] == [
        ("dev", "+"),
        ("dev", "~"),  # its environments set (m2m history)
        ("staging", "+"),
        ("staging", "~"),
        ("dev", "-"),  # the update replaces the stages
        ("staging", "-"),
        ("all", "+"),
        ("all", "~"),
        ("all", "-"),
    ]
    assert Lifecycle.history.filter(id=lifecycle_id).count() == 3


STAGE_RULES = {
    "no stages": lambda env: [],
    "a stage without environments": lambda env: [{"name": "dev", "environments": []}],
    "an environment in two stages": lambda env: [
        {"name": "a", "environments": [env]},
        {"name": "b", "environments": [env]},
    ],
    "a stage without a name": lambda env: [{"name": "", "environments": [env]}],
}


@pytest.mark.parametrize("rule", STAGE_RULES)
def test_lifecycle_stage_rules(env, rule):
    stages = STAGE_RULES[rule](env)
    with pytest.raises(ValidationFailed):
        lifecycle_create(actor=None, slug="main", name="Main", stages=stages)
    assert not Lifecycle.objects.exists()
    assert not LifecycleStage.objects.exists()


def test_lifecycles_need_global_permissions(env, paula):
    with pytest.raises(PermissionDenied):
        lifecycle_create(actor=paula, slug="mine", name="Mine", stages=[{"name": "a", "environments": [env]}])
    lifecycle = make_lifecycle([[env]], slug="main")
    with pytest.raises(PermissionDenied):
        lifecycle_update(actor=paula, lifecycle=lifecycle, name="Mine")
    with pytest.raises(PermissionDenied):
        lifecycle_delete(actor=paula, lifecycle=lifecycle)
    paula.user_permissions.add(*Permission.objects.filter(codename__in=["change_lifecycle", "delete_lifecycle"]))
    lifecycle_update(actor=fresh(paula), lifecycle=lifecycle, name="Mine")
    lifecycle_delete(actor=fresh(paula), lifecycle=lifecycle)
    assert not Lifecycle.objects.exists()
    make_lifecycle([[env]], slug="dup")
    with pytest.raises(Conflict):
        make_lifecycle([[env]], slug="dup")
