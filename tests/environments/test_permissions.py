"""Who may do what, over every environment and catalog endpoint (and their pages, where they exist).

The world (tests.factories.build_world): payments (paula) and storefront (steve) each own
environments and applications; storefront may view payments' objects, payments sees
nothing of storefront's. stella is staff without permissions, root a superuser, `token`
is paula's API token with the `read` and `artifacts:write` scopes.

DESIGN.md §4: a caller never sees (404, not 403) an object they cannot view; 403 is for
objects they may view but not change. API.md: no credentials is 401. Every refused
request leaves nothing behind (no audit event); every accepted write records one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.core.context import Channel, acting
from apps.core.errors import Conflict
from tests.factories import (
    bearer_client,
    build_world,
    make_application,
    make_environment,
    make_lifecycle,
    make_target,
    make_team,
    make_user,
    make_variable,
    register,
    session_client,
)

API = "/api/v1"
CLIENTS = ("anon", "paula", "steve", "stella", "root", "token")


def expect(anon=401, paula=200, steve=200, stella=200, root=200, token=200) -> dict[str, int]:
    return {"anon": anon, "paula": paula, "steve": steve, "stella": stella, "root": root, "token": token}


# Reading: everyone signed in, or only who may view the object.
EVERYONE = expect()
VIEW_PAYMENTS = expect()  # storefront was granted `view` on payments' objects; staff see everything
VIEW_STOREFRONT = expect(paula=404, token=404)


def manage_payments(ok: int) -> dict[str, int]:
    """Needs `manage` on a payments object: steve and stella may see it, so they get 403."""
    return expect(paula=ok, steve=403, stella=403, root=ok, token=403)  # token: no config:write scope


def manage_storefront(ok: int) -> dict[str, int]:
    """Needs `manage` on a storefront object, which paula cannot even see: 404 for her."""
    return expect(paula=404, steve=ok, stella=403, root=ok, token=403)


def global_permission(ok: int) -> dict[str, int]:
    """Needs a global permission (add_environment, change_lifecycle...): only the superuser holds one here."""
    return expect(paula=403, steve=403, stella=403, root=ok, token=403)


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    expected: dict[str, int]
    body: Any = None


ENV_P, ENV_S = f"{API}/environments/payments-dev", f"{API}/environments/storefront-dev"
NEW_TARGET = {"name": "web-9", "address": "10.9.9.9"}
NEW_VARIABLE = {"name": "NEW_VAR", "value": "x"}
NEW_LIFECYCLE = {
    "slug": "fresh",
    "name": "Fresh",
    "stages": [{"name": "dev", "environments": ["payments-dev"]}],
}


def new_artifact(app: str) -> dict:
    return {"application": app, "version": "2.0.0", "digest": "sha256:" + "ab" * 32, "uri": "https://x.example/a.tgz"}


CASES = [
    # --- environments
    Case("environments-list", "get", f"{API}/environments/", EVERYONE),
    Case(
        "environments-create",
        "post",
        f"{API}/environments/",
        global_permission(201),
        {"slug": "new-env", "name": "New", "owner_team": "payments"},
    ),
    Case("environment-detail-payments", "get", f"{ENV_P}/", VIEW_PAYMENTS),
    Case("environment-detail-storefront", "get", f"{ENV_S}/", VIEW_STOREFRONT),
    Case("environment-patch-payments", "patch", f"{ENV_P}/", manage_payments(200), {"description": "changed"}),
    Case("environment-patch-storefront", "patch", f"{ENV_S}/", manage_storefront(200), {"description": "changed"}),
    Case("environment-delete-payments", "delete", f"{API}/environments/payments-spare/", manage_payments(204)),
    Case("environment-delete-storefront", "delete", f"{API}/environments/storefront-spare/", manage_storefront(204)),
    Case("environment-unknown", "get", f"{API}/environments/nowhere/", expect(401, 404, 404, 404, 404, 404)),
    # --- targets
    Case("targets-list-payments", "get", f"{ENV_P}/targets/", VIEW_PAYMENTS),
    Case("targets-list-storefront", "get", f"{ENV_S}/targets/", VIEW_STOREFRONT),
    Case("target-create-payments", "post", f"{ENV_P}/targets/", manage_payments(201), NEW_TARGET),
    Case("target-create-storefront", "post", f"{ENV_S}/targets/", manage_storefront(201), NEW_TARGET),
    Case("target-detail-payments", "get", f"{ENV_P}/targets/{{payments_target}}/", VIEW_PAYMENTS),
    Case("target-detail-storefront", "get", f"{ENV_S}/targets/{{storefront_target}}/", VIEW_STOREFRONT),
    # A storefront target addressed through a payments URL is not there, for anybody.
    Case(
        "target-detail-crossed", "get", f"{ENV_P}/targets/{{storefront_target}}/", expect(401, 404, 404, 404, 404, 404)
    ),
    Case(
        "target-patch-payments",
        "patch",
        f"{ENV_P}/targets/{{payments_target}}/",
        manage_payments(200),
        {"address": "10.0.0.2"},
    ),
    Case(
        "target-patch-storefront",
        "patch",
        f"{ENV_S}/targets/{{storefront_target}}/",
        manage_storefront(200),
        {"address": "10.0.0.2"},
    ),
    Case("target-delete-payments", "delete", f"{ENV_P}/targets/{{payments_target}}/", manage_payments(204)),
    Case("target-delete-storefront", "delete", f"{ENV_S}/targets/{{storefront_target}}/", manage_storefront(204)),
    # --- variables
    Case("variables-list-payments", "get", f"{ENV_P}/variables/", VIEW_PAYMENTS),
    Case("variables-list-storefront", "get", f"{ENV_S}/variables/", VIEW_STOREFRONT),
    Case("variable-create-payments", "post", f"{ENV_P}/variables/", manage_payments(201), NEW_VARIABLE),
    Case("variable-create-storefront", "post", f"{ENV_S}/variables/", manage_storefront(201), NEW_VARIABLE),
    Case("variable-detail-payments", "get", f"{ENV_P}/variables/{{payments_variable}}/", VIEW_PAYMENTS),
    Case("variable-detail-storefront", "get", f"{ENV_S}/variables/{{storefront_variable}}/", VIEW_STOREFRONT),
    Case(
        "variable-patch-payments",
        "patch",
        f"{ENV_P}/variables/{{payments_variable}}/",
        manage_payments(200),
        {"value": "debug"},
    ),
    Case(
        "variable-patch-storefront",
        "patch",
        f"{ENV_S}/variables/{{storefront_variable}}/",
        manage_storefront(200),
        {"value": "debug"},
    ),
    Case("variable-delete-payments", "delete", f"{ENV_P}/variables/{{payments_variable}}/", manage_payments(204)),
    Case("variable-delete-storefront", "delete", f"{ENV_S}/variables/{{storefront_variable}}/", manage_storefront(204)),
    # --- lifecycles: global objects, every signed-in person reads them, staff-level permissions change them
    Case("lifecycles-list", "get", f"{API}/lifecycles/", EVERYONE),
    Case("lifecycle-create", "post", f"{API}/lifecycles/", global_permission(201), NEW_LIFECYCLE),
    Case("lifecycle-detail", "get", f"{API}/lifecycles/main/", EVERYONE),
    Case("lifecycle-patch", "patch", f"{API}/lifecycles/main/", global_permission(200), {"description": "changed"}),
    Case("lifecycle-delete", "delete", f"{API}/lifecycles/spare/", global_permission(204)),
    # --- applications
    Case("applications-list", "get", f"{API}/applications/", EVERYONE),
    Case(
        "application-create",
        "post",
        f"{API}/applications/",
        global_permission(201),
        {"slug": "new-app", "name": "New", "owner_team": "payments"},
    ),
    Case("application-detail-payments", "get", f"{API}/applications/payments-app/", VIEW_PAYMENTS),
    Case("application-detail-storefront", "get", f"{API}/applications/storefront-app/", VIEW_STOREFRONT),
    Case(
        "application-patch-payments",
        "patch",
        f"{API}/applications/payments-app/",
        manage_payments(200),
        {"description": "changed"},
    ),
    Case(
        "application-patch-storefront",
        "patch",
        f"{API}/applications/storefront-app/",
        manage_storefront(200),
        {"description": "changed"},
    ),
    Case("application-delete-payments", "delete", f"{API}/applications/payments-lib/", manage_payments(204)),
    Case("application-delete-storefront", "delete", f"{API}/applications/storefront-lib/", manage_storefront(204)),
    # --- artifacts: registering needs `register` (and the token's artifacts:write scope); an application the
    # caller cannot see is an unknown one (400, API.md), whoever owns it.
    Case("artifacts-list", "get", f"{API}/artifacts/", EVERYONE),
    Case(
        "artifact-register-payments",
        "post",
        f"{API}/artifacts/",
        expect(paula=201, steve=403, stella=403, root=201, token=201),
        new_artifact("payments-app"),
    ),
    Case(
        "artifact-register-storefront",
        "post",
        f"{API}/artifacts/",
        expect(paula=400, steve=201, stella=403, root=201, token=400),
        new_artifact("storefront-app"),
    ),
    Case("artifact-detail-payments", "get", f"{API}/artifacts/{{payments_artifact}}/", VIEW_PAYMENTS),
    Case("artifact-detail-storefront", "get", f"{API}/artifacts/{{storefront_artifact}}/", VIEW_STOREFRONT),
    # Artifacts are immutable.
    Case(
        "artifact-patch",
        "patch",
        f"{API}/artifacts/{{payments_artifact}}/",
        expect(401, 405, 405, 405, 405, 405),
        {"version": "9.9.9"},
    ),
    Case("artifact-delete", "delete", f"{API}/artifacts/{{payments_artifact}}/", expect(401, 405, 405, 405, 405, 405)),
]


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def clients(world) -> dict[str, APIClient]:
    clients = {
        "anon": APIClient(),
        "paula": session_client(world.paula),
        "steve": session_client(world.steve),
        "stella": session_client(world.stella),
        "root": session_client(world.root),
        "token": bearer_client(world.paula, scopes=("read", "artifacts:write")),
    }
    clients["token"].get(f"{API}/environments/")  # the token's first use is audited (token.used): not part of a case
    return clients


def path_ids(world) -> dict[str, int]:
    return {
        "payments_target": world.targets["payments"].pk,
        "storefront_target": world.targets["storefront"].pk,
        "payments_variable": world.variables["payments"].pk,
        "storefront_variable": world.variables["storefront"].pk,
        "payments_artifact": world.artifacts["payments"].pk,
        "storefront_artifact": world.artifacts["storefront"].pk,
    }


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_api_permission_matrix(world, clients, case):
    """Each caller in turn, each in a savepoint rolled back afterwards, so all start from the same world."""
    path = case.path.format(**path_ids(world))
    outcome, problems = {}, []
    for who in CLIENTS:
        before = last_event_id()
        with transaction.atomic():
            client = clients[who]
            if case.method in ("get", "delete"):
                response = getattr(client, case.method)(path)
            else:
                response = getattr(client, case.method)(path, case.body, format="json")
            outcome[who] = response.status_code
            if response.status_code >= 500:
                problems.append(f"{who}: {response.status_code}")
            elif response.status_code >= 400:
                body = response.json()
                if set(body) - {"error", "detail", "fields"} or not body.get("error"):
                    problems.append(f"{who}: error body {body}")
            new_events = list(AuditEvent.objects.filter(id__gt=before).values_list("verb", flat=True))
            if response.status_code >= 400 and new_events:
                problems.append(f"{who}: a refused request left audit events {new_events}")
            if case.method != "get" and response.status_code < 300 and not new_events:
                problems.append(f"{who}: {case.method} {response.status_code} wrote no audit event")
            transaction.set_rollback(True)
    assert outcome == case.expected
    assert not problems


def test_anonymous_401_says_how_to_authenticate(world):
    response = APIClient().get(f"{API}/environments/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


LIST_CONTENTS = {
    # what each caller sees in each list (the token sees what paula sees)
    "environments": (
        f"{API}/environments/",
        "slug",
        {
            "paula": {"payments-dev", "payments-spare"},
            "steve": {"payments-dev", "payments-spare", "storefront-dev", "storefront-spare"},
            "stella": {"payments-dev", "payments-spare", "storefront-dev", "storefront-spare"},
            "root": {"payments-dev", "payments-spare", "storefront-dev", "storefront-spare"},
        },
    ),
    "applications": (
        f"{API}/applications/",
        "slug",
        {
            "paula": {"payments-app", "payments-lib"},
            "steve": {"payments-app", "payments-lib", "storefront-app", "storefront-lib"},
            "stella": {"payments-app", "payments-lib", "storefront-app", "storefront-lib"},
            "root": {"payments-app", "payments-lib", "storefront-app", "storefront-lib"},
        },
    ),
    "artifacts": (
        f"{API}/artifacts/",
        "application",
        {
            "paula": {"payments-app"},
            "steve": {"payments-app", "storefront-app"},
            "stella": {"payments-app", "storefront-app"},
            "root": {"payments-app", "storefront-app"},
        },
    ),
}


@pytest.mark.parametrize("kind", LIST_CONTENTS)
def test_lists_show_only_what_the_caller_may_view(world, clients, kind):
    url, key, expected = LIST_CONTENTS[kind]
    expected = {**expected, "token": expected["paula"]}
    seen = {who: {row[key] for row in clients[who].get(url).json()["results"]} for who in expected}
    assert seen == expected


def test_lifecycle_stages_list_only_visible_environments(world, clients):
    def stage_environments(who):
        body = clients[who].get(f"{API}/lifecycles/main/").json()
        return [set(stage["environments"]) for stage in body["stages"]]

    assert stage_environments("paula") == [{"payments-dev"}]
    assert stage_environments("token") == [{"payments-dev"}]
    assert stage_environments("steve") == [{"payments-dev", "storefront-dev"}]
    assert stage_environments("root") == [{"payments-dev", "storefront-dev"}]


def test_nobody_reads_a_secret_value(world, clients):
    for who in ("paula", "steve", "stella", "root", "token"):
        rows = clients[who].get(f"{ENV_P}/variables/").json()["results"]
        secret = next(row for row in rows if row["name"] == "DB_PASSWORD")
        assert (secret["secret"], secret["value"]) == (True, None), who
        assert "payments-hunter2" not in str(rows)


def test_a_team_granted_manage_later_may_change_the_environment(world, clients):
    """Grants take effect at once: storefront gets `manage` on payments-dev and steve's 403 becomes 200."""
    from apps.environments.services import environment_grant, environment_revoke

    url = f"{ENV_P}/"
    assert clients["steve"].patch(url, {"description": "x"}, format="json").status_code == 403
    environment_grant(
        actor=world.paula, environment=world.environments["payments-dev"], team=world.storefront, action="manage"
    )
    assert clients["steve"].patch(url, {"description": "x"}, format="json").status_code == 200
    # `view` goes last: while storefront manages it, withdrawing view is refused.
    with pytest.raises(Conflict):
        environment_revoke(
            actor=world.paula, environment=world.environments["payments-dev"], team=world.storefront, action="view"
        )
    environment_revoke(
        actor=world.paula, environment=world.environments["payments-dev"], team=world.storefront, action="manage"
    )
    environment_revoke(
        actor=world.paula, environment=world.environments["payments-dev"], team=world.storefront, action="view"
    )
    assert clients["steve"].get(url).status_code == 404


