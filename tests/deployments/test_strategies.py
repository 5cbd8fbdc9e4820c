"""Strategy options (JSON Schema per strategy), the plans each strategy makes, per-environment defaults, and the
API around them. No worker: tests/deployments/test_rollouts.py runs the rollouts."""

from __future__ import annotations

import jsonschema
import pytest

from apps.core.errors import ValidationFailed
from apps.deployments.engine import strategies
from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create, deployment_preview, template_create
from apps.environments.services import environment_update, target_update
from tests.factories import make_target

from .test_api import setup  # noqa: F401  (the fixture)


def test_options_get_their_defaults_and_durations_in_seconds():
    options = strategies.normalize_options("canary", {"stages": [{"weight": 20, "pause": "1h30m"}, {"weight": 100}]})
    assert options == {
        "stages": [{"weight": 20, "pause": 5400, "judgment": False}, {"weight": 100, "pause": 0, "judgment": False}],
        "analysis": {"interval": 10, "max_failure_ratio": 0.1, "min_probes": 1},
        "health_gate": True,
        "health_timeout": 60,
        "rollback_on_failure": True,
    }
    assert strategies.normalize_options("blue_green", {"keep_old_slot_for": "90s"})["keep_old_slot_for"] == 90
    assert strategies.normalize_options("rolling", {})["batch_size"] == 1


@pytest.mark.parametrize(
    ("strategy", "options", "field", "message"),
    [
        ("canary", {"stages": [{"weight": 50}, {"weight": 10}, {"weight": 100}]}, "stages", "growing weights"),
        ("canary", {"stages": [{"weight": 10}, {"weight": 50}]}, "stages", "the last one 100"),
        ("canary", {"stages": [{"weight": 10, "pause": "5 minutes"}, {"weight": 100}]}, "stages.0.pause", '"5m"'),
        ("canary", {"stages": [{"weight": 0}, {"weight": 100}]}, "stages.0.weight", "minimum of 1"),
        ("canary", {"stages": [{"weight": 100, "wait": 1}]}, "stages.0", "'wait' was unexpected"),
        ("canary", {"analysis": {"metrics_url": "http://m.example/x"}}, "analysis", "metrics_condition"),
        (
            "canary",
            {"analysis": {"metrics_url": "http://m.example/x", "metrics_condition": "error_rate <"}},
            "analysis.metrics_condition",
            "Not a valid expression",
        ),
        ("canary", {"analysis": {"max_failure_ratio": 2}}, "analysis.max_failure_ratio", "maximum of 1"),
        ("rolling", {"batch_size": "150%"}, "batch_size", "percentage"),
        ("rolling_blue_green", {"batch_size": 0}, "batch_size", "percentage"),
        ("blue_green", {"batch_size": 1}, "batch_size", "Not an option of the blue_green strategy"),
        ("all_at_once", {"health_timeout": -1}, "health_timeout", "from 0 to 3600"),
    ],
)
def test_invalid_options_name_the_field(strategy, options, field, message):
    with pytest.raises(ValidationFailed) as caught:
        strategies.normalize_options(strategy, options)
    errors = caught.value.fields
    assert f"strategy_options.{field}" in errors, errors
    assert message in " ".join(errors[f"strategy_options.{field}"])


def test_every_strategy_schema_is_valid_and_its_defaults_pass_it():
    for name, schema in strategies.SCHEMAS.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        strategies.normalize_options(name, {})


def test_strategies_api_lists_each_strategy_with_its_schema(setup):  # noqa: F811
    response = setup["client"].get("/api/v1/deployment-strategies/")
    assert response.status_code == 200
    body = {item["name"]: item for item in response.json()}
    assert set(body) == {"all_at_once", "rolling", "blue_green", "rolling_blue_green", "canary"}
    assert body["canary"]["title"] == "Canary"
    assert body["canary"]["options"]["properties"]["stages"]["default"][0] == {"weight": 10, "pause": "5m"}


def test_options_are_in_the_plan_and_its_digest(setup):  # noqa: F811
    for target in setup["env"].targets.all():
        target_update(actor=None, target=target, health_check_url=f"http://{target.name}.example/health")

    def digest(**options):
        plan, value = deployment_preview(
            actor=None,
            release=setup["release"],
            environment=setup["env"],
            template=setup["template"],
            strategy="canary",
            strategy_options=options,
        )
        return plan, value

    plan, first = digest(stages=[{"weight": 50, "pause": 60}, {"weight": 100}])
    assert plan["strategy"]["stages"][0] == {"weight": 50, "pause": 60, "judgment": False}
    assert [p["name"] for p in plan["phases"]] == ["Canary 50%", "Canary 100%"]
    assert [plan["steps"][i]["kind"] for i in plan["phases"][0]["steps"]] == ["shell", "health_check", "analysis"]
    _, second = digest(stages=[{"weight": 50, "pause": 61}, {"weight": 100}])
    assert first != second


