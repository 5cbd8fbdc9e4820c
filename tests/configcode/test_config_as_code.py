"""Configuration as code: export → import into an empty database reproduces the configuration, a second import
changes nothing, a dry run changes nothing, errors name the file and path, permissions hold, secrets stay secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts.services import team_add_member
from apps.approvals.models import ApprovalPolicy
from apps.approvals.services import policy_set as approval_policy_set
from apps.audit.models import AuditEvent
from apps.configcode.export import config_export
from apps.configcode.services import config_import
from apps.core import crypto
from apps.core.context import Channel, acting
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.deployments.models import DeploymentTemplate, TemplateVersion
from apps.deployments.services import template_create, template_update
from apps.environments.models import Environment, Lifecycle, LifecycleStage, Target, Variable
from apps.environments.services import environment_grant
from apps.gitops.models import EnvironmentRepository
from apps.gitops.services import repository_set
from apps.policies.models import PolicySet, Rule
from apps.policies.services import policy_set_create, policy_set_update
from apps.scheduling.models import FreezeWindow
from apps.scheduling.services import freeze_create
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

SECRET = "s3cret-pl4intext"
HISTORY_MODELS = (
    Environment,
    Target,
    Variable,
    Lifecycle,
    LifecycleStage,
    DeploymentTemplate,
    TemplateVersion,
    ApprovalPolicy,
    PolicySet,
    Rule,
    FreezeWindow,
    EnvironmentRepository,
)


def history_rows() -> int:
    return sum(model.history.count() for model in HISTORY_MODELS)


@pytest.fixture
def config(db):
    """Two environments with targets, plain, secret and per-target variables; two templates (one with a second
    version), a lifecycle, an approval policy, an active and an inactive policy set, a recurring freeze."""
    ops, payments = make_team("ops"), make_team("payments")
    deploy = template_create(
        actor=None, slug="deploy", name="Deploy", steps=[{"name": "Install", "kind": "release_dir", "params": {}}]
    )
    template_update(
        actor=None, template=deploy, steps=[{"name": "Install", "kind": "release_dir", "params": {"keep": 3}}]
    )
    template_create(
        actor=None,
        slug="other",
        name="Other",
        description="Keeps five.",
        steps=[{"name": "Install", "kind": "release_dir", "params": {"keep": 5}}],
    )
    dev = make_environment(payments, "dev", tier="development", labels={"team": "payments", "zone": "a"})
    prod = make_environment(
        payments,
        "prod",
        name="Production",
        tier="production",
        timezone="Europe/Berlin",
        protected=True,
        requires_booking=True,
        booking_max_minutes=120,
        default_template=deploy,
        default_strategy="rolling",
        default_strategy_options={"batch_size": 2},
    )
    web1 = make_target(prod, "web-1", slot="blue", attributes={"port": 8080, "tls": True}, path="/srv/app")
    make_target(prod, "web-2", slot="green", health_check_url="https://web-2.example.com/health")
    make_target(dev, "dev-1")
    make_variable(prod, "LOG_LEVEL", "warning")
    make_variable(prod, "LOG_LEVEL", "debug", target=web1)
    make_variable(prod, "DB_PASSWORD", SECRET, secret=True)
    make_variable(dev, "LOG_LEVEL", "debug")
    make_lifecycle([[dev], [prod]], slug="main", name="Main")
    approval_policy_set(
        actor=None, environment=prod, required_approvals=2, eligible_teams=[ops], expires_after=timedelta(days=1)
    )
    policy_set_create(
        actor=None,
        slug="guard",
        name="Guard",
        environments=[prod],
        tiers=["production"],
        rules=[
            {"kind": "require_approvals", "params": {"min": 1, "teams": ["ops"]}},
            {"kind": "allowed_strategies", "params": {"strategies": ["rolling", "canary"]}, "two_person": True},
        ],
    )
    old = policy_set_create(
        actor=None, slug="old", name="Old", all_environments=True, rules=[{"kind": "no_freeze", "params": {}}]
    )
    policy_set_update(actor=None, policy_set=old, active=False)
    freeze_create(
        actor=None,
        title="Friday evenings",
        reason="Nobody is around.",
        starts_at=datetime(2030, 1, 4, 17, 0, tzinfo=UTC),
        ends_at=datetime(2030, 1, 4, 23, 0, tzinfo=UTC),
        environments=[prod],
        rrule="FREQ=WEEKLY;BYDAY=FR",
        timezone_name="Europe/Berlin",
    )
    return {"ops": ops, "payments": payments, "dev": dev, "prod": prod}


MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ release.application }}
spec:
  template:
    spec:
      containers:
        - name: app
          image: "{{ artifact.uri }}@{{ artifact.digest }}"  # {{ release.version }}
"""