def test_deactivated_member_loses_access(world, clients):
    world.paula.is_active = False
    world.paula.save()
    assert clients["paula"].get(f"{ENV_P}/").status_code == 401
    assert clients["token"].get(f"{ENV_P}/").status_code == 401


# --- pages ---------------------------------------------------------------------------------------------
# Pages follow the same rules with a browser's manners: anonymous visitors are sent to the login page,
# an object the user may not view is a 404, and a change the user may not make is refused with a message
# (a redirect) and leaves nothing behind. Outcomes per caller: ok, refused, hidden (404), login.

PAGE_CALLERS = ("anon", "paula", "steve", "stella", "root")


def outcomes(anon="login", paula="ok", steve="ok", stella="ok", root="ok") -> dict[str, str]:
    return {"anon": anon, "paula": paula, "steve": steve, "stella": stella, "root": root}


SEE_ALL = outcomes()
SEE_PAYMENTS = outcomes()
SEE_STOREFRONT = outcomes(paula="hidden")
MANAGE_PAYMENTS = outcomes(steve="refused", stella="refused")
MANAGE_STOREFRONT = outcomes(paula="hidden", stella="refused")
ADMIN_ONLY = outcomes(paula="refused", steve="refused", stella="refused")


@dataclass(frozen=True)
class Page:
    name: str
    kwargs: dict
    expected: dict[str, str]
    method: str = "get"
    body: dict | None = None

    @property
    def id(self) -> str:
        return f"{self.method}-{self.name}-{'-'.join(str(v) for v in self.kwargs.values())}"


