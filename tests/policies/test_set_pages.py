"""The policy set pages: list, detail, history, and the editor (create, edit, delete), for administrators, members
and strangers.

Every write goes through a service: an accepted form leaves an audit event and history rows, a refused one leaves
nothing. Rule errors appear next to the rule they are about.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import team_add_member, team_create
from apps.audit.models import AuditEvent
from apps.environments.services import environment_create, environment_grant
from apps.policies.models import PolicySet, Rule
from apps.policies.services import policy_set_create

pytestmark = pytest.mark.django_db

BRANCHES = {"kind": "allowed_branches", "params": {"patterns": ["main", "release/*"]}, "overridable": False}
STRATEGIES = {"kind": "allowed_strategies", "params": {"strategies": ["canary"]}, "two_person": True}


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="policies", codename__in=codenames))


@pytest.fixture
def scene(user, other_user, make_user):
    """Platform (ursula, `user`, with every policy set permission) manages prod and staging; Payments (oscar,
    `other_user`, no policy set permission) manages lab and only views prod. A stranger sees nothing."""
    platform = team_create(actor=None, name="Platform", slug="platform")
    payments = team_create(actor=None, name="Payments", slug="payments")
    team_add_member(actor=None, team=platform, user=user)
    team_add_member(actor=None, team=payments, user=other_user)
    environments = {
        slug: environment_create(actor=None, slug=slug, name=name, owner_team=team, tier=tier)
        for slug, name, team, tier in [
            ("prod", "Production", platform, "production"),
            ("staging", "Staging", platform, "staging"),
            ("lab", "Lab", payments, "test"),
        ]
    }
    environment_grant(actor=None, environment=environments["prod"], team=payments, action="view")
    grant(user, "add_policyset", "change_policyset", "delete_policyset")
    return {"environments": environments, "stranger": make_user("stranger")}


def make_set(slug: str = "guardrails", environments=(), rules=(BRANCHES, STRATEGIES), **fields) -> PolicySet:
    fields.setdefault("name", slug.title())
    return policy_set_create(actor=None, slug=slug, rules=list(rules), environments=list(environments), **fields)


def html(response) -> str:
    return response.content.decode()


def rows(page: str) -> list[str]:
    """The editor's rule rows, each as its HTML."""
    return page.split('data-testid="rule-row"')[1:]