@pytest.fixture
def pull_mode(config):
    """dev in pull mode: its repository opens pull requests on GitHub with a token in a secret variable."""
    make_variable(config["dev"], "GIT_TOKEN", "ghp-t0ken", secret=True)
    return repository_set(
        actor=None,
        environment=config["dev"],
        url="https://github.com/acme/environments.git",
        branch="live",
        path="dev/payments-api.yaml",
        manifest_template=MANIFEST,
        credential_variable="GIT_TOKEN",
        mode="pull_request",
        provider="github",
        sync_timeout=600,
    )


def wipe() -> None:
    """Delete the whole configuration (teams and users stay: they are not part of it)."""
    FreezeWindow.objects.all().delete()
    PolicySet.objects.all().delete()
    ApprovalPolicy.objects.all().delete()
    Lifecycle.objects.all().delete()
    Variable.objects.all().delete()
    Target.objects.all().delete()
    Environment.objects.all().delete()
    DeploymentTemplate.objects.all().delete()


def test_export_is_deterministic_and_complete(config):
    text = config_export()
    assert text == config_export()
    document = yaml.safe_load(text)
    assert document["version"] == 1
    assert [e["slug"] for e in document["environments"]] == ["dev", "prod"]
    prod = document["environments"][1]
    assert prod["owner_team"] == "payments"
    assert prod["default_template"] == "deploy"
    assert prod["default_strategy_options"] == {"batch_size": 2}
    assert [t["name"] for t in prod["targets"]] == ["web-1", "web-2"]
    assert prod["variables"] == [
        {"name": "DB_PASSWORD", "secret": True},
        {"name": "LOG_LEVEL", "value": "warning"},
        {"name": "LOG_LEVEL", "target": "web-1", "value": "debug"},
    ]
    assert document["templates"][0]["steps"] == [{"name": "Install", "kind": "release_dir", "params": {"keep": 3}}]
    assert document["lifecycles"][0]["stages"][1] == {"name": "stage 2", "automatic": False, "environments": ["prod"]}
    assert document["approval_policies"] == [
        {
            "environment": "prod",
            "required_approvals": 2,
            "eligible_teams": ["ops"],
            "expires_after_seconds": 86400,
            "rejection_rejects": True,
        }
    ]
    assert [(s["slug"], s["active"]) for s in document["policy_sets"]] == [("guard", True), ("old", False)]
    assert document["freezes"][0]["starts_at"] == "2030-01-04T17:00:00+00:00"


def test_secrets_never_appear_in_plaintext(config):
    assert SECRET not in config_export()
    with_secrets = config_export(include_secrets=True)
    assert SECRET not in with_secrets
    (secret,) = [v for v in yaml.safe_load(with_secrets)["environments"][1]["variables"] if v.get("secret")]
    assert secret["encrypted"] is True
    assert crypto.decrypt(secret["value"]) == SECRET


def test_export_then_import_into_an_empty_database_reproduces_it(config):
    before = config_export()
    text = config_export(include_secrets=True)
    wipe()
    assert not Environment.objects.exists()

    plan = config_import(actor=None, text=text, dry_run=False)

    assert plan.summary["create"] == len(plan.changes)
    assert config_export() == before
    stored = Variable.objects.get(name="DB_PASSWORD")
    assert crypto.decrypt(stored.value) == SECRET
    event = AuditEvent.objects.get(verb="config.imported")
    assert event.details["create"] == len(plan.changes)


def test_a_second_import_changes_nothing(config):
    text = config_export(include_secrets=True)
    rows, events = history_rows(), AuditEvent.objects.count()

    plan = config_import(actor=None, text=text, dry_run=False)

    assert {change.action for change in plan.changes} == {"unchanged"}
    assert not plan.changed
    assert history_rows() == rows
    assert AuditEvent.objects.count() == events
    # Without the secrets' values too: a secret the file names without a value stays as it is.
    assert not config_import(actor=None, text=config_export(), dry_run=False).changed