P, S = {"slug": "payments-dev"}, {"slug": "storefront-dev"}
PA, SA = {"slug": "payments-app"}, {"slug": "storefront-app"}


def environment_form(team: str) -> dict:
    return {"name": "Changed", "tier": "test", "owner_team": team, "timezone": "UTC", "labels": "", "description": ""}


def application_form(team: str) -> dict:
    return {"name": "Changed", "owner_team": team, "repository_url": "", "description": "x"}


PAGES = [
    # environments: reading
    Page("environments:list", {}, SEE_ALL),
    Page("environments:detail", P, SEE_PAYMENTS),
    Page("environments:detail", S, SEE_STOREFRONT),
    Page("environments:history", P, SEE_PAYMENTS),
    Page("environments:history", S, SEE_STOREFRONT),
    Page("environments:access", P, SEE_PAYMENTS),
    Page("environments:access", S, SEE_STOREFRONT),
    # environments: forms (GET) and changes (POST)
    Page("environments:create", {}, ADMIN_ONLY),
    Page(
        "environments:create",
        {},
        ADMIN_ONLY,
        "post",
        {"slug": "new-env", **environment_form("payments")},
    ),
    Page("environments:edit", P, MANAGE_PAYMENTS),
    Page("environments:edit", S, MANAGE_STOREFRONT),
    Page("environments:edit", P, MANAGE_PAYMENTS, "post", environment_form("payments")),
    Page("environments:edit", S, MANAGE_STOREFRONT, "post", environment_form("storefront")),
    Page("environments:delete", {"slug": "payments-spare"}, MANAGE_PAYMENTS, "post"),
    Page("environments:delete", {"slug": "storefront-spare"}, MANAGE_STOREFRONT, "post"),
    Page("environments:access-grant", P, MANAGE_PAYMENTS, "post", {"team": "storefront", "action": "approve"}),
    Page("environments:access-grant", S, MANAGE_STOREFRONT, "post", {"team": "payments", "action": "view"}),
    Page("environments:access-revoke", P, MANAGE_PAYMENTS, "post", {"team": "storefront", "action": "view"}),
    Page("environments:access-revoke", S, MANAGE_STOREFRONT, "post", {"team": "storefront", "action": "deploy"}),
    Page("environments:target-create", P, MANAGE_PAYMENTS),
    Page("environments:target-create", S, MANAGE_STOREFRONT),
    Page(
        "environments:target-create",
        P,
        MANAGE_PAYMENTS,
        "post",
        {"name": "web-9", "address": "10.9.9.9", "slot": "none"},
    ),
    Page(
        "environments:target-create",
        S,
        MANAGE_STOREFRONT,
        "post",
        {"name": "web-9", "address": "10.9.9.9", "slot": "none"},
    ),
    Page("environments:target-edit", {**P, "pk": "{payments_target}"}, MANAGE_PAYMENTS),
    Page("environments:target-edit", {**S, "pk": "{storefront_target}"}, MANAGE_STOREFRONT),
    Page("environments:target-delete", {**P, "pk": "{payments_target}"}, MANAGE_PAYMENTS, "post"),
    Page("environments:target-delete", {**S, "pk": "{storefront_target}"}, MANAGE_STOREFRONT, "post"),
    Page("environments:variable-create", P, MANAGE_PAYMENTS),
    Page("environments:variable-create", S, MANAGE_STOREFRONT),
    Page("environments:variable-create", P, MANAGE_PAYMENTS, "post", {"name": "NEW_VAR", "value": "x"}),
    Page("environments:variable-create", S, MANAGE_STOREFRONT, "post", {"name": "NEW_VAR", "value": "x"}),
    Page("environments:variable-edit", {**P, "pk": "{payments_variable}"}, MANAGE_PAYMENTS),
    Page("environments:variable-edit", {**S, "pk": "{storefront_variable}"}, MANAGE_STOREFRONT),
    Page("environments:variable-edit", {**P, "pk": "{payments_variable}"}, MANAGE_PAYMENTS, "post", {"value": "debug"}),
    Page(
        "environments:variable-edit",
        {**S, "pk": "{storefront_variable}"},
        MANAGE_STOREFRONT,
        "post",
        {"value": "debug"},
    ),
    Page("environments:variable-delete", {**P, "pk": "{payments_variable}"}, MANAGE_PAYMENTS, "post"),
    Page("environments:variable-delete", {**S, "pk": "{storefront_variable}"}, MANAGE_STOREFRONT, "post"),
    # catalog
    Page("catalog:application-list", {}, SEE_ALL),
    Page("catalog:application-detail", PA, SEE_PAYMENTS),
    Page("catalog:application-detail", SA, SEE_STOREFRONT),
    Page("catalog:application-history", PA, SEE_PAYMENTS),
    Page("catalog:application-history", SA, SEE_STOREFRONT),
    Page("catalog:application-access", PA, SEE_PAYMENTS),
    Page("catalog:application-access", SA, SEE_STOREFRONT),
    Page("catalog:artifact-detail", {**PA, "version": "1.0.0"}, SEE_PAYMENTS),
    Page("catalog:artifact-detail", {**SA, "version": "1.0.0"}, SEE_STOREFRONT),
    Page("catalog:application-create", {}, ADMIN_ONLY),
    Page("catalog:application-create", {}, ADMIN_ONLY, "post", {"slug": "new-app", **application_form("payments")}),
    Page("catalog:application-edit", PA, MANAGE_PAYMENTS),
    Page("catalog:application-edit", SA, MANAGE_STOREFRONT),
    Page("catalog:application-edit", PA, MANAGE_PAYMENTS, "post", application_form("payments")),
    Page("catalog:application-edit", SA, MANAGE_STOREFRONT, "post", application_form("storefront")),
    Page("catalog:application-delete", {"slug": "payments-lib"}, MANAGE_PAYMENTS, "post"),
    Page("catalog:application-delete", {"slug": "storefront-lib"}, MANAGE_STOREFRONT, "post"),
    Page("catalog:application-access-grant", PA, MANAGE_PAYMENTS, "post", {"team": "storefront", "action": "register"}),
    Page("catalog:application-access-grant", SA, MANAGE_STOREFRONT, "post", {"team": "payments", "action": "view"}),
    Page("catalog:application-access-revoke", PA, MANAGE_PAYMENTS, "post", {"team": "storefront", "action": "view"}),
    Page(
        "catalog:application-access-revoke", SA, MANAGE_STOREFRONT, "post", {"team": "storefront", "action": "register"}
    ),
]


