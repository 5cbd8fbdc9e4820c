"""Inventory of a blue/green environment: both slots keep what they run, the dashboard cell shows the newest version
and counts the other, each target's reading confirms its own slot, and a switch back moves traffic, not builds."""

from __future__ import annotations

from django.test import Client

from apps.deployments.services import deployment_rollback
from apps.inventory.selectors import dashboard_matrix
from apps.inventory.services import drift_check
from tests.deployments.conftest import wait_for
from tests.deployments.test_rollouts import deploy
from tests.factories import bearer_client


def test_both_slots_are_in_the_inventory_and_a_switch_back_changes_no_record(slots, celery_worker):
    s = slots()
    assert wait_for(deploy(s, "1.0.0", "blue_green")).status == "succeeded"
    second = wait_for(deploy(s, "2.0.0", "blue_green"))
    assert second.status == "succeeded", second.status_reason
    api = bearer_client(s.deployer)

    def inventory():
        rows = api.get(f"/api/v1/environments/{s.environment.slug}/inventory/").json()
        return {r["target"]: r["version"] for r in rows}

    assert inventory() == {"blue-1": "2.0.0", "blue-2": "2.0.0", "green-1": "1.0.0", "green-2": "1.0.0"}
    cell = dashboard_matrix([s.application], [s.environment])[s.application.pk, s.environment.pk]
    assert (cell.version, cell.other_versions, cell.targets, cell.state) == ("2.0.0", 1, 4, "succeeded")

    readings = drift_check(actor=s.deployer, environment=s.environment)  # each slot serves its own version
    assert {r.target.name: (r.observation.version, r.observation.drifted) for r in readings} == {
        "blue-1": ("2.0.0", False),
        "blue-2": ("2.0.0", False),
        "green-1": ("1.0.0", False),
        "green-2": ("1.0.0", False),
    }

    back = wait_for(deployment_rollback(actor=s.deployer, deployment=second))
    assert back.status == "succeeded", back.status_reason
    assert inventory() == {"blue-1": "2.0.0", "blue-2": "2.0.0", "green-1": "1.0.0", "green-2": "1.0.0"}
    client = Client()
    client.force_login(s.deployer)
    page = client.get(f"/environments/{s.environment.slug}/inventory/").content.decode()
    assert page.count('data-testid="live-slot"') == 2  # green serves the traffic again
    assert "green-1</a> <span" in page
