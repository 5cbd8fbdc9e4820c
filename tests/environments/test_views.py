"""Environment pages: list by tier, detail, history, access and the forms, for managers, viewers and strangers.

Every write goes through a service, so each accepted form leaves an audit event, and every
refused one leaves nothing. Secret values never reach a page.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import team_add_member, team_create
from apps.audit.models import AuditEvent
from apps.environments.models import MASK, Environment, EnvironmentGroupObjectPermission, Target, Variable
from apps.environments.services import (
    environment_create,
    environment_grant,
    lifecycle_create,
    target_create,
    variable_create,
    variable_update,
)

SECRET = "hunter2-ZX81-do-not-show"


@pytest.fixture
def owners(user):
    """Platform, whose member ursula (`user`) manages every environment it owns."""
    team = team_create(actor=None, name="Platform", slug="platform")
    team_add_member(actor=None, team=team, user=user)
    return team


@pytest.fixture
def viewers(other_user):
    """Payments, whose member oscar (`other_user`) is granted only `view` on prod."""
    team = team_create(actor=None, name="Payments", slug="payments")
    team_add_member(actor=None, team=team, user=other_user)
    return team


@pytest.fixture
def prod(owners, viewers):
    environment = environment_create(
        actor=None,
        slug="prod",
        name="Production",
        owner_team=owners,
        tier="production",
        labels={"region": "eu"},
        protected=True,
    )
    environment_grant(actor=None, environment=environment, team=viewers, action="view")
    target = target_create(actor=None, environment=environment, name="web-1", address="10.0.0.1", slot="blue")
    variable_create(actor=None, environment=environment, name="LOG_LEVEL", value="info")
    variable_create(actor=None, environment=environment, name="DB_PASSWORD", value=SECRET, secret=True)
    variable_create(actor=None, environment=environment, name="LOG_LEVEL", value="debug", target=target)
    lifecycle_create(
        actor=None, slug="standard", name="Standard", stages=[{"name": "Prod", "environments": [environment]}]
    )
    return environment


@pytest.fixture
def staff(make_user):
    return make_user("stan", is_staff=True, is_superuser=True)


@pytest.fixture
def stranger(make_user):
    return make_user("sid")


def login(client, who):
    client.force_login(who)
    return client


def html(response) -> str:
    return response.content.decode()


def audit_verbs() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("verb", flat=True))


# --- Reading ---------------------------------------------------------------------------------------


def test_every_page_renders_for_a_manager(client, user, prod):
    login(client, user)
    target = prod.targets.get()
    variable = prod.variables.get(name="DB_PASSWORD")
    pages = {
        "/environments/": "Production",
        "/environments/prod/": "web-1",
        "/environments/prod/history/": "Change history",
        "/environments/prod/access/": "Team permissions",
        "/environments/prod/edit/": "Edit Production",
        "/environments/prod/targets/new/": "Add a target",
        f"/environments/prod/targets/{target.pk}/edit/": "Edit target web-1",
        "/environments/prod/variables/new/": "Add a variable",
        f"/environments/prod/variables/{variable.pk}/edit/": "Edit variable DB_PASSWORD",
    }
    for path, text in pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert text in html(response), path


def test_list_groups_environments_by_tier_in_lifecycle_order(client, user, owners, prod):
    environment_create(actor=None, slug="dev", name="Development", owner_team=owners, tier="development")
    environment_create(actor=None, slug="qa", name="QA", owner_team=owners, tier="test")
    page = html(login(client, user).get("/environments/"))
    sections = re.findall(r'data-testid="tier-(\w+)"', page)
    assert sections == ["development", "test", "production"]
    assert page.index("/environments/dev/") < page.index("/environments/qa/") < page.index("/environments/prod/")
    assert 'class="badge rh-tier rh-tier-production"' in page


def results(response) -> str:
    """The environment list itself, without the lifecycles card below it."""
    return html(response).split('id="environment-results"')[1].split('data-testid="lifecycles"')[0]


def test_list_filters_with_the_api_filterset_and_answers_htmx_with_the_fragment(client, user, owners, prod):
    environment_create(actor=None, slug="dev", name="Development", owner_team=owners, tier="development")
    login(client, user)
    page = results(client.get("/environments/", {"tier": "production"}))
    assert "/environments/prod/" in page
    assert "/environments/dev/" not in page
    searched = results(client.get("/environments/", {"search": "devel"}))
    assert "/environments/dev/" in searched
    assert "/environments/prod/" not in searched

    fragment = client.get("/environments/", {"search": "prod"}, headers={"HX-Request": "true"})
    assert "<html" not in html(fragment)
    assert "/environments/prod/" in html(fragment)
    assert "HX-Request" in fragment["Vary"]

    nothing = html(client.get("/environments/", {"search": "nothing-like-this"}))
    assert "No environment matches these filters" in nothing


def test_detail_shows_targets_variables_and_lifecycles(client, other_user, prod):
    page = html(login(client, other_user).get("/environments/prod/"))
    assert "10.0.0.1" in page
    assert "rh-slot-blue" in page
    assert "LOG_LEVEL" in page
    assert "debug" in page  # the override for web-1
    assert MASK in page
    assert "Standard" in page  # the lifecycle
    assert "rh-stage-current" in page


def test_navbar_marks_the_section_active_on_every_page_of_it(client, user, prod):
    login(client, user)
    target = prod.targets.get()
    for path in [
        "/environments/",
        "/environments/prod/",
        "/environments/prod/history/",
        "/environments/prod/edit/",
        "/environments/prod/inventory/",
        "/environments/prod/policies/",
        f"/environments/prod/targets/{target.pk}/",
    ]:
        navbar = html(client.get(path)).split('aria-label="Main navigation"')[1].split("</nav>")[0]
        active = re.findall(r'class="nav-link active" aria-current="page"\s+href="([^"]+)"', navbar)
        assert active == ["/environments/"], path


def test_an_environment_the_user_may_not_view_is_a_404(client, stranger, prod):
    login(client, stranger)
    target = prod.targets.get()
    variable = prod.variables.first()
    for path in [
        "/environments/prod/",
        "/environments/prod/history/",
        "/environments/prod/access/",
        "/environments/prod/edit/",
        "/environments/prod/targets/new/",
        f"/environments/prod/targets/{target.pk}/edit/",
        f"/environments/prod/variables/{variable.pk}/edit/",
        "/environments/no-such-environment/",
    ]:
        assert client.get(path).status_code == 404, path
    before = AuditEvent.objects.count()
    for path in [
        "/environments/prod/delete/",
        "/environments/prod/access/grant/",
        f"/environments/prod/targets/{target.pk}/delete/",
        f"/environments/prod/variables/{variable.pk}/delete/",
    ]:
        assert client.post(path, {"team": "platform", "action": "view"}).status_code == 404, path
    assert AuditEvent.objects.count() == before
    assert "/environments/prod/" not in html(client.get("/environments/"))


def test_pages_need_sign_in(client, prod):
    for path in ["/environments/", "/environments/prod/", "/environments/new/", "/environments/prod/access/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


# --- A viewer sees no controls, and a manage form refuses them with a message --------------------------


def test_a_viewer_sees_no_edit_controls(client, other_user, prod):
    login(client, other_user)
    detail = html(client.get("/environments/prod/"))
    for control in ["/environments/prod/edit/", "/environments/prod/delete/", "/targets/new/", "/variables/new/"]:
        assert control not in detail
    assert "Add target" not in detail
    access = html(client.get("/environments/prod/access/"))
    assert "read-only" in access
    assert "/access/grant/" not in access
    assert "/access/revoke/" not in access
    assert "New environment" not in html(client.get("/environments/"))


def test_a_viewer_posting_to_manage_forms_gets_a_message_not_a_500(client, other_user, prod):
    login(client, other_user)
    target = prod.targets.get()
    variable = prod.variables.get(name="LOG_LEVEL", target=None)
    before = AuditEvent.objects.count()
    posts = [
        (
            "/environments/prod/edit/",
            {"name": "Hacked", "tier": "production", "owner_team": "platform", "timezone": "UTC"},
        ),
        ("/environments/prod/delete/", {}),
        ("/environments/prod/targets/new/", {"name": "web-9", "address": "10.0.0.9", "slot": "none"}),
        (f"/environments/prod/targets/{target.pk}/edit/", {"name": "web-1", "address": "1.1.1.1", "slot": "none"}),
        (f"/environments/prod/targets/{target.pk}/delete/", {}),
        ("/environments/prod/variables/new/", {"name": "NEW", "value": "x"}),
        (f"/environments/prod/variables/{variable.pk}/edit/", {"value": "error"}),
        (f"/environments/prod/variables/{variable.pk}/delete/", {}),
        ("/environments/prod/access/grant/", {"team": "payments", "action": "manage"}),
        ("/environments/prod/access/revoke/", {"team": "platform", "action": "manage"}),
    ]
    for path, data in posts:
        response = client.post(path, data, follow=True)
        assert response.status_code == 200, path
        page = html(response)
        assert "alert-danger" in page, path
        assert "You may not manage environment Production." in page, path
    assert AuditEvent.objects.count() == before
    prod.refresh_from_db()
    assert prod.name == "Production"
    assert Target.objects.filter(environment=prod).count() == 1
    assert Variable.objects.filter(environment=prod).count() == 3
    assert not EnvironmentGroupObjectPermission.objects.filter(
        content_object=prod, group__team__slug="payments", permission__codename="manage_environment"
    ).exists()


def test_a_viewer_opening_a_manage_form_is_sent_back_with_the_reason(client, other_user, prod):
    response = login(client, other_user).get("/environments/prod/targets/new/", follow=True)
    assert response.redirect_chain == [("/environments/prod/", 302)]
    assert "You may not manage environment Production." in html(response)


# --- Creating, editing and deleting environments -------------------------------------------------------


def test_new_environment_button_and_form_only_for_those_who_may_create(client, user, staff, prod):
    login(client, user)
    assert "New environment" not in html(client.get("/environments/"))
    response = client.get("/environments/new/", follow=True)
    assert response.redirect_chain == [("/environments/", 302)]
    assert "You may not create environments" in html(response)
    response = client.post("/environments/new/", {"slug": "x", "name": "X", "owner_team": "platform"}, follow=True)
    assert "You may not create environments" in html(response)
    assert not Environment.objects.filter(slug="x").exists()

    login(client, staff)
    assert "New environment" in html(client.get("/environments/"))
    assert client.get("/environments/new/").status_code == 200


def test_staff_create_an_environment_through_the_service(client, staff, owners):
    login(client, staff)
    response = client.post(
        "/environments/new/",
        {
            "slug": "staging",
            "name": "Staging",
            "tier": "staging",
            "owner_team": "platform",
            "timezone": "Europe/Berlin",
            "labels": "region=eu-central\nteam = platform\n",
            "description": "Pre-production.",
            "requires_booking": "on",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/environments/staging/"
    environment = Environment.objects.get(slug="staging")
    assert environment.labels == {"region": "eu-central", "team": "platform"}
    assert environment.requires_booking is True
    assert environment.protected is False
    event = AuditEvent.objects.get(verb="environment.created")
    assert (event.actor, event.channel, event.object_id) == (staff, "ui", str(environment.pk))
    # The owner team got its grants, also audited.
    assert AuditEvent.objects.filter(verb="team.permission_granted").count() == 4


def test_environment_form_errors_are_shown_on_the_form(client, staff, prod):
    login(client, staff)
    base = {"name": "Other", "tier": "test", "owner_team": "platform", "timezone": "UTC"}
    taken = client.post("/environments/new/", {**base, "slug": "prod"})
    assert taken.status_code == 200
    assert "Environment with this Slug already exists." in html(taken)
    bad_zone = client.post("/environments/new/", {**base, "slug": "other", "timezone": "Mars/Olympus"})
    assert "Unknown time zone" in html(bad_zone)
    bad_labels = client.post("/environments/new/", {**base, "slug": "other", "labels": "no equals sign"})
    assert "Line 1: write key=value." in html(bad_labels)
    assert "is-invalid" in html(bad_labels)
    assert not Environment.objects.filter(slug="other").exists()


def test_a_manager_edits_the_environment(client, user, prod):
    login(client, user)
    form = html(client.get("/environments/prod/edit/"))
    assert 'value="Production"' in form
    assert "region=eu" in form
    response = client.post(
        "/environments/prod/edit/",
        {
            "name": "Production EU",
            "tier": "production",
            "owner_team": "platform",
            "timezone": "Europe/Paris",
            "labels": "region=eu",
            "protected": "on",
        },
    )
    assert response.status_code == 302
    prod.refresh_from_db()
    assert (prod.name, prod.timezone, prod.protected) == ("Production EU", "Europe/Paris", True)
    event = AuditEvent.objects.get(verb="environment.updated")
    assert event.details["changes"]["name"] == ["Production", "Production EU"]
    assert event.actor == user


def test_delete_refuses_a_non_empty_environment_and_deletes_an_empty_one(client, user, owners, prod):
    login(client, user)
    response = client.post("/environments/prod/delete/", follow=True)
    assert "Remove its targets, variables and lifecycle stages first." in html(response)
    assert Environment.objects.filter(slug="prod").exists()

    environment_create(actor=None, slug="scratch", name="Scratch", owner_team=owners)
    response = client.post("/environments/scratch/delete/", follow=True)
    assert response.redirect_chain == [("/environments/", 302)]
    assert "Environment “Scratch” deleted." in html(response)
    assert not Environment.objects.filter(slug="scratch").exists()
    assert AuditEvent.objects.filter(verb="environment.deleted").count() == 1


# --- Targets and variables ---------------------------------------------------------------------------


def test_a_manager_adds_edits_and_deletes_a_target(client, user, prod):
    login(client, user)
    response = client.post(
        "/environments/prod/targets/new/",
        {
            "name": "web-2",
            "address": "10.0.0.2",
            "slot": "green",
            "path": "/srv/web",
            "health_check_url": "http://10.0.0.2:8080/healthz",
            "labels": "rack=a1",
            "attributes": 'port=8080\nweight=1.5\ncanary=true\nbuild="42"\nowner=ops',
        },
    )
    assert response.status_code == 302
    target = prod.targets.get(name="web-2")
    assert target.attributes == {"port": 8080, "weight": 1.5, "canary": True, "build": "42", "owner": "ops"}
    assert target.labels == {"rack": "a1"}

    form = html(client.get(f"/environments/prod/targets/{target.pk}/edit/"))
    assert "port=8080" in form
    assert "build=&quot;42&quot;" in form  # a string that reads like a number stays quoted
    response = client.post(
        f"/environments/prod/targets/{target.pk}/edit/",
        {"name": "web-2", "address": "10.0.0.22", "slot": "green", "attributes": "port=8080"},
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.address == "10.0.0.22"

    duplicate = client.post("/environments/prod/targets/new/", {"name": "web-1", "address": "x", "slot": "none"})
    assert duplicate.status_code == 200
    assert "Target with this Environment and Name already exists." in html(duplicate)

    client.post(f"/environments/prod/targets/{target.pk}/delete/")
    assert not Target.objects.filter(pk=target.pk).exists()
    # The fixture's web-1, then web-2 created, edited and deleted; the refused duplicate left nothing.
    assert [v for v in audit_verbs() if v.startswith("target.")] == [
        "target.created",
        "target.created",
        "target.updated",
        "target.deleted",
    ]


def test_a_manager_adds_a_secret_variable_that_is_encrypted_and_masked(client, user, prod):
    login(client, user)
    target = prod.targets.get()
    response = client.post(
        "/environments/prod/variables/new/",
        {"name": "API_KEY", "value": "k-123-visible-nowhere", "secret": "on", "target": target.pk},
    )
    assert response.status_code == 302
    variable = Variable.objects.get(name="API_KEY")
    assert variable.secret is True
    assert variable.target == target
    assert "k-123-visible-nowhere" not in variable.value  # ciphertext
    event = AuditEvent.objects.get(verb="variable.created", object_id=str(variable.pk))
    assert "value" not in event.details
    page = html(client.get("/environments/prod/"))
    assert "k-123-visible-nowhere" not in page
    assert variable.value not in page


def test_a_variable_form_shown_again_after_an_error_never_echoes_a_secret(client, user, prod):
    login(client, user)
    response = client.post(
        "/environments/prod/variables/new/", {"name": "9-bad-name", "value": "typed-secret-value", "secret": "on"}
    )
    assert response.status_code == 200
    assert "Use letters, digits and _" in html(response)
    assert "typed-secret-value" not in html(response)
    plain = client.post("/environments/prod/variables/new/", {"name": "9-bad-name", "value": "plain-value"})
    assert "plain-value" in html(plain)  # a plain value is kept for the next try


def test_editing_a_secret_never_shows_it_and_keeps_it_when_left_empty(client, user, prod):
    login(client, user)
    variable = prod.variables.get(name="DB_PASSWORD")
    stored = variable.value
    form = html(client.get(f"/environments/prod/variables/{variable.pk}/edit/"))
    assert SECRET not in form
    assert stored not in form
    assert "Leave empty to keep the current secret" in form

    client.post(f"/environments/prod/variables/{variable.pk}/edit/", {"value": "", "secret": "on"})
    variable.refresh_from_db()
    assert variable.value == stored  # unchanged, and no audit event for a no-op
    assert not AuditEvent.objects.filter(verb="variable.updated").exists()

    refused = client.post(f"/environments/prod/variables/{variable.pk}/edit/", {"value": ""})
    assert refused.status_code == 200
    assert "Give a new value to make a secret variable plain." in html(refused)

    client.post(f"/environments/prod/variables/{variable.pk}/edit/", {"value": "rotated-value", "secret": "on"})
    variable.refresh_from_db()
    assert variable.secret is True
    assert variable.value != stored
    event = AuditEvent.objects.get(verb="variable.updated")
    assert event.details["changes"]["value"] == ["(hidden)", "(hidden)"]


def test_a_manager_edits_and_deletes_a_plain_variable(client, user, prod):
    login(client, user)
    variable = prod.variables.get(name="LOG_LEVEL", target=None)
    assert 'value="info"' in html(client.get(f"/environments/prod/variables/{variable.pk}/edit/"))
    client.post(f"/environments/prod/variables/{variable.pk}/edit/", {"value": "warning"})
    variable.refresh_from_db()
    assert variable.value == "warning"
    assert AuditEvent.objects.get(verb="variable.updated").details["changes"]["value"] == ["info", "warning"]
    response = client.post(f"/environments/prod/variables/{variable.pk}/delete/", follow=True)
    assert "Variable LOG_LEVEL deleted." in html(response)
    assert AuditEvent.objects.filter(verb="variable.deleted").count() == 1


# --- Secrets, history, access --------------------------------------------------------------------------


def test_secrets_appear_on_no_page(client, user, staff, prod):
    variable = prod.variables.get(name="DB_PASSWORD")
    variable_update(actor=None, variable=variable, value=SECRET + "-v2")
    ciphertexts = list(Variable.history.filter(id=variable.pk).values_list("value", flat=True))
    for who in (user, staff):
        login(client, who)
        for path in [
            "/environments/",
            "/environments/prod/",
            "/environments/prod/history/",
            "/environments/prod/access/",
            f"/environments/prod/variables/{variable.pk}/edit/",
            "/audit/",
        ]:
            page = html(client.get(path))
            assert "hunter2" not in page, path
            for ciphertext in ciphertexts:
                assert ciphertext not in page, path


def test_history_lists_who_changed_what_through_which_channel(client, user, prod):
    login(client, user)
    client.post(
        "/environments/prod/edit/",
        {"name": "Prod", "tier": "production", "owner_team": "platform", "timezone": "UTC", "labels": "region=eu"},
        REMOTE_ADDR="192.0.2.7",
    )
    secret = prod.variables.get(name="DB_PASSWORD")
    client.post(f"/environments/prod/variables/{secret.pk}/edit/", {"value": "new-secret-abc", "secret": "on"})
    prod.targets.get().delete()  # a deleted target's history stays visible
    page = html(client.get("/environments/prod/history/"))
    rows = page.split('data-testid="history-table"')[1]
    assert "Ursula Lind" in rows
    assert "192.0.2.7" in rows
    assert 'rh-channel-ui">ui<' in rows
    assert "Production</span>" in rows
    assert "Prod</span>" in rows
    assert "changed (secret)" in rows
    assert "new-secret-abc" not in page
    assert "rh-kind-deleted" in rows
    assert "web-1" in rows
    assert "object_type=environments.environment" in page


def test_access_tab_lists_team_grants_and_a_manager_grants_and_revokes(client, user, prod):
    login(client, user)
    page = html(client.get("/environments/prod/access/"))
    table = page.split('data-testid="access-table"')[1].split("</table>")[0]
    assert "Platform" in table
    assert "Payments" in table
    assert "Grant deploy to Payments" in table
    assert "Revoke view from Payments" in table

    response = client.post("/environments/prod/access/grant/", {"team": "payments", "action": "deploy"}, follow=True)
    assert "Payments may now deploy on Production." in html(response)
    grants = EnvironmentGroupObjectPermission.objects.filter(content_object=prod, group__team__slug="payments")
    assert set(grants.values_list("permission__codename", flat=True)) == {"view_environment", "deploy_environment"}
    granted = AuditEvent.objects.filter(verb="team.permission_granted").latest("id")
    assert granted.actor == user
    assert granted.details == {
        "permission": "environments.deploy_environment",
        "object": f"environments.environment:{prod.pk}",
    }

    client.post("/environments/prod/access/revoke/", {"team": "payments", "action": "deploy"})
    assert not grants.filter(permission__codename="deploy_environment").exists()
    assert AuditEvent.objects.filter(verb="team.permission_revoked", actor=user).count() == 1

    bad = client.post("/environments/prod/access/grant/", {"team": "payments", "action": "fly"}, follow=True)
    assert "Choose a team and one of the actions" in html(bad)


def test_access_tab_is_read_only_for_a_viewer(client, other_user, prod):
    page = html(login(client, other_user).get("/environments/prod/access/"))
    assert "read-only" in page
    assert 'data-testid="grant-form"' not in page
    assert "bi-check-circle-fill" in page


def test_the_last_managing_team_keeps_manage(client, user, prod):
    login(client, user)
    response = client.post("/environments/prod/access/revoke/", {"team": "platform", "action": "manage"}, follow=True)
    assert "Platform is the only team that manages Production" in html(response)
    assert EnvironmentGroupObjectPermission.objects.filter(
        content_object=prod, group__team__slug="platform", permission__codename="manage_environment"
    ).exists()


# --- Constant queries ------------------------------------------------------------------------------------


def _environments(owners, count: int, start: int = 0) -> None:
    tiers = ["development", "test", "staging", "production", "other"]
    for index in range(start, start + count):
        environment = environment_create(
            actor=None, slug=f"env-{index}", name=f"Env {index}", owner_team=owners, tier=tiers[index % 5]
        )
        target_create(actor=None, environment=environment, name="host", address="10.0.0.1")
        variable_create(actor=None, environment=environment, name="A", value="1")


def _count_queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_list_runs_the_same_queries_for_5_and_50_environments(client, user, owners, django_assert_max_num_queries):
    login(client, user)
    _environments(owners, 5)
    with_5 = _count_queries(client, "/environments/")
    _environments(owners, 45, start=5)
    with django_assert_max_num_queries(with_5):
        page = html(client.get("/environments/"))
    assert page.count("/environments/env-") == 50
    assert _count_queries(client, "/environments/") == with_5


def test_detail_history_and_access_run_constant_queries(client, user, owners, prod):
    login(client, user)
    counts = {
        path: _count_queries(client, path)
        for path in ["/environments/prod/", "/environments/prod/history/", "/environments/prod/access/"]
    }
    for index in range(10):
        target = target_create(actor=None, environment=prod, name=f"extra-{index}", address="10.1.0.1")
        variable_create(actor=None, environment=prod, name=f"V{index}", value="x", target=target)
        team = team_create(actor=None, name=f"Team {index}", slug=f"team-{index}")
        environment_grant(actor=None, environment=prod, team=team, action="view")
    for path, count in counts.items():
        assert _count_queries(client, path) == count, path


def test_a_manager_sets_the_default_strategy_and_traffic_hook_as_json(client, user, prod):
    login(client, user)
    base = {"name": "Production", "tier": "production", "owner_team": "platform", "timezone": "UTC"}
    response = client.post(
        "/environments/prod/edit/",
        {**base, "default_strategy": "canary", "default_strategy_options": '{"stages": [{"weight": 10}]}'},
    )
    page = html(response)
    assert "stages: Give stages with growing weights, the last one 100." in page  # shown on the options field
    response = client.post(
        "/environments/prod/edit/",
        {**base, "traffic_hook": "{not json"},
    )
    assert "Not valid JSON" in html(response)
    hook = '{"kind": "shell", "params": {"command": "switch {{ traffic.slot }}"}}'
    response = client.post(
        "/environments/prod/edit/",
        {
            **base,
            "default_strategy": "blue_green",
            "default_strategy_options": '{"keep_old_slot_for": "5m"}',
            "traffic_hook": hook,
        },
    )
    assert response.status_code == 302
    prod.refresh_from_db()
    assert prod.default_strategy == "blue_green"
    assert prod.default_strategy_options == {"keep_old_slot_for": "5m"}
    assert prod.traffic_hook["params"]["command"] == "switch {{ traffic.slot }}"
    detail = html(client.get("/environments/prod/"))
    assert "Blue/green by default" in detail
    assert "no switch yet · shell hook" in detail
    form = html(client.get("/environments/prod/edit/"))
    assert "switch {{ traffic.slot }}" in form  # the JSON comes back for the next edit