def page_outcome(response, method: str, wrote: bool) -> str:
    if response.status_code == 404:
        return "hidden"
    if response.status_code == 302 and response["Location"].startswith(reverse("accounts:login")):
        return "login"
    if method == "get":
        if response.status_code == 200:
            return "ok"
        return "refused" if response.status_code in (302, 403) else f"status {response.status_code}"
    if response.status_code in (200, 302, 303):
        return "ok" if wrote else "refused"
    return "refused" if response.status_code == 403 and not wrote else f"status {response.status_code}"


@pytest.mark.parametrize("page", PAGES, ids=[p.id for p in PAGES])
def test_page_permission_matrix(world, clients, page):
    ids = path_ids(world)
    kwargs = {
        k: int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v for k, v in page.kwargs.items()
    }
    try:
        url = reverse(page.name, kwargs=kwargs)
    except NoReverseMatch:
        pytest.skip(f"page {page.name} does not exist (yet)")
    outcome = {}
    for who in PAGE_CALLERS:
        before = last_event_id()
        with transaction.atomic():
            client = clients[who]
            response = (
                client.post(url, page.body or {}, format="multipart") if page.method == "post" else client.get(url)
            )
            wrote = AuditEvent.objects.filter(id__gt=before).exclude(verb="user.logged_in").exists()
            outcome[who] = page_outcome(response, page.method, wrote)
            if page.method == "get" or outcome[who] != "ok":
                assert not wrote or outcome[who] == "ok", f"{who}: {page.method} {url} wrote audit events"
            transaction.set_rollback(True)
    assert outcome == page.expected