def editor_data(rules: list[dict], **fields) -> dict:
    """A POST of the editor: the set's fields and its rule rows (params as JSON text)."""
    data = {
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, rule in enumerate(rules):
        data[f"rules-{index}-kind"] = rule["kind"]
        params = rule.get("params", {})
        data[f"rules-{index}-params"] = params if isinstance(params, str) else json.dumps(params)
        if rule.get("overridable", True):
            data[f"rules-{index}-overridable"] = "on"
        if rule.get("two_person"):
            data[f"rules-{index}-two_person"] = "on"
        if rule.get("remove"):
            data[f"rules-{index}-DELETE"] = "on"
    return data


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


# --- List and detail ------------------------------------------------------------------------------


def test_the_list_shows_what_one_may_see_and_the_new_button_to_administrators(client, user, other_user, scene):
    lab, prod = scene["environments"]["lab"], scene["environments"]["prod"]
    make_set("lab-rules", environments=[lab], name="Lab rules")
    make_set("prod-rules", environments=[prod], name="Prod rules", description="What production needs.")
    make_set("everywhere", all_environments=True, rules=[{"kind": "no_freeze"}], name="Everywhere")
    client.force_login(user)
    page = html(client.get("/policies/"))
    assert page.count('data-testid="policy-set-row"') == 2  # lab is Payments'
    assert "Prod rules" in page
    assert "Everywhere" in page
    assert "Lab rules" not in page
    assert "every environment" in page
    assert "What production needs." in page
    assert 'href="/policies/new/"' in page

    client.force_login(other_user)
    page = html(client.get("/policies/"))
    assert page.count('data-testid="policy-set-row"') == 3
    assert 'href="/policies/new/"' not in page
    client.force_login(scene["stranger"])
    assert html(client.get("/policies/")).count('data-testid="policy-set-row"') == 1


def _count_queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_list_runs_the_same_queries_for_1_and_20_sets(client, user, scene, django_assert_max_num_queries):
    prod, staging = scene["environments"]["prod"], scene["environments"]["staging"]
    client.force_login(user)
    make_set("set-0", environments=[prod])
    with_one = _count_queries(client, "/policies/")
    for index in range(1, 20):
        make_set(f"set-{index}", environments=[prod, staging] if index % 2 else [], tiers=["production"])
    with django_assert_max_num_queries(with_one):
        page = html(client.get("/policies/"))
    assert page.count('data-testid="policy-set-row"') == 20


def test_the_detail_shows_where_it_applies_and_its_rules_readably(client, user, other_user, scene):
    prod, lab = scene["environments"]["prod"], scene["environments"]["lab"]
    make_set(environments=[prod, lab], tiers=["staging"], name="Guardrails")
    client.force_login(other_user)  # views prod and lab; no permission to change the set
    page = html(client.get("/policies/guardrails/"))
    assert page.count('data-testid="policy-rule"') == 2
    assert "Allowed branches" in page
    assert "main, release/*" in page
    assert "{" not in page.split("policy-rules")[1][:3000]
    assert "not overridable" in page
    assert "two-person override" in page
    assert 'href="/environments/prod/policies/"' in page
    assert 'href="/environments/lab/policies/"' in page
    assert "Staging</span> tier" in page
    assert 'href="/policies/guardrails/history/"' in page
    assert 'href="/policies/guardrails/edit/"' not in page
    assert 'href="/policies/guardrails/delete/"' not in page

    client.force_login(user)  # may change sets, manages prod but not lab
    page = html(client.get("/policies/guardrails/"))
    assert 'href="/environments/lab/policies/"' not in page
    assert not re.search(r"\blab\b", page, re.IGNORECASE)  # an environment one may not view is not named
    assert 'href="/policies/guardrails/edit/"' not in page
    refused = client.get("/policies/guardrails/edit/", follow=True)
    assert "attached to environments you may not view" in html(refused)
    history = html(client.get("/policies/guardrails/history/"))
    assert not re.search(r"\blab\b", history, re.IGNORECASE)
    assert "hidden" in history


def test_a_set_one_may_not_see_is_a_404_on_every_page(client, scene):
    make_set(environments=[scene["environments"]["prod"]])
    client.force_login(scene["stranger"])
    for path in ["", "edit/", "history/", "delete/"]:
        assert client.get(f"/policies/guardrails/{path}").status_code == 404, path
    assert client.post("/policies/guardrails/delete/").status_code == 404
    assert PolicySet.objects.filter(slug="guardrails").exists()


def test_pages_need_sign_in(client, scene):
    make_set(all_environments=True)
    for path in ["/policies/", "/policies/new/", "/policies/guardrails/", "/policies/guardrails/history/"]:
        assert client.get(path)["Location"].startswith("/login/"), path


# --- The editor ---------------------------------------------------------------------------------------


def test_an_administrator_creates_a_set_with_two_rules(client, user, scene):
    client.force_login(user)
    page = html(client.get("/policies/new/"))
    assert len(rows(page)) == 1
    assert page.count('data-testid="rule-kind"') >= 10
    assert "How many approvals." in page
    assert "\n{}</textarea>" in page  # the parameters start as an empty object
    prod = scene["environments"]["prod"]
    assert '<option value="prod">Production (prod)</option>' in page
    assert 'value="lab"' not in page  # only environments one manages are offered

    data = editor_data([BRANCHES, STRATEGIES], slug="prod-rules", name="Prod rules", environments=["prod"])
    data["tiers"] = ["staging"]
    response = client.post("/policies/new/", data)
    assert response.status_code == 302, html(response)
    assert response["Location"] == "/policies/prod-rules/"
    policy_set = PolicySet.objects.get(slug="prod-rules")
    assert list(policy_set.environments.all()) == [prod]
    assert policy_set.tiers == ["staging"]
    assert [(r.kind, r.params, r.overridable, r.two_person) for r in policy_set.rules.all()] == [
        ("allowed_branches", {"patterns": ["main", "release/*"]}, False, False),
        ("allowed_strategies", {"strategies": ["canary"]}, True, True),
    ]
    event = AuditEvent.objects.get(verb="policy_set.created", object_id=str(policy_set.pk))
    assert event.actor == user
    assert event.channel == "ui"
    assert Rule.history.filter(policy_set_id=policy_set.pk, history_type="+").count() == 2


def test_add_rule_draws_one_more_row_keeping_what_was_typed(client, user, scene):
    client.force_login(user)
    data = editor_data([BRANCHES], slug="draft", name="Draft", environments=["prod"])
    data["add-rule"] = "1"
    response = client.post("/policies/new/", data)
    page = html(response)
    assert response.status_code == 200
    assert len(rows(page)) == 2
    assert 'value="Draft"' in page
    assert "release/*" in page
    assert "is-invalid" not in page
    assert "This field is required" not in page
    assert 'name="rules-INITIAL_FORMS" value="1"' in page
    assert not PolicySet.objects.exists()

    data = editor_data([BRANCHES, {"kind": "", "params": "{}"}], slug="draft", name="Draft", environments=["prod"])
    data["rules-INITIAL_FORMS"] = "1"
    data["rules-1-overridable"] = "on"
    data["add-rule"] = "1"
    assert len(rows(html(client.post("/policies/new/", data)))) == 3  # the blank row stays, one more is added

    del data["add-rule"]
    assert client.post("/policies/new/", data).status_code == 302  # blank rows are ignored
    assert PolicySet.objects.get(slug="draft").rules.count() == 1


def test_rule_errors_appear_next_to_their_row(client, user, scene):
    client.force_login(user)
    bad = {"kind": "max_concurrent", "params": {"environments": ["prod"], "max": 0}}
    data = editor_data([BRANCHES, bad], slug="bad", name="Bad", environments=["prod"])
    page = html(client.post("/policies/new/", data))
    first, second = rows(page)
    assert "invalid-feedback" not in first
    assert "max: 0 is less than the minimum of 1" in second
    assert "Some rules need fixing" in page
    assert not PolicySet.objects.exists()

    data = editor_data([{"kind": "no_freeze", "params": "{not json"}, BRANCHES], slug="bad", name="Bad")
    page = html(client.post("/policies/new/", data))
    first, second = rows(page)
    assert "Not valid JSON" in first
    assert "invalid-feedback" not in second
    assert "{not json" in first


def test_set_errors_go_on_the_form_and_the_rules(client, user, scene):
    client.force_login(user)
    make_set("taken", all_environments=True)
    data = editor_data([BRANCHES], slug="taken", name="Taken", all_environments="on")
    assert "exists already" in html(client.post("/policies/new/", data))
    page = html(client.post("/policies/new/", editor_data([BRANCHES], slug="nowhere", name="Nowhere")))
    assert "Attach it to environments, tiers or all environments." in page
    page = html(client.post("/policies/new/", editor_data([], slug="empty", name="Empty", all_environments="on")))
    assert 'data-testid="rules-errors"' in page
    assert "A list of at least one rule." in page
    page = html(client.post("/policies/new/", editor_data([BRANCHES], slug="new", name="New", all_environments="on")))
    assert "reserved" in page
    assert set(PolicySet.objects.values_list("slug", flat=True)) == {"taken"}


def test_an_administrator_edits_rules_in_place_and_history_keeps_the_old_ones(client, user, scene):
    prod = scene["environments"]["prod"]
    policy_set = make_set(environments=[prod])
    first = policy_set.rules.get(position=0)
    client.force_login(user)
    page = html(client.get("/policies/guardrails/edit/"))
    assert len(rows(page)) == 3  # two rules and a blank row
    assert "release/*" in rows(page)[0]
    assert 'name="slug"' not in page

    changed = {**BRANCHES, "params": {"patterns": ["main"]}}
    data = editor_data(
        [changed, {**STRATEGIES, "remove": True}, {"kind": "no_freeze"}],
        name="Guardrails v2",
        environments=["prod", "staging"],
        active="on",
    )
    data["rules-INITIAL_FORMS"] = "2"
    response = client.post("/policies/guardrails/edit/", data)
    assert response.status_code == 302, html(response)
    policy_set.refresh_from_db()
    assert policy_set.name == "Guardrails v2"
    assert sorted(e.slug for e in policy_set.environments.all()) == ["prod", "staging"]
    assert [(r.kind, r.params) for r in policy_set.rules.all()] == [
        ("allowed_branches", {"patterns": ["main"]}),
        ("no_freeze", {}),
    ]
    assert policy_set.rules.get(position=0).pk == first.pk  # the same row, changed in place
    assert [h.params for h in Rule.history.filter(id=first.pk).order_by("history_date")] == [
        {"patterns": ["main", "release/*"]},
        {"patterns": ["main"]},
    ]
    changes = AuditEvent.objects.get(verb="policy_set.updated").details["changes"]
    assert changes["name"] == ["Guardrails", "Guardrails v2"]
    assert changes["environments"] == [["prod"], ["prod", "staging"]]
    assert [r["kind"] for r in changes["rules"][0]] == ["allowed_branches", "allowed_strategies"]
    assert [r["params"] for r in changes["rules"][1]] == [{"patterns": ["main"]}, {}]

    page = html(client.get("/policies/guardrails/history/"))
    assert "patterns: main, release/*" in page
    assert "Guardrails v2" in page
    assert "prod, staging" in page
    assert 'rh-channel-ui">ui</span>' in page
    assert "ursula" in page
    assert "#2 Allowed strategies" in page
    assert "#2 No freeze" in page


def test_the_history_runs_constant_queries(client, user, scene):
    from apps.policies.services import policy_set_update

    prod, staging = scene["environments"]["prod"], scene["environments"]["staging"]
    policy_set = make_set(environments=[prod])
    client.force_login(user)
    before = _count_queries(client, "/policies/guardrails/history/")
    for index in range(5):
        policy_set_update(
            actor=None,
            policy_set=policy_set,
            environments=[prod, staging] if index % 2 else [prod],
            rules=[{"kind": "allowed_branches", "params": {"patterns": [f"r{index}"]}}],
        )
    assert _count_queries(client, "/policies/guardrails/history/") == before


def test_without_change_policyset_the_editor_refuses_with_the_reason(client, other_user, scene):
    grant(other_user, "add_policyset")
    make_set(environments=[scene["environments"]["lab"]])
    client.force_login(other_user)
    response = client.get("/policies/guardrails/edit/", follow=True)
    assert response.redirect_chain[-1][0] == "/policies/guardrails/"
    assert "You may not change policy sets; ask an administrator." in messages_of(response)
    data = editor_data([BRANCHES], name="Hijacked", environments=["lab"], active="on")
    response = client.post("/policies/guardrails/edit/", data, follow=True)
    assert "You may not change policy sets; ask an administrator." in messages_of(response)
    assert PolicySet.objects.get(slug="guardrails").name == "Guardrails"
    assert not AuditEvent.objects.filter(verb="policy_set.updated").exists()


def test_changing_a_set_needs_manage_where_it_was_and_where_it_goes(client, other_user, scene):
    """oscar may change sets, manages lab, and only views prod."""
    grant(other_user, "change_policyset", "delete_policyset")
    lab, prod = scene["environments"]["lab"], scene["environments"]["prod"]
    make_set("on-prod", environments=[prod])
    make_set("on-lab", environments=[lab])
    client.force_login(other_user)
    refusal = "You may not manage environment Production."

    response = client.get("/policies/on-prod/edit/", follow=True)
    assert refusal in messages_of(response)
    data = editor_data([BRANCHES], name="Moved", environments=["lab"], active="on")
    assert refusal in messages_of(client.post("/policies/on-prod/edit/", data, follow=True))
    assert refusal in messages_of(client.post("/policies/on-prod/delete/", follow=True))

    page = html(client.get("/policies/on-lab/edit/"))
    assert 'value="prod"' not in page  # not offered: oscar does not manage it
    data = editor_data([BRANCHES], name="Spread", environments=["lab", "prod"], active="on")
    assert "Select a valid choice" in html(client.post("/policies/on-lab/edit/", data))
    assert sorted(PolicySet.objects.values_list("name", flat=True)) == ["On-Lab", "On-Prod"]

    data = editor_data([BRANCHES], name="Renamed", environments=["lab"], active="on")
    assert client.post("/policies/on-lab/edit/", data)["Location"] == "/policies/on-lab/"
    assert PolicySet.objects.get(slug="on-lab").name == "Renamed"


def test_an_administrator_deletes_a_set_after_confirming(client, user, other_user, scene):
    make_set(environments=[scene["environments"]["prod"]])
    client.force_login(other_user)
    response = client.post("/policies/guardrails/delete/", follow=True)
    assert "You may not delete policy sets; ask an administrator." in messages_of(response)

    client.force_login(user)
    page = html(client.get("/policies/guardrails/delete/"))
    assert "Delete Guardrails?" in page
    assert "Allowed branches" in page
    assert 'method="post"' in page
    assert PolicySet.objects.filter(slug="guardrails").exists()  # a GET deletes nothing
    response = client.post("/policies/guardrails/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/policies/"
    assert "Policy set “Guardrails” deleted." in messages_of(response)
    assert not PolicySet.objects.exists()
    assert not Rule.objects.exists()
    event = AuditEvent.objects.get(verb="policy_set.deleted")
    assert event.details["environments"] == ["prod"]
    assert len(event.details["rules"]) == 2
    assert Rule.history.filter(history_type="-").count() == 2


def test_creating_needs_add_policyset(client, other_user, scene):
    client.force_login(other_user)
    response = client.get("/policies/new/", follow=True)
    assert response.redirect_chain[-1][0] == "/policies/"
    assert "You may not create policy sets." in messages_of(response)
    data = editor_data([BRANCHES], slug="mine", name="Mine", all_environments="on")
    assert "You may not create policy sets." in messages_of(client.post("/policies/new/", data, follow=True))
    assert not PolicySet.objects.exists()


# --- Navigation and the environment's Policies tab ----------------------------------------------


def test_navigation_and_the_environment_tab_lead_to_the_sets(client, user, scene):
    make_set(environments=[scene["environments"]["prod"]])
    client.force_login(user)
    page = html(client.get("/policies/"))
    assert 'aria-current="page"\n             href="/policies/"' in page
    tab = html(client.get("/environments/prod/policies/"))
    assert 'href="/policies/guardrails/"' in tab
    assert 'aria-current="page"\n             href="/environments/"' in tab
    empty = html(client.get("/environments/staging/policies/"))
    assert 'data-testid="no-policies"' in empty
    assert 'href="/policies/new/"' in empty
