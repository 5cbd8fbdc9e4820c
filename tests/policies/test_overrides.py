"""Overrides of failed policy rules: `manage` and a justification, never a non-overridable rule, a second person
for two-person rules; shown on the deployment, audited, the owners told. And a deployment that a policy refuses
when it would start fails, without blocking its release."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.test import Client

from apps.accounts.services import team_add_member
from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create, start_next_queued
from apps.environments.services import environment_grant
from apps.notifications.models import Delivery
from apps.policies.rules import WEEKDAYS
from apps.policies.services import policy_set_create
from apps.releases.models import ReleaseBlock
from tests.deployments.conftest import wait_for
from tests.factories import bearer_client, make_team, make_user

CANARY_ONLY = {"kind": "allowed_strategies", "params": {"strategies": ["canary"]}}
TICKET = {"kind": "change_ticket", "params": {"pattern": r"^CHG-\d+$"}}


@pytest.fixture
def world(stage):
    """An environment that two managers (of its owning team) manage, and a developer of another team who may
    deploy to it but not manage it."""

    def build(*rules):
        s = stage(targets=1)
        s.managers = [make_user("manager-a"), make_user("manager-b")]
        for manager in s.managers:
            team_add_member(actor=None, team=s.environment.owner_team, user=manager)
        s.developer = make_user("developer")
        developers = make_team(members=(s.developer,))
        environment_grant(actor=None, environment=s.environment, team=developers, action="deploy")
        application_grant(actor=None, application=s.application, team=developers, action="view")
        policy_set_create(
            actor=make_user("root", is_superuser=True),
            slug="guard",
            name="Guard",
            environments=[s.environment],
            rules=list(rules),
        )
        s.url = f"/api/v1/releases/{s.releases['1.0.0'].pk}/deploy/"
        s.body = {"environment": s.environment.slug, "template": s.template.slug, "strategy": "all_at_once"}
        return s

    return build


def _api(user):
    return bearer_client(user, scopes=("read", "deployments:write"))


def test_a_manager_overrides_a_failed_rule_with_a_justification_and_the_deployment_runs(world, celery_worker):
    s = world(CANARY_ONLY)
    refused = _api(s.managers[0]).post(s.url, s.body, format="json")
    assert refused.status_code == 422
    assert refused.json()["rules"] == ["guard/allowed_strategies"]

    override = {"override_rules": ["guard/allowed_strategies"], "override_reason": "Hotfix for INC-42; canary is down."}
    by_developer = _api(s.developer).post(s.url, {**s.body, **override}, format="json")
    assert by_developer.status_code == 403, by_developer.json()
    unjustified = _api(s.managers[0]).post(s.url, {**s.body, **override, "override_reason": " "}, format="json")
    assert unjustified.status_code == 400
    assert "override_reason" in unjustified.json()["fields"]
    assert not Deployment.objects.exists()

    created = _api(s.managers[0]).post(s.url, {**s.body, **override}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert [(r["kind"], r["passed"], r["overridden"]) for r in body["policy_results"]] == [
        ("allowed_strategies", False, True)
    ]
    [shown] = body["policy_overrides"]
    assert shown["rules"] == ["guard/allowed_strategies"]
    assert shown["justification"] == "Hotfix for INC-42; canary is down."
    assert (shown["requested_by"], shown["effective"]) == ("manager-a", True)
    deployment = Deployment.objects.get()
    assert wait_for(deployment).status == "succeeded"

    event = AuditEvent.objects.get(verb="policy.overridden")
    assert event.actor.username == "manager-a"
    assert event.details["rules"] == ["guard/allowed_strategies"]
    assert event.details["justification"] == "Hotfix for INC-42; canary is down."
    told = Delivery.objects.filter(event="policy.overridden").values_list("recipient", flat=True)
    assert f"{s.deployer.username}@example.com" in told  # the deployer is in the owning team

    page = Client()
    page.force_login(s.deployer)
    html = page.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'data-overridden="true"' in html
    assert "Hotfix for INC-42; canary is down." in html
    assert 'data-testid="override-policies-form"' not in html  # started: nothing left to override


def test_rules_that_are_not_overridable_or_do_not_apply_are_refused(world, celery_worker):
    s = world({**CANARY_ONLY, "overridable": False})
    client = _api(s.managers[0])
    fixed = client.post(
        s.url, {**s.body, "override_rules": ["guard/allowed_strategies"], "override_reason": "Please."}, format="json"
    )
    assert fixed.status_code == 400
    assert fixed.json()["fields"]["override_rules"] == ["guard/allowed_strategies cannot be overridden."]
    unknown = client.post(
        s.url,
        {**s.body, "strategy": "canary", "override_rules": ["guard/no_freeze"], "override_reason": "Please."},
        format="json",
    )
    assert unknown.status_code == 400
    assert "No rule guard/no_freeze applies" in unknown.json()["detail"]
    assert not Deployment.objects.exists()
    assert not AuditEvent.objects.filter(verb__startswith="policy.overrid").exists()


def test_a_two_person_override_waits_for_a_second_manager(world, celery_worker):
    s = world({**TICKET, "two_person": True})
    first, second = s.managers
    created = _api(first).post(
        s.url, {**s.body, "override_rules": ["guard/change_ticket"], "override_reason": "Ticket system down."}
    )
    assert created.status_code == 201, created.json()
    deployment = Deployment.objects.get()
    assert deployment.status == "queued"
    assert "waits for a second person who manages" in deployment.status_reason
    [override] = created.json()["policy_overrides"]
    assert (override["needs_confirmation"], override["effective"]) == (True, False)
    assert AuditEvent.objects.filter(verb="policy.override_requested").exists()

    behind = _api(second).post(s.url, {**s.body, "change_ticket": "CHG-1"}, format="json")
    assert behind.status_code == 201, behind.json()
    assert (behind.json()["status"], behind.json()["status_reason"]) == ("queued", "")  # the queue keeps its order
    page = Client()
    page.force_login(second)
    waiting = page.get(f"/deployments/{behind.json()['id']}/").content.decode()
    assert f'Queued behind <a class="alert-link" href="/deployments/{deployment.pk}/">#{deployment.pk}</a>' in waiting

    confirm = f"/api/v1/deployments/{deployment.pk}/confirm-override/"
    assert _api(first).post(confirm, {"override": override["id"]}).status_code == 403  # not by the same person
    assert _api(s.developer).post(confirm, {"override": override["id"]}).status_code == 403  # nor without manage
    assert Deployment.objects.get(pk=deployment.pk).status == "queued"

    html = page.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'data-testid="confirm-override"' in html
    page.post(f"/deployments/{deployment.pk}/overrides/{override['id']}/confirm/")
    assert wait_for(deployment).status == "succeeded"
    assert wait_for(Deployment.objects.get(pk=behind.json()["id"])).status == "succeeded"
    confirmed = AuditEvent.objects.get(verb="policy.override_confirmed")
    assert (confirmed.actor, confirmed.details["confirmed_by"]) == (second, "manager-b")
    again = _api(second).post(confirm, {"override": override["id"]})
    assert again.status_code == 409


def test_a_deployment_held_by_a_rule_starts_once_a_manager_overrides_it_on_its_page(world, celery_worker):
    today = WEEKDAYS[datetime.now(UTC).weekday()]
    closed = [day for day in WEEKDAYS if day != today]
    s = world({"kind": "deployment_window", "params": {"weekdays": closed, "start": "00:00", "end": "24:00"}})
    deployment = deployment_create(
        actor=s.deployer, release=s.releases["1.0.0"], environment=s.environment, template=s.template
    )
    deployment.refresh_from_db()
    assert deployment.status == "queued"

    page = Client()
    page.force_login(s.developer)
    assert 'data-testid="override-policies-form"' not in page.get(f"/deployments/{deployment.pk}/").content.decode()
    page.force_login(s.managers[0])
    html = page.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'data-testid="override-policies-form"' in html
    url = f"/deployments/{deployment.pk}/override-policies/"
    refused = page.post(url, {"rules": ["guard/deployment_window"], "justification": ""}, follow=True)
    assert "Say why these rules may be set aside" in refused.content.decode()
    page.post(url, {"rules": ["guard/deployment_window"], "justification": "Customer outage, approved by the CTO."})
    assert wait_for(deployment).status == "succeeded"
    deployment.refresh_from_db()
    assert [(r["kind"], r["overridden"]) for r in deployment.policy_results] == [("deployment_window", True)]


def test_a_deployment_refused_when_it_would_start_fails_and_does_not_block_its_release(world, celery_worker):
    today = WEEKDAYS[datetime.now(UTC).weekday()]
    s = world(
        {
            "kind": "deployment_window",
            "params": {"weekdays": [d for d in WEEKDAYS if d != today], "start": "00:00", "end": "24:00"},
        }
    )
    deployment = deployment_create(
        actor=s.deployer, release=s.releases["1.0.0"], environment=s.environment, template=s.template
    )
    policy_set_create(
        actor=make_user("root2", is_superuser=True),
        slug="later",
        name="Later",
        environments=[s.environment],
        rules=[CANARY_ONLY],
    )
    with transaction.atomic():  # what the dispatcher does at its next look
        start_next_queued(s.environment.pk)
    deployment.refresh_from_db()
    assert deployment.status == "failed"
    assert deployment.status_reason.startswith("Refused by policy:")
    assert "allows only canary" in deployment.status_reason
    assert not ReleaseBlock.objects.exists()
    retry = _api(s.deployer).post(f"/api/v1/deployments/{deployment.pk}/retry/")
    assert retry.status_code == 409
    assert "never started" in retry.json()["detail"]


def test_the_deploy_form_names_the_refused_rules_and_takes_an_override(world, celery_worker):
    s = world(CANARY_ONLY)
    page = Client()
    page.force_login(s.managers[0])
    url = f"/releases/{s.releases['1.0.0'].pk}/deploy/"
    form = {
        "environment": s.environment.slug,
        "template": s.template.slug,
        "strategy": "all_at_once",
        "health_gate": "on",
        "options": "{}",
    }
    refused = page.post(url, form, follow=True).content.decode()
    assert "Refused by policy (guard/allowed_strategies)" in refused
    assert not Deployment.objects.exists()
    page.post(url, {**form, "override_rules": " guard/allowed_strategies ", "override_reason": "Canary tooling down."})
    deployment = Deployment.objects.get()
    assert deployment.policy_overrides.get().justification == "Canary tooling down."
    assert wait_for(deployment).status == "succeeded"
