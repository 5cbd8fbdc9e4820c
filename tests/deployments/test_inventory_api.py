"""What runs where, through the API, after real deployments and a rollback."""

from __future__ import annotations

from apps.deployments.services import deployment_create, deployment_rollback
from tests.factories import bearer_client, make_user

from .conftest import wait_for


def test_locations_and_inventory_follow_deployments_and_rollbacks(stage, celery_worker, django_assert_max_num_queries):
    s = stage()
    client = bearer_client(s.deployer, scopes=("read",))
    first = wait_for(
        deployment_create(actor=s.deployer, release=s.releases["1.0.0"], environment=s.environment, template=s.template)
    )
    assert first.status == "succeeded"
    second = deployment_create(
        actor=s.deployer,
        release=s.releases["2.0.0"],
        environment=s.environment,
        template=s.template,
        strategy="rolling",
        strategy_options={"batch_size": 2},
    )
    assert wait_for(second).status == "succeeded"
    old, new = (s.releases[v].release_artifacts.get().artifact for v in ("1.0.0", "2.0.0"))

    client.get(f"/api/v1/artifacts/{old.pk}/locations/")  # the token's first use records itself once
    with django_assert_max_num_queries(6):  # auth, the artifact's visibility, the rows with everything shown
        rows = client.get(f"/api/v1/artifacts/{new.pk}/locations/").json()
    assert [(r["environment"], r["target"], r["version"], r["deployment"]) for r in rows] == [
        (s.environment.slug, f"web-{i}", "2.0.0", second.pk) for i in range(1, 5)
    ]
    assert client.get(f"/api/v1/artifacts/{old.pk}/locations/").json() == []
    inventory = client.get(f"/api/v1/environments/{s.environment.slug}/inventory/").json()
    assert {(r["application"], r["target"], r["version"], r["deployed_by"]) for r in inventory} == {
        (s.application.slug, f"web-{i}", "2.0.0", s.deployer.username) for i in range(1, 5)
    }

    back = wait_for(deployment_rollback(actor=s.deployer, deployment=second))
    assert back.status == "succeeded"
    rows = client.get(f"/api/v1/artifacts/{old.pk}/locations/").json()
    assert {(r["target"], r["deployment"]) for r in rows} == {(f"web-{i}", back.pk) for i in range(1, 5)}
    assert client.get(f"/api/v1/artifacts/{new.pk}/locations/").json() == []

    stranger = bearer_client(make_user("stranger"), scopes=("read",))
    assert stranger.get(f"/api/v1/artifacts/{old.pk}/locations/").status_code == 404
    assert stranger.get(f"/api/v1/environments/{s.environment.slug}/inventory/").status_code == 404


def test_the_promotion_preview_matches_the_plan_the_deployment_then_runs(stage, celery_worker):
    from apps.environments.services import variable_create

    s = stage(targets=2)
    variable_create(actor=None, environment=s.environment, name="TOKEN", value="s3cr3t-value", secret=True)
    first = deployment_create(
        actor=s.deployer, release=s.releases["1.0.0"], environment=s.environment, template=s.template
    )
    assert wait_for(first).status == "succeeded"
    client = bearer_client(s.deployer, scopes=("read",))
    url = f"/api/v1/releases/{s.releases['2.0.0'].pk}/preview/"
    assert client.get(url).status_code == 400
    response = client.get(url, {"environment": s.environment.slug, "template": s.template.slug, "strategy": "rolling"})
    assert response.status_code == 200, response.json()
    preview = response.json()
    assert [(t["target"], t["current"], t["new"], t["changed"]) for t in preview["targets"]] == [
        ("web-1", "1.0.0", "2.0.0", True),
        ("web-2", "1.0.0", "2.0.0", True),
    ]
    assert preview["targets"][0]["variables"]["TOKEN"] == "••••••••"
    assert "s3cr3t" not in response.content.decode()
    assert (preview["strategy"]["name"], preview["template"]["slug"]) == ("rolling", s.template.slug)
    assert (preview["approvals"], preview["obstacles"], preview["freeze"]) == (None, [], None)
    deployment = deployment_create(
        actor=s.deployer,
        release=s.releases["2.0.0"],
        environment=s.environment,
        template=s.template,
        strategy="rolling",
    )
    assert deployment.plan_digest == preview["plan_digest"]  # what was previewed is what runs
    assert wait_for(deployment).status == "succeeded"