def test_a_canary_analysis_needs_something_to_probe(setup):  # noqa: F811
    with pytest.raises(ValidationFailed, match="nothing to probe"):
        deployment_preview(
            actor=None,
            release=setup["release"],
            environment=setup["env"],
            template=setup["template"],
            strategy="canary",
            strategy_options={"stages": [{"weight": 50, "pause": 60}, {"weight": 100}], "health_gate": False},
        )


def test_the_environment_default_strategy_applies_when_the_request_names_none(setup):  # noqa: F811
    response = setup["client"].patch(
        "/api/v1/environments/qa/",
        {"default_strategy": "rolling", "default_strategy_options": {"batch_size": "50%", "pause_seconds": "soon"}},
        format="json",
    )
    assert response.status_code == 403  # dora may deploy, not manage
    environment_update(
        actor=None, environment=setup["env"], default_strategy="rolling", default_strategy_options={"batch_size": "50%"}
    )
    deployment = deployment_create(
        actor=setup["dora"], release=setup["release"], environment=setup["env"], template=setup["template"]
    )
    assert deployment.strategy == "rolling"
    assert deployment.strategy_options["batch_size"] == "50%"
    assert [p["targets"] for p in deployment.plan["phases"]] == [["web-1"], ["web-2"]]
    Deployment.objects.all().delete()
    explicit = deployment_create(
        actor=setup["dora"],
        release=setup["release"],
        environment=setup["env"],
        template=setup["template"],
        strategy="all_at_once",
    )
    assert explicit.strategy_options["rollback_on_failure"] is False  # not the default's options


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"default_strategy": "canary", "default_strategy_options": {"stages": []}}, "default_strategy_options.stages"),
        ({"default_strategy_options": {"batch_size": 2}}, "default_strategy_options.batch_size"),
        ({"traffic_hook": {"kind": "ftp", "params": {}}}, "traffic_hook"),
        ({"traffic_hook": {"kind": "http", "params": {"method": "POST"}}}, "traffic_hook"),
        ({"traffic_hook": {"kind": "shell", "params": {"command": "{{ broken"}}}, "traffic_hook"),
    ],
)
def test_environment_strategy_and_traffic_settings_are_validated(changes, field, db):
    from tests.factories import make_environment, make_team

    environment = make_environment(make_team())
    with pytest.raises(ValidationFailed) as caught:
        environment_update(actor=None, environment=environment, **changes)
    assert field in caught.value.fields, caught.value.fields


def test_blue_green_plans_install_on_the_idle_slot_and_render_the_hook_both_ways(setup):  # noqa: F811
    env = setup["env"]
    for target in env.targets.all():
        target_update(actor=None, target=target, slot="blue")
    make_target(env, "green-1", slot="green")
    hook = {"kind": "http", "params": {"url": "http://lb.example/{{ traffic.slot }}?w={{ traffic.weight }}"}}
    environment_update(actor=None, environment=env, traffic_hook=hook)
    env.refresh_from_db()
    plan, _ = deployment_preview(
        actor=None, release=setup["release"], environment=env, template=setup["template"], strategy="blue_green"
    )
    assert [p["name"] for p in plan["phases"]] == ["Install on green (idle slot)", "Switch traffic to green"]
    assert list(plan["targets"]) == ["green-1"]
    switch = plan["steps"][plan["phases"][1]["steps"][0]]
    assert switch["kind"] == "switch_traffic"
    assert switch["undo"] is True
    assert switch["params"]["hook"]["params"]["url"] == "http://lb.example/green?w=100"
    assert switch["params"]["undo_hook"]["params"]["url"] == "http://lb.example/green?w=0"
    assert plan["phases"][0]["expects"] == {"live_slot": "", "idle_weight": 0}
    assert not any(step["undo"] for step in plan["steps"] if step["kind"] != "switch_traffic")


def test_templates_cannot_use_the_strategies_own_step_kinds(db):
    with pytest.raises(ValidationFailed) as caught:
        template_create(
            actor=None, slug="sneaky", name="Sneaky", steps=[{"name": "Flip", "kind": "switch_traffic", "params": {}}]
        )
    assert "Unknown step kind 'switch_traffic'" in caught.value.fields["steps[1].kind"][0]


def test_promote_and_rollback_answer_409_when_they_do_not_apply(setup):  # noqa: F811
    deployment = deployment_create(
        actor=setup["dora"], release=setup["release"], environment=setup["env"], template=setup["template"]
    )
    client = setup["client"]
    response = client.post(f"/api/v1/deployments/{deployment.pk}/promote/", {}, format="json")
    assert response.status_code == 409
    assert "not at an analysis gate" in response.json()["detail"]
    response = client.post(f"/api/v1/deployments/{deployment.pk}/rollback/", {}, format="json")
    assert response.status_code == 409
    assert "nothing it can undo" in response.json()["detail"]