def test_a_dry_run_reports_the_changes_and_makes_none(config):
    document = yaml.safe_load(config_export())
    document["environments"][1]["targets"][0]["address"] = "10.0.0.9"
    document["environments"].append({"slug": "qa", "name": "QA", "owner_team": "ops", "tier": "test"})
    document["lifecycles"][0]["stages"].insert(1, {"name": "qa", "environments": ["qa"]})
    before, rows, events = config_export(), history_rows(), AuditEvent.objects.count()

    plan = config_import(actor=None, text=yaml.safe_dump(document), dry_run=True)

    changed = {(c.kind, c.key): c for c in plan.changes if c.action != "unchanged"}
    assert set(changed) == {("target", "prod/web-1"), ("environment", "qa"), ("lifecycle", "main")}
    assert changed["target", "prod/web-1"].fields == {"address": ["web-1.example.internal", "10.0.0.9"]}
    assert changed["environment", "qa"].action == "create"
    assert config_export() == before
    assert (history_rows(), AuditEvent.objects.count()) == (rows, events)

    config_import(actor=None, text=yaml.safe_dump(document), dry_run=False)
    assert Target.objects.get(name="web-1").address == "10.0.0.9"
    assert [s.name for s in Lifecycle.objects.get(slug="main").stages.order_by("position")] == [
        "stage 1",
        "qa",
        "stage 2",
    ]


def test_only_the_fields_in_the_file_change_and_nothing_is_deleted(config):
    text = "version: 1\nenvironments:\n- slug: prod\n  protected: false\n  variables:\n  - name: NEW\n    value: x\n"

    plan = config_import(actor=None, text=text, dry_run=False)

    assert [(c.kind, c.action, c.fields) for c in plan.changes] == [
        ("environment", "update", {"protected": [True, False]}),
        ("variable", "create", {"value": [None, "x"], "secret": [None, False]}),
    ]
    prod = Environment.objects.get(slug="prod")
    assert (prod.protected, prod.tier, prod.targets.count(), prod.variables.count()) == (False, "production", 2, 4)
    assert Environment.objects.filter(slug="dev").exists()


def test_secrets_are_compared_without_revealing_them(config):
    text = "version: 1\nenvironments:\n- slug: prod\n  variables:\n  - {name: DB_PASSWORD, secret: true, value: %s}\n"
    assert not config_import(actor=None, text=text % SECRET, dry_run=True).changed

    plan = config_import(actor=None, text=text % "n3w-secret", dry_run=False)

    (change,) = [c for c in plan.changes if c.kind == "variable"]
    assert change.fields == {"value": ["(hidden)", "(hidden)"]}
    assert crypto.decrypt(Variable.objects.get(name="DB_PASSWORD").value) == "n3w-secret"
    assert "n3w-secret" not in str(AuditEvent.objects.filter(verb="variable.updated").last().details)


def errors_of(text: str, **kwargs) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        config_import(actor=None, text=text, **kwargs)
    return caught.value.fields


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            "version: 1\nenvironments:\n- {slug: a, name: A, owner_team: ops}\n- {slug: b, name: B, owner_team: ops}\n"
            "- {slug: c, name: C, owner_team: ops, tier: heaven}\n",
            "config.yaml:environments[2].tier",
            "One of development",
        ),
        (
            "version: 1\nlifecycles:\n- slug: l\n  name: L\n  stages:\n  - {name: one, environments: [dev]}\n"
            "  - {name: two, environments: [nowhere]}\n",
            "config.yaml:lifecycles[0].stages[1].environments[0]",
            "Unknown environment 'nowhere'",
        ),
        (
            "version: 1\npolicy_sets:\n- slug: p\n  name: P\n  all_environments: true\n  rules:\n"
            "  - {kind: no_freeze}\n  - {kind: require_approvals, params: {min: 0}}\n",
            "config.yaml:policy_sets[0].rules[1].params.min",
            "",
        ),
        (
            "version: 1\ntemplates:\n- slug: t\n  name: T\n  steps:\n  - {name: x, kind: teleport}\n",
            "config.yaml:templates[0].steps[0].kind",
            "Unknown step kind",
        ),
        (
            "version: 1\nenvironments:\n- slug: prod\n  variables:\n  - {name: TOKEN, secret: true}\n",
            "config.yaml:environments[0].variables[0].value",
            "A secret needs a value.",
        ),
        (
            "version: 1\nenvironments:\n- slug: prod\n  variables:\n"
            "  - {name: T, secret: true, encrypted: true, value: xyz}\n",
            "config.yaml:environments[0].variables[0].value",
            "Does not decrypt",
        ),
        (
            "version: 1\nenvironments:\n- slug: prod\n  targets:\n  - {name: web-1, addres: typo}\n",
            "config.yaml:environments[0].targets[0].addres",
            "Unknown field",
        ),
    ],
)
def test_validation_errors_name_the_file_and_path(config, text, field, message):
    fields = errors_of(text)
    assert field in fields, fields
    assert message in " ".join(fields[field])