# --- constant queries -----------------------------------------------------------------------------------


@pytest.fixture
def reader(db):
    """paula of payments, signed in, with an environment (base) and an application (base-app)."""
    paula = make_user("paula")
    team = make_team("payments", members=(paula,))
    environment = make_environment(team, "base", labels={"team": "payments"})
    override_target = make_target(environment, "base-1")
    application = make_application(team, "base-app")
    client = session_client(paula)
    return {
        "user": paula,
        "team": team,
        "environment": environment,
        "target": override_target,
        "application": application,
        "client": client,
    }


def _add_variable(r, i):
    kinds = [{}, {"secret": True}, {"target": r["target"]}]
    make_variable(r["environment"], f"VAR_{i}", f"value-{i}", **kinds[i % 3])


def _add_audit_event(r, i):
    with acting(channel=Channel.API, user=r["user"], ip="10.0.0.1"):
        audit_record(verb="test.done", object_type="test.thing", object_id=i, details={"i": i})


LISTS = {
    "environments": (f"{API}/environments/", lambda r, i: make_environment(r["team"], labels={"n": str(i)})),
    "targets": (f"{API}/environments/base/targets/", lambda r, i: make_target(r["environment"], labels={"n": "1"})),
    "variables": (f"{API}/environments/base/variables/", _add_variable),
    "lifecycles": (f"{API}/lifecycles/", lambda r, i: make_lifecycle([[r["environment"]]])),
    "applications": (f"{API}/applications/", lambda r, i: make_application(r["team"])),
    "artifacts": (
        f"{API}/artifacts/",
        lambda r, i: register(r["application"], f"1.{i}.0", by=r["user"], labels={"n": str(i)}),
    ),
    "audit-events": (f"{API}/audit-events/", _add_audit_event),
    "tokens": (f"{API}/tokens/", lambda r, i: token_create(user=r["user"], name=f"t{i}", scopes=["read"])),
}


