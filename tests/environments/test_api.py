"""The environments API of API.md: environments, targets, variables (secrets masked), lifecycles."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.environments.models import Environment, Lifecycle, Target, Variable
from tests.factories import (
    bearer_client,
    make_environment,
    make_lifecycle,
    make_target,
    make_team,
    make_user,
    make_variable,
    session_client,
)

ENVIRONMENTS = "/api/v1/environments/"
LIFECYCLES = "/api/v1/lifecycles/"


@pytest.fixture
def teams(db):
    paula = make_user("paula")
    return {"payments": make_team("payments", members=(paula,)), "storefront": make_team("storefront")}


@pytest.fixture
def root(db):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin(root):
    return session_client(root)


@pytest.fixture
def paula(teams):
    from apps.accounts.models import User

    return session_client(User.objects.get(username="paula"))


@pytest.fixture
def env(teams):
    return make_environment(teams["payments"], "payments-dev", name="Payments dev", labels={"team": "payments"})


# --- environments -------------------------------------------------------------------------------------


def test_create_environment(admin, teams, root):
    body = {
        "slug": "prod",
        "name": "Production",
        "tier": "production",
        "owner_team": "payments",
        "timezone": "Europe/Berlin",
        "labels": {"region": "eu-central"},
        "description": "Live",
        "requires_booking": True,
        "protected": True,
    }
    response = admin.post(ENVIRONMENTS, body)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert {k: created[k] for k in body} == body
    assert {"created_at", "updated_at"} <= set(created)
    event = AuditEvent.objects.get(verb="environment.created")
    assert (event.actor, event.channel) == (root, "api")
    assert Environment.objects.get().history.get().history_user == root


def test_create_defaults(admin, teams):
    created = admin.post(ENVIRONMENTS, {"slug": "dev", "name": "Dev", "owner_team": "payments"}).json()
    assert (created["tier"], created["timezone"], created["labels"]) == ("development", "UTC", {})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"slug": "with space"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"slug": "x" * 51}, "slug"),
        ({"name": ""}, "name"),
        ({"tier": "moon"}, "tier"),
        ({"owner_team": "nobody"}, "owner_team"),
        ({"owner_team": None}, "owner_team"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"labels": "team=payments"}, "labels"),
        ({"labels": ["team"]}, "labels"),
        ({"labels": {"team": 5}}, "labels"),
        ({"labels": {"team": None}}, "labels"),
        ({"requires_booking": "maybe"}, "requires_booking"),
    ],
)
def test_create_rejects_bad_input(admin, teams, overrides, field):
    body = {"slug": "dev", "name": "Dev", "owner_team": "payments", **overrides}
    response = admin.post(ENVIRONMENTS, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not Environment.objects.exists()


def test_duplicate_slug_is_409(admin, env):
    response = admin.post(ENVIRONMENTS, {"slug": "payments-dev", "name": "Again", "owner_team": "payments"})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_patch_environment(paula, env):
    response = paula.patch(f"{ENVIRONMENTS}payments-dev/", {"name": "Dev", "slug": "renamed", "tier": "test"})
    assert response.status_code == 200, response.json()
    assert (response.json()["slug"], response.json()["name"], response.json()["tier"]) == (
        "payments-dev",
        "Dev",
        "test",
    )
    assert AuditEvent.objects.get(verb="environment.updated").details == {
        "changes": {"name": ["Payments dev", "Dev"], "tier": ["development", "test"]}
    }
    assert paula.patch(f"{ENVIRONMENTS}payments-dev/", {"timezone": "nowhere"}).status_code == 400
    assert paula.patch(f"{ENVIRONMENTS}payments-dev/", {"labels": []}).status_code == 400
    assert paula.put(f"{ENVIRONMENTS}payments-dev/", {"name": "x"}).status_code == 405


def test_delete_environment(paula, env):
    make_target(env, "web-1")
    assert paula.delete(f"{ENVIRONMENTS}payments-dev/").status_code == 409
    Target.objects.all().delete()
    assert paula.delete(f"{ENVIRONMENTS}payments-dev/").status_code == 204
    assert paula.get(f"{ENVIRONMENTS}payments-dev/").status_code == 404
    assert AuditEvent.objects.filter(verb="environment.deleted").count() == 1


@pytest.fixture
def many(teams):
    payments, storefront = teams["payments"], teams["storefront"]
    make_environment(payments, "prod", name="Production", tier="production", labels={"team": "payments", "2024": "y"})
    make_environment(payments, "dev", name="Dev", tier="development", labels={"team": "payments", "region": "eu"})
    make_environment(storefront, "shop-test", name="Shop test", tier="test", labels={"team": "storefront"})
    make_environment(storefront, "shop-staging", name="Shop staging", tier="staging", requires_booking=True)
    make_environment(payments, "sandbox", name="Sandbox", tier="other", protected=True)


def slugs(client, query=None) -> list[str]:
    response = client.get(ENVIRONMENTS, query or {})
    assert response.status_code == 200, response.json()
    return [row["slug"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["dev", "shop-test", "shop-staging", "prod", "sandbox"]),  # tier order, then name
        ({"tier": "production"}, ["prod"]),
        ({"tier": "test"}, ["shop-test"]),
        ({"owner_team": "storefront"}, ["shop-test", "shop-staging"]),
        ({"label": "team:payments"}, ["dev", "prod"]),
        ({"label": "region:eu"}, ["dev"]),
        ({"label": "2024:y"}, ["prod"]),
        ({"label": "team:nobody"}, []),
        ({"search": "SHOP"}, ["shop-test", "shop-staging"]),
        ({"search": "sand"}, ["sandbox"]),
        ({"requires_booking": "true"}, ["shop-staging"]),
        ({"protected": "true"}, ["sandbox"]),
        ({"ordering": "name"}, ["dev", "prod", "sandbox", "shop-staging", "shop-test"]),
        ({"ordering": "-slug"}, ["shop-test", "shop-staging", "sandbox", "prod", "dev"]),
        ({"ordering": "-tier_position"}, ["sandbox", "prod", "shop-staging", "shop-test", "dev"]),
        ({"tier": "production", "label": "team:payments"}, ["prod"]),
    ],
)
def test_environment_filters_and_ordering(admin, many, query, expected):
    assert slugs(admin, query) == expected


@pytest.mark.parametrize(("name", "value"), [("tier", "moon"), ("label", "nocolon"), ("label", "a__b:c")])
def test_bad_filters_are_400(admin, many, name, value):
    response = admin.get(ENVIRONMENTS, {name: value})
    assert response.status_code == 400
    assert name in response.json()["fields"]


def test_pagination(admin, many):
    first = admin.get(ENVIRONMENTS, {"page_size": 2}).json()
    assert (first["count"], len(first["results"]), first["previous"]) == (5, 2, None)
    assert "page=2" in first["next"]


# --- targets ---------------------------------------------------------------------------------------------


def test_target_crud(paula, env):
    url = f"{ENVIRONMENTS}payments-dev/targets/"
    body = {
        "name": "web-1",
        "address": "10.0.0.5",
        "slot": "blue",
        "labels": {"zone": "a"},
        "health_check_url": "http://10.0.0.5:8080/healthz",
        "path": "/srv/app",
        "attributes": {"port": 8080, "weight": 1.5, "canary": False, "dc": "fra", "big": 10**20},
    }
    created = paula.post(url, body)
    assert created.status_code == 201, created.json()
    assert {k: created.json()[k] for k in body} == body
    target_id = created.json()["id"]
    assert paula.post(url, body).status_code == 409
    assert [t["name"] for t in paula.get(url).json()["results"]] == ["web-1"]
    assert paula.get(url, {"slot": "green"}).json()["count"] == 0
    patched = paula.patch(f"{url}{target_id}/", {"address": "10.0.0.6"})
    assert (patched.status_code, patched.json()["address"]) == (200, "10.0.0.6")
    assert paula.delete(f"{url}{target_id}/").status_code == 204
    assert paula.get(f"{url}{target_id}/").status_code == 404
    assert [e.verb for e in AuditEvent.objects.filter(object_type="environments.target").order_by("id")] == [
        "target.created",
        "target.updated",
        "target.deleted",
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "web 1"}, "name"),
        ({"address": ""}, "address"),
        ({"slot": "purple"}, "slot"),
        ({"health_check_url": "localhost"}, "health_check_url"),
        ({"attributes": []}, "attributes"),
        ({"attributes": {"port": [8080]}}, "attributes"),
        ({"attributes": {"9lives": 1}}, "attributes"),
        ({"labels": {"zone": 1}}, "labels"),
    ],
)
def test_target_bad_input(paula, env, overrides, field):
    response = paula.post(f"{ENVIRONMENTS}payments-dev/targets/", {"name": "web-1", "address": "x", **overrides})
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not Target.objects.exists()


def test_targets_of_an_unknown_environment_are_404(paula, env):
    assert paula.get(f"{ENVIRONMENTS}nowhere/targets/").status_code == 404
    assert paula.post(f"{ENVIRONMENTS}nowhere/targets/", {"name": "a", "address": "b"}).status_code == 404


# --- variables -------------------------------------------------------------------------------------------


def test_variable_crud_and_masking(paula, env):
    url = f"{ENVIRONMENTS}payments-dev/variables/"
    make_target(env, "web-1")
    plain = paula.post(url, {"name": "LOG_LEVEL", "value": "info"})
    secret = paula.post(url, {"name": "DB_PASSWORD", "value": "hunter2", "secret": True})
    override = paula.post(url, {"name": "LOG_LEVEL", "value": "debug", "target": "web-1"})
    assert (plain.status_code, secret.status_code, override.status_code) == (201, 201, 201)
    assert (plain.json()["value"], plain.json()["target"]) == ("info", None)
    assert (secret.json()["value"], secret.json()["secret"]) == (None, True)
    assert (override.json()["value"], override.json()["target"]) == ("debug", "web-1")
    rows = paula.get(url).json()["results"]
    # environment-wide first, then overrides (by target)
    assert [(r["name"], r["target"], r["value"]) for r in rows] == [
        ("DB_PASSWORD", None, None),
        ("LOG_LEVEL", None, "info"),
        ("LOG_LEVEL", "web-1", "debug"),
    ]
    assert paula.get(url, {"secret": "true"}).json()["count"] == 1
    assert "hunter2" not in str(rows)

    secret_id = secret.json()["id"]
    changed = paula.patch(f"{url}{secret_id}/", {"value": "hunter3"})
    assert (changed.status_code, changed.json()["value"]) == (200, None)
    refused = paula.patch(f"{url}{secret_id}/", {"secret": False})
    assert refused.status_code == 400
    assert "value" in refused.json()["fields"]
    revealed = paula.patch(f"{url}{secret_id}/", {"secret": False, "value": "public now"})
    assert revealed.json() | {"updated_at": None} == revealed.json() | {
        "value": "public now",
        "secret": False,
        "updated_at": None,
    }
    assert paula.delete(f"{url}{secret_id}/").status_code == 204
    assert Variable.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "1BAD", "value": "x"}, 400, "name"),
        ({"name": "with-dash", "value": "x"}, 400, "name"),
        ({"name": "OK"}, 400, "value"),
        ({"name": "OK", "value": "x", "target": "no-such-target"}, 400, "target"),
        ({"name": "OK", "value": "x", "secret": "perhaps"}, 400, "secret"),
        ({"name": "OK", "value": "x" * 65537}, 400, "value"),
        ({"name": "TAKEN", "value": "again"}, 409, None),
    ],
)
def test_variable_bad_input(paula, env, body, status, field):
    make_variable(env, "TAKEN", "x")
    response = paula.post(f"{ENVIRONMENTS}payments-dev/variables/", body)
    assert response.status_code == status, response.json()
    if field:
        assert field in response.json()["fields"]
    assert Variable.objects.count() == 1


def test_variable_override_for_a_target_of_another_environment_is_400(paula, env, teams):
    make_target(make_environment(teams["payments"], "other"), "elsewhere")
    response = paula.post(f"{ENVIRONMENTS}payments-dev/variables/", {"name": "A", "value": "b", "target": "elsewhere"})
    assert response.status_code == 400
    assert "target" in response.json()["fields"]


def test_value_whitespace_is_kept(paula, env):
    created = paula.post(f"{ENVIRONMENTS}payments-dev/variables/", {"name": "PAD", "value": "  spaced  "}).json()
    assert created["value"] == "  spaced  "


# --- lifecycles ------------------------------------------------------------------------------------------


def test_lifecycle_crud(admin, env, teams):
    make_environment(teams["payments"], "staging", tier="staging")
    body = {
        "slug": "main",
        "name": "Main",
        "description": "",
        "stages": [
            {"name": "dev", "automatic": True, "environments": ["payments-dev"]},
            {"name": "staging", "automatic": False, "environments": ["staging"]},
        ],
    }
    created = admin.post(LIFECYCLES, body, format="json")
    assert created.status_code == 201, created.json()
    assert {k: created.json()[k] for k in body} == body
    patched = admin.patch(
        f"{LIFECYCLES}main/",
        {"name": "Main line", "stages": [{"name": "all", "environments": ["payments-dev", "staging"]}]},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    assert [s["name"] for s in patched.json()["stages"]] == ["all"]
    assert (
        admin.patch(f"{LIFECYCLES}main/", {"description": "only this"}, format="json").json()["stages"][0]["name"]
        == "all"
    )
    assert admin.get(LIFECYCLES, {"slug": "main"}).json()["count"] == 1
    assert admin.delete(f"{LIFECYCLES}main/").status_code == 204
    assert not Lifecycle.objects.exists()


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ([], "stages"),
        ([{"name": "dev", "environments": []}], "stages.0.environments"),
        ([{"name": "dev", "environments": ["nowhere"]}], "stages.0.environments"),
        (
            [{"name": "a", "environments": ["payments-dev"]}, {"name": "b", "environments": ["payments-dev"]}],
            "stages.1.environments",
        ),
        ([{"environments": ["payments-dev"]}], "stages.0.name"),
        ("dev", "stages"),
    ],
)
def test_lifecycle_bad_stages(admin, env, stages, field):
    response = admin.post(LIFECYCLES, {"slug": "main", "name": "Main", "stages": stages}, format="json")
    assert response.status_code == 400, response.json()
    fields = response.json()["fields"]
    assert any(key == field or key.startswith(f"{field}.") for key in fields), fields
    assert not Lifecycle.objects.exists()


def test_lifecycle_duplicate_is_409(admin, env):
    make_lifecycle([[env]], slug="main")
    response = admin.post(
        LIFECYCLES,
        {"slug": "main", "name": "x", "stages": [{"name": "a", "environments": ["payments-dev"]}]},
        format="json",
    )
    assert response.status_code == 409


def test_token_needs_config_write_to_change_environments(teams, env):
    from apps.accounts.models import User

    paula = User.objects.get(username="paula")
    reader = bearer_client(paula, scopes=("read",))
    writer = bearer_client(paula, scopes=("config:write",))
    assert reader.get(f"{ENVIRONMENTS}payments-dev/").status_code == 200
    assert reader.patch(f"{ENVIRONMENTS}payments-dev/", {"name": "x"}).status_code == 403
    assert writer.patch(f"{ENVIRONMENTS}payments-dev/", {"name": "x"}).status_code == 200
    assert writer.get(f"{ENVIRONMENTS}payments-dev/").status_code == 403  # reading needs `read`
    event = AuditEvent.objects.get(verb="environment.updated")
    assert event.token_prefix
    assert event.actor == paula


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (ENVIRONMENTS, {"slug": "x", "name": "x", "owner_team": "pay\x00ments"}, "owner_team"),
        (f"{ENVIRONMENTS}payments-dev/", {"owner_team": "\x00"}, "owner_team"),
        (LIFECYCLES, {"slug": "x", "name": "x", "stages": [{"name": "a", "environments": ["dev\x00"]}]}, "stages"),
        (f"{ENVIRONMENTS}payments-dev/variables/", {"name": "A", "value": "b", "target": "web\x00"}, "target"),
        (f"{ENVIRONMENTS}payments-dev/variables/", {"name": "A", "value": "b\x00"}, "value"),
        (f"{ENVIRONMENTS}payments-dev/targets/", {"name": "a", "address": "b\x00"}, "address"),
        (f"{ENVIRONMENTS}payments-dev/targets/", {"name": "a", "address": "b", "labels": {"k": "\x00"}}, "labels"),
        (
            f"{ENVIRONMENTS}payments-dev/targets/",
            {"name": "a", "address": "b", "attributes": {"k": "\x00"}},
            "attributes",
        ),
        (f"{ENVIRONMENTS}payments-dev/", {"labels": {"team": "pay\x00"}}, "labels"),
    ],
)
def test_nul_characters_are_400_not_500(admin, env, url, body, field):
    """PostgreSQL refuses NUL in text, also in the lookups of referenced objects."""
    method = admin.patch if url.endswith("payments-dev/") else admin.post
    response = method(url, body, format="json")
    assert response.status_code == 400, response.content
    assert any(key == field or key.startswith(f"{field}.") for key in response.json()["fields"])


@pytest.mark.parametrize("query", [{"label": "team:\x00"}, {"owner_team": "\x00"}, {"search": "a\x00"}])
def test_nul_characters_in_filters_are_400(admin, env, query):
    assert admin.get(ENVIRONMENTS, query).status_code == 400