def test_the_services_errors_name_the_path_too_even_on_a_dry_run(config):
    text = (
        "version: 1\nenvironments:\n- slug: prod\n  targets:\n  - {name: web-3, address: x, health_check_url: nope}\n"
    )
    fields = errors_of(text, filename="prod.yaml", dry_run=True)
    assert "prod.yaml:environments[0].targets[0].health_check_url" in fields
    assert not Target.objects.filter(name="web-3").exists()


def test_a_yaml_syntax_error_names_the_line(config):
    fields = errors_of("version: 1\nenvironments:\n  - slug: [unclosed\n")
    assert fields["config.yaml"][0].startswith("Not valid YAML at line 4, column 1")


def test_a_user_without_rights_is_refused_and_nothing_changes(config):
    stranger = make_user("stranger")
    text = "version: 1\nenvironments:\n- {slug: new, name: New, owner_team: ops}\n"
    with pytest.raises(PermissionDenied, match=r"config\.yaml:environments\[0\]"):
        config_import(actor=stranger, text=text, dry_run=False)
    assert not Environment.objects.filter(slug="new").exists()
    # What they may not view is no concern of theirs: the export is empty, and naming it is an unknown environment.
    assert yaml.safe_load(config_export(user=stranger))["environments"] == []
    with pytest.raises(ValidationFailed) as caught:
        config_import(actor=stranger, text="version: 1\napproval_policies:\n- {environment: prod}\n")
    assert "config.yaml:approval_policies[0].environment" in caught.value.fields


def test_a_manager_may_change_their_environment(config):
    paula = make_user("paula")
    team_add_member(actor=None, team=config["payments"], user=paula)
    text = "version: 1\nenvironments:\n- {slug: dev, description: Ours}\n"
    with acting(channel=Channel.CLI, user=paula):
        plan = config_import(actor=paula, text=text, dry_run=False)
    assert plan.summary["update"] == 1
    assert Environment.objects.get(slug="dev").history.first().history_user == paula


# --- API ---------------------------------------------------------------------------------------------------