# The pages that list the same rows (skipped where a page does not exist yet).
LIST_PAGES = {
    "environments": ("environments:list", {}),
    "targets": ("environments:detail", {"slug": "base"}),
    "variables": ("environments:detail", {"slug": "base"}),
    "lifecycles": ("environments:list", {}),
    "applications": ("catalog:application-list", {}),
    "artifacts": ("catalog:application-detail", {"slug": "base-app"}),
    "audit-events": ("audit:log", {}),
    "tokens": ("accounts:account", {}),
}


@pytest.mark.parametrize("kind", LISTS)
def test_lists_of_5_and_of_50_rows_run_the_same_queries(reader, kind):
    """The API list, and the page listing the same rows."""
    url, add = LISTS[kind]
    try:
        page = reverse(LIST_PAGES[kind][0], kwargs=LIST_PAGES[kind][1])
    except NoReverseMatch:
        page = None
    client = reader["client"]
    added = 0

    def queries_with(rows: int) -> tuple[int, int | None]:
        nonlocal added
        count = client.get(url).json()["count"]
        for _ in range(rows - count):
            add(reader, added)
            added += 1
        with CaptureQueriesContext(connection) as captured:
            body = client.get(url).json()
        assert body["count"] == len(body["results"]) == rows
        if page is None:
            return len(captured.captured_queries), None
        client.get(page)  # warm: what a page computes once per process (e.g. template loading) is not per row
        with CaptureQueriesContext(connection) as on_page:
            assert client.get(page).status_code == 200
        return len(captured.captured_queries), len(on_page.captured_queries)

    five, fifty = queries_with(5), queries_with(50)
    assert fifty[0] == five[0], f"{kind} API: {five[0]} queries for 5 rows, {fifty[0]} for 50"
    assert fifty[1] == five[1], f"{kind} page {page}: {five[1]} queries for 5 rows, {fifty[1]} for 50"
