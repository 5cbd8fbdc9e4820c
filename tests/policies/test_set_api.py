"""Changing and deleting policy sets through the API: PATCH replaces rules in place (each rule keeps its history),
both need the global permission and `manage` on every environment the set is attached to, before and after."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from apps.audit.models import AuditEvent
from apps.environments.services import environment_grant
from apps.policies.models import PolicySet, Rule
from apps.policies.services import policy_set_create
from tests.factories import bearer_client, make_environment, make_team, make_user

pytestmark = pytest.mark.django_db

RULES = [
    {"kind": "allowed_strategies", "params": {"strategies": ["canary", "blue_green"]}},
    {"kind": "allowed_branches", "params": {"patterns": ["main", "release/*"]}, "overridable": False},
]
WRITE = ("read", "config:write")


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="policies", codename__in=codenames))


@pytest.fixture
def scene():
    """Platform (admin: every policy set permission) manages prod and staging; Payments (member: the same
    permissions) manages lab and only views prod. `reader` is in Platform without any policy set permission."""
    admin, member, reader = make_user(), make_user(), make_user()
    platform = make_team(members=(admin, reader))
    payments = make_team(members=(member,))
    prod = make_environment(platform, "prod", tier="production")
    staging = make_environment(platform, "staging", tier="staging")
    lab = make_environment(payments, "lab", tier="test")
    environment_grant(actor=None, environment=prod, team=payments, action="view")
    for user in (admin, member):
        grant(user, "add_policyset", "change_policyset", "delete_policyset")
    policy_set = policy_set_create(actor=None, slug="prod-rules", name="Prod rules", environments=[prod], rules=RULES)
    return {
        "admin": bearer_client(admin, scopes=WRITE),
        "member": bearer_client(member, scopes=WRITE),
        "reader": bearer_client(reader, scopes=WRITE),
        "admin_user": admin,
        "environments": {"prod": prod, "staging": staging, "lab": lab},
        "set": policy_set,
    }


URL = "/api/v1/policy-sets/prod-rules/"


def test_patch_changes_fields_and_replaces_rules_in_place(scene):
    first, second = scene["set"].rules.all()
    body = {
        "name": "Production rules",
        "environments": ["prod", "staging"],
        "tiers": ["production"],
        "active": False,
        "rules": [{"kind": "allowed_strategies", "params": {"strategies": ["canary"]}, "two_person": True}],
    }
    response = scene["admin"].patch(URL, body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["name"], data["environments"], data["tiers"], data["active"]) == (
        "Production rules",
        ["prod", "staging"],
        ["production"],
        False,
    )
    assert [(r["id"], r["position"], r["params"], r["two_person"]) for r in data["rules"]] == [
        (first.pk, 0, {"strategies": ["canary"]}, True)
    ]
    assert not Rule.objects.filter(pk=second.pk).exists()
    assert [h.params for h in Rule.history.filter(id=first.pk).order_by("history_date")] == [
        {"strategies": ["canary", "blue_green"]},
        {"strategies": ["canary"]},
    ]
    assert Rule.history.filter(id=second.pk, history_type="-").exists()

    event = AuditEvent.objects.get(verb="policy_set.updated")
    assert event.actor == scene["admin_user"]
    assert event.channel == "api"
    changes = event.details["changes"]
    assert changes["name"] == ["Prod rules", "Production rules"]
    assert changes["active"] == [True, False]
    assert changes["tiers"] == [[], ["production"]]
    assert changes["environments"] == [["prod"], ["prod", "staging"]]
    assert [rule["kind"] for rule in changes["rules"][0]] == ["allowed_strategies", "allowed_branches"]
    assert changes["rules"][1] == [
        {"kind": "allowed_strategies", "params": {"strategies": ["canary"]}, "overridable": True, "two_person": True}
    ]


def test_a_patch_that_changes_nothing_records_nothing(scene):
    assert scene["admin"].patch(URL, {"name": "Prod rules", "rules": RULES}, format="json").status_code == 200
    assert not AuditEvent.objects.filter(verb="policy_set.updated").exists()
    assert Rule.history.filter(policy_set_id=scene["set"].pk, history_type="~").count() == 0


def test_patch_validates_like_create(scene):
    bad = [RULES[0], {"kind": "max_concurrent", "params": {"environments": ["prod"], "max": 0}}]
    refused = scene["admin"].patch(URL, {"rules": bad}, format="json")
    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"rules[1].params.max"}
    assert scene["admin"].patch(URL, {"rules": []}, format="json").json()["fields"] == {
        "rules": ["A list of at least one rule."]
    }
    assert scene["admin"].patch(URL, {"rules": [{"params": {}}]}, format="json").status_code == 400
    nowhere = scene["admin"].patch(URL, {"environments": []}, format="json")
    assert nowhere.json()["fields"] == {"environments": ["Attach it to environments, tiers or all environments."]}
    assert scene["admin"].patch(URL, {"environments": [], "all_environments": True}, format="json").status_code == 200
    assert scene["admin"].patch(URL, {"tiers": ["moon"]}, format="json").status_code == 400
    assert PolicySet.objects.get(slug="prod-rules").rules.count() == 2


def test_patch_needs_change_policyset(scene):
    response = scene["reader"].patch(URL, {"name": "Mine"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "You may not change policy sets; ask an administrator."
    assert scene["reader"].delete(URL).status_code == 403
    assert PolicySet.objects.get(slug="prod-rules").name == "Prod rules"


def test_patch_needs_manage_on_the_environments_it_had_and_gets(scene):
    member = scene["member"]  # manages lab, only views prod
    had = member.patch(URL, {"environments": ["lab"]}, format="json")
    assert had.status_code == 403
    assert had.json()["detail"] == "You may not manage environment Prod."

    body = {"slug": "lab-rules", "name": "Lab", "environments": ["lab"], "rules": RULES}
    assert member.post("/api/v1/policy-sets/", body, format="json").status_code == 201
    lab_set = "/api/v1/policy-sets/lab-rules/"
    gets = member.patch(lab_set, {"environments": ["lab", "prod"]}, format="json")
    assert gets.status_code == 403
    assert gets.json()["detail"] == "You may not manage environment Prod."
    assert [e.slug for e in PolicySet.objects.get(slug="lab-rules").environments.all()] == ["lab"]
    assert member.patch(lab_set, {"environments": ["lab"], "tiers": ["test"]}, format="json").status_code == 200
    assert [e.summary for e in AuditEvent.objects.filter(verb="policy_set.updated")] == ["Lab"]


def test_a_read_token_may_not_write(scene):
    reader = bearer_client(scene["admin_user"], scopes=("read",))
    assert reader.patch(URL, {"name": "x"}, format="json").status_code == 403
    assert reader.delete(URL).status_code == 403


def test_delete_removes_the_set_and_its_rules_with_an_audit_event(scene):
    rule_ids = list(scene["set"].rules.values_list("pk", flat=True))
    assert scene["member"].delete(URL).status_code == 403  # does not manage prod
    response = scene["admin"].delete(URL)
    assert response.status_code == 204
    assert not PolicySet.objects.filter(slug="prod-rules").exists()
    assert not Rule.objects.filter(pk__in=rule_ids).exists()
    assert Rule.history.filter(id__in=rule_ids, history_type="-").count() == 2
    event = AuditEvent.objects.get(verb="policy_set.deleted")
    assert event.details["slug"] == "prod-rules"
    assert event.details["environments"] == ["prod"]
    assert [rule["kind"] for rule in event.details["rules"]] == ["allowed_strategies", "allowed_branches"]
    assert scene["admin"].get(URL).status_code == 404


def test_a_set_one_may_not_see_is_a_404(scene):
    someone = make_user()
    grant(someone, "change_policyset", "delete_policyset")
    stranger = bearer_client(someone, scopes=WRITE)
    assert stranger.patch(URL, {"name": "x"}, format="json").status_code == 404
    assert stranger.delete(URL).status_code == 404
    assert PolicySet.objects.filter(slug="prod-rules").exists()


def test_the_slug_cannot_change(scene):
    response = scene["admin"].patch(URL, {"slug": "renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["slug"] == "prod-rules"


def test_schema_documents_patch_and_delete(scene):
    schema = scene["admin"].get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/api/v1/policy-sets/{slug}/"]
    assert {"get", "patch", "delete"} <= set(operations)
    assert "put" not in operations
    body = operations["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("PatchedPolicySetUpdateRequest")