def test_api_export_is_yaml_of_what_the_caller_may_view(config):
    viewer = make_user("viewer")
    response = bearer_client(viewer).get("/api/v1/config/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(response.content)["environments"] == []

    root = make_user("root", is_superuser=True, is_staff=True)
    response = bearer_client(root).get("/api/v1/config/export/")
    assert response.content.decode() == config_export()
    assert bearer_client(viewer).get("/api/v1/config/export/?include_secrets=true").status_code == 403
    response = bearer_client(root).get("/api/v1/config/export/?include_secrets=true")
    assert "encrypted: true" in response.content.decode()
    assert SECRET not in response.content.decode()


def test_api_import_dry_run_then_apply(config):
    root = make_user("root", is_superuser=True, is_staff=True)
    client = bearer_client(root, scopes=("read", "config:write"))
    text = "version: 1\nenvironments:\n- {slug: dev, description: From the API}\n"

    response = client.post("/api/v1/config/import/", text, content_type="text/yaml")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True
    assert body["summary"]["update"] == 1
    assert Environment.objects.get(slug="dev").description == ""

    response = client.post("/api/v1/config/import/", {"text": text, "dry_run": False}, format="json")
    assert response.status_code == 200
    assert response.json()["dry_run"] is False
    assert Environment.objects.get(slug="dev").description == "From the API"

    response = client.post("/api/v1/config/import/?dry_run=false", text, content_type="application/yaml")
    assert response.json()["summary"] == {"create": 0, "update": 0, "unchanged": 1, "skipped": 0}


def test_api_import_errors_and_permissions(config):
    root = make_user("root", is_superuser=True, is_staff=True)
    response = bearer_client(root, scopes=("read", "config:write")).post(
        "/api/v1/config/import/", {"text": "version: 1\nenvironments:\n- {slug: x, tier: heaven}\n"}, format="json"
    )
    assert response.status_code == 400
    assert "config.yaml:environments[0].tier" in response.json()["fields"]

    read_only = bearer_client(root, scopes=("read",))
    assert read_only.post("/api/v1/config/import/", {"text": "version: 1\n"}, format="json").status_code == 403

    stranger = session_client(make_user("stranger"))
    response = stranger.post(
        "/api/v1/config/import/",
        {"text": "version: 1\nenvironments:\n- {slug: new, name: New, owner_team: ops}\n", "dry_run": False},
        format="json",
    )
    assert response.status_code == 403
    assert not Environment.objects.filter(slug="new").exists()


# --- Commands ----------------------------------------------------------------------------------------------


def test_commands_round_trip(config, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    call_command("releasehub_export", "--output", str(path), "--include-secrets")
    assert SECRET not in path.read_text()
    wipe()

    call_command("releasehub_import", str(path))
    out = capsys.readouterr().out
    assert "+ environment prod" in out
    assert "Dry run" in out
    assert not Environment.objects.exists()

    call_command("releasehub_import", str(path), "--apply")
    assert Environment.objects.count() == 2
    call_command("releasehub_import", str(path), "--apply")
    assert "0 were created, 0 were updated" in capsys.readouterr().out


def test_commands_act_as_a_user_and_fail_with_the_errors(config, tmp_path, capsys):
    make_user("viewer")
    call_command("releasehub_export", "--user", "viewer")
    assert yaml.safe_load(capsys.readouterr().out)["environments"] == []

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nenvironments:\n- {slug: dev, tier: heaven}\n")
    with pytest.raises(CommandError, match=r"bad\.yaml:environments\[0\]\.tier"):
        call_command("releasehub_import", str(bad))
    with pytest.raises(CommandError, match="No active user"):
        call_command("releasehub_import", str(bad), "--user", "nobody")


def test_aliases_and_nul_characters_are_refused(config):
    fields = errors_of("version: 1\nenvironments: &a\n- slug: x\n  labels: *a\n")
    assert "aliases" in fields["config.yaml"][0]
    assert "line 4" in fields["config.yaml"][0]
    assert errors_of('version: 1\nenvironments:\n- {slug: dev, description: "a\\0b"}\n') == {
        "config.yaml": ["NUL characters are not accepted."]
    }


# --- Pull mode: an environment's repository ------------------------------------------------------------------


def test_the_repository_is_exported_with_its_environment(pull_mode):
    text = config_export()
    assert text == config_export()
    assert "manifest_template: |" in text  # a literal block, as it is written
    dev, prod = yaml.safe_load(text)["environments"]
    assert "repository" not in prod
    assert dev["repository"] == {
        "url": "https://github.com/acme/environments.git",
        "branch": "live",
        "path": "dev/payments-api.yaml",
        "mode": "pull_request",
        "provider": "github",
        "api_url": "",
        "project": "",
        "credential_variable": "GIT_TOKEN",
        "ssh_known_hosts": "",
        "api_token_variable": "",
        "webhook_secret_variable": "",
        "health_url": "",
        "sync_timeout": 600,
        "poll_interval": 30,
        "manifest_template": MANIFEST,
    }
    assert "ghp-t0ken" not in config_export(include_secrets=True)


def test_export_wipe_import_reproduces_the_repository_and_a_second_import_changes_nothing(pull_mode):
    before = config_export()
    text = config_export(include_secrets=True)
    wipe()
    assert not EnvironmentRepository.objects.exists()

    plan = config_import(actor=None, text=text, dry_run=False)

    (change,) = [c for c in plan.changes if c.kind == "repository"]
    assert (change.key, change.path, change.action) == ("dev", "environments[0].repository", "create")
    assert "+ repository dev  (environments[0].repository)" in plan.text()
    assert config_export() == before
    repository = EnvironmentRepository.objects.get(environment__slug="dev")
    assert (repository.mode, repository.manifest_template, repository.sync_timeout) == ("pull_request", MANIFEST, 600)
    assert AuditEvent.objects.filter(verb="gitops.repository_created", object_id=str(repository.environment_id))

    rows, events = history_rows(), AuditEvent.objects.count()
    plan = config_import(actor=None, text=text, dry_run=False)
    assert {change.action for change in plan.changes} == {"unchanged"}
    assert (history_rows(), AuditEvent.objects.count()) == (rows, events)


def test_only_the_repository_fields_in_the_file_change_and_a_missing_repository_stays(pull_mode):
    rows = EnvironmentRepository.history.count()
    text = "version: 1\nenvironments:\n- slug: dev\n  repository: {branch: main, poll_interval: 60}\n"

    plan = config_import(actor=None, text=text, dry_run=False)

    (change,) = [c for c in plan.changes if c.kind == "repository"]
    assert (change.action, change.fields) == ("update", {"branch": ["live", "main"], "poll_interval": [30, 60]})
    assert "~ repository dev  (environments[0].repository)" in plan.text()
    repository = EnvironmentRepository.objects.get(environment__slug="dev")
    assert (repository.branch, repository.poll_interval, repository.path) == ("main", 60, "dev/payments-api.yaml")
    assert EnvironmentRepository.history.count() == rows + 1
    # Nothing is ever deleted: an entry without `repository` leaves dev in pull mode.
    assert not config_import(actor=None, text="version: 1\nenvironments:\n- {slug: dev}\n", dry_run=False).changed
    assert EnvironmentRepository.objects.filter(environment__slug="dev").exists()


@pytest.mark.parametrize(
    ("repository", "field", "message"),
    [
        ("{url: /srv/git/env.git, path: ../escape.yaml, manifest_template: x}", "path", "relative file path"),
        ("{url: /srv/git/env.git, path: a.yaml}", "manifest_template", "Needed to create the repository."),
        ("{url: /srv/git/env.git, path: a.yaml, manifest_template: x, mode: merge}", "mode", "One of push"),
        ("{url: /srv/git/env.git, path: a.yaml, manifest_template: x, mode: pull_request}", "provider", "provider"),
        ("{url: 'https://u:p@git.example.com/e.git', path: a.yaml, manifest_template: x}", "url", "secret variable"),
        ("{url: /srv/git/env.git, path: a.yaml, manifest_template: '{{ release.version'}", "manifest_template", ""),
        ("{url: /srv/git/env.git, path: a.yaml, manifest_template: x, sync_timeout: 1}", "sync_timeout", "Between"),
        ("{url: /srv/git/env.git, path: a.yaml, manifest_template: x, branch: 1}", "branch", "A string"),
    ],
)
def test_repository_errors_name_the_file_and_path(config, repository, field, message):
    text = (
        "version: 1\nenvironments:\n- {slug: a, name: A, owner_team: ops}\n- {slug: dev}\n"
        f"- slug: prod\n  repository: {repository}\n"
    )
    fields = errors_of(text)
    assert f"config.yaml:environments[2].repository.{field}" in fields, fields
    assert message in " ".join(fields[f"config.yaml:environments[2].repository.{field}"])
    assert not EnvironmentRepository.objects.exists()


def test_a_repository_naming_a_variable_that_is_not_secret_is_refused_with_its_path_even_on_a_dry_run(config):
    text = (
        "version: 1\nenvironments:\n- slug: prod\n  repository:\n    url: /srv/git/env.git\n    path: a.yaml\n"
        "    manifest_template: x\n    credential_variable: LOG_LEVEL\n"
    )
    fields = errors_of(text, filename="prod.yaml", dry_run=True)
    assert "no secret variable LOG_LEVEL" in " ".join(
        fields["prod.yaml:environments[0].repository.credential_variable"]
    )
    # Its secret, created by the same file, comes first.
    text += "  variables:\n  - {name: GIT_KEY, secret: true, value: k3y}\n"
    text = text.replace("credential_variable: LOG_LEVEL", "credential_variable: GIT_KEY")
    plan = config_import(actor=None, text=text, dry_run=False)
    assert [(c.kind, c.action) for c in plan.changes if c.action != "unchanged"] == [
        ("variable", "create"),
        ("repository", "create"),
    ]
    assert EnvironmentRepository.objects.get().credential_variable == "GIT_KEY"


def test_a_manager_of_the_environment_may_set_its_repository_and_a_viewer_may_not(config):
    text = (
        "version: 1\nenvironments:\n- slug: dev\n"
        "  repository: {url: /srv/git/e.git, path: a.yaml, manifest_template: x}\n"
    )
    viewer = make_user("viewer")
    team_add_member(actor=None, team=config["ops"], user=viewer)
    environment_grant(actor=None, environment=config["dev"], team=config["ops"], action="view")
    with pytest.raises(PermissionDenied, match=r"config\.yaml:environments\[0\]\.repository"):
        config_import(actor=viewer, text=text, dry_run=False)
    assert not EnvironmentRepository.objects.exists()
    paula = make_user("paula")
    team_add_member(actor=None, team=config["payments"], user=paula)
    with acting(channel=Channel.CLI, user=paula):
        config_import(actor=paula, text=text, dry_run=False)
    assert EnvironmentRepository.objects.get().history.first().history_user == paula
