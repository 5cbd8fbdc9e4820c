"""Demo data for `make run`: teams, people, environments, a lifecycle, applications, artifacts, a
deployment template and releases.

Idempotent: what exists (by slug, username or version) is left as it is. Everything is
created through the services, so the audit trail and history show it like any other change.

Deployments work for real on one machine: every target is a directory under
var/demo/targets/, artifacts are small tar.gz files under var/demo/artifacts/ (file:// URIs
with their true digests), and each target's health check is ReleaseHub's own /healthz. The
preview environment is in pull mode: its deployments commit a Kubernetes manifest to a bare git
repository, var/demo/gitops/environments.git, where a GitOps operator would pick it up.
"""

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.accounts.services import team_add_member, team_create, team_role_set, user_ensure
from apps.approvals.models import ApprovalPolicy
from apps.approvals.services import policy_set
from apps.catalog.models import Application, Artifact, CdTrigger
from apps.catalog.services import application_create, application_grant, artifact_register, trigger_create
from apps.deployments.models import DeploymentTemplate
from apps.deployments.services import template_create
from apps.environments.models import Environment, Lifecycle
from apps.environments.services import (
    environment_create,
    environment_grant,
    environment_update,
    lifecycle_create,
    target_create,
    variable_create,
)
from apps.gitops.services import repository_set
from apps.policies.models import PolicySet
from apps.policies.services import policy_set_create
from apps.releases.models import Release
from apps.releases.services import release_create
from apps.scheduling.models import Booking
from apps.scheduling.services import booking_request, freeze_create

DEMO_PASSWORD = "demo"  # noqa: S105  (documented demo accounts)

TEAMS = [
    ("platform", "Platform", "Runs the shared infrastructure and the production environment."),
    ("payments", "Payments", "Builds payments-api and the ledger."),
    ("storefront", "Storefront", "Builds the web shop and the checkout."),
    ("release-managers", "Release managers", "Approve production deployments."),
    ("auditors", "Auditors", "Read the whole audit trail."),
]

USERS = [
    # username, first, last, teams
    ("alice", "Alice", "Martin", ["payments"]),
    ("bob", "Bob", "Nguyen", ["release-managers", "platform"]),
    ("erin", "Erin", "Walsh", ["release-managers"]),
    ("carol", "Carol", "Schmidt", ["storefront"]),
    ("dave", "Dave", "Okafor", ["auditors"]),
    ("ci-bot", "CI", "Bot", ["payments", "storefront"]),
]

ENVIRONMENTS = [
    # slug, name, tier, time zone, requires booking, protected, targets [(name, address, slot)]
    (
        "dev",
        "Development",
        "development",
        "UTC",
        False,
        False,
        [
            ("dev-1", "10.0.1.11", "none"),
            ("dev-2", "10.0.1.12", "none"),
            ("dev-3", "10.0.1.13", "none"),
            ("dev-4", "10.0.1.14", "none"),
        ],
    ),
    ("test", "Test", "test", "UTC", False, False, [("test-1", "10.0.2.11", "none"), ("test-2", "10.0.2.12", "none")]),
    ("staging", "Staging", "staging", "Europe/Berlin", False, False, [("staging-1", "10.0.3.11", "none")]),
    (
        "prod",
        "Production",
        "production",
        "Europe/Berlin",
        True,
        True,
        [
            ("prod-blue-1", "10.0.4.11", "blue"),
            ("prod-blue-2", "10.0.4.12", "blue"),
            ("prod-green-1", "10.0.4.21", "green"),
            ("prod-green-2", "10.0.4.22", "green"),
        ],
    ),
]

# How each environment deploys by default. Production is blue/green: its traffic hook points the `prod-live`
# symlink in the targets folder at the live slot's first target, as a load balancer would be switched.
ENVIRONMENT_DEPLOYS = {
    "dev": {"default_strategy": "rolling", "default_strategy_options": {"batch_size": 2}},
    "test": {
        "default_strategy": "canary",
        "default_strategy_options": {
            "stages": [{"weight": 50, "pause": "20s"}, {"weight": 100}],
            "analysis": {"interval": 2},
        },
    },
    "prod": {
        "default_strategy": "blue_green",
        "default_strategy_options": {"keep_old_slot_for": "2m"},
        "traffic_hook": {
            "kind": "shell",
            "params": {
                "command": "ln -sfn prod-{{ traffic.slot if traffic.weight >= 50 else traffic.other_slot }}-1"
                ' prod-live.new && mv -T prod-live.new prod-live && echo "prod-live -> $(readlink prod-live)"',
                "working_dir": "{{ var.TARGETS_DIR }}",
                "timeout": 30,
            },
        },
    },
}

# Team grants per environment, beyond the owner team's (platform owns them all).
ENVIRONMENT_GRANTS = {
    "payments": {
        "dev": ["view", "deploy"],
        "preview": ["view", "deploy"],
        "test": ["view", "deploy"],
        "staging": ["view", "deploy", "book"],
        "prod": ["view", "book"],
    },
    "storefront": {
        "dev": ["view", "deploy"],
        "preview": ["view", "deploy"],
        "test": ["view", "deploy"],
        "staging": ["view", "book"],
        "prod": ["view", "book"],
    },
    "release-managers": {"staging": ["view", "approve"], "prod": ["view", "approve"]},
    "auditors": {"dev": ["view"], "test": ["view"], "staging": ["view"], "prod": ["view"], "preview": ["view"]},
}

# Pull mode (GitOps): a deployment to preview commits the manifest below, rendered for the release, to the
# environment repository; an operator (Argo CD, Flux) would apply it. The demo has no operator, so the `gitops`
# template does not wait for a sync: the deployment succeeds once the commit is pushed. Preview is in no
# lifecycle: promotions deploy with the application's template, and preview needs a gitops_commit step.
PREVIEW = {
    "slug": "preview",
    "name": "Preview",
    "tier": "development",
    "timezone": "UTC",
    "labels": {"region": "eu-central", "tier": "development", "delivery": "gitops"},
    "description": "Preview environment of the demo shop, in pull mode: deployments commit a Kubernetes manifest "
    "to its git repository, and a GitOps operator applies it.",
}
PREVIEW_CLUSTER = ("preview-cluster", "https://preview.k8s.example.internal:6443")
PREVIEW_MANIFEST_PATH = "preview/{{ release.application }}.yaml"
PREVIEW_MANIFEST = """\
# Written by ReleaseHub: {{ release.application }} {{ release.version }} in {{ environment.name }}.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ release.application }}
  namespace: preview
  labels:
    app.kubernetes.io/name: {{ release.application }}
    app.kubernetes.io/version: "{{ release.version }}"
spec:
  replicas: {{ var.REPLICAS }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ release.application }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ release.application }}
        app.kubernetes.io/version: "{{ release.version }}"
      annotations:
        releasehub.example.com/artifact: "{{ artifact.uri }}"
        releasehub.example.com/digest: "{{ artifact.digest }}"
    spec:
      containers:
        - name: app
          image: "registry.example.com/{{ release.application }}:{{ release.version }}"
          env:
            - {name: LOG_LEVEL, value: "{{ var.LOG_LEVEL }}"}
"""
GITOPS_TEMPLATE_STEPS = [{"name": "Commit manifest", "kind": "gitops_commit", "params": {"wait_for_sync": False}}]

APPLICATIONS = [
    # slug, name, owner team, repository, versions [(version, branch)], oldest first
    (
        "payments-api",
        "Payments API",
        "payments",
        "https://git.example.com/payments/payments-api",
        [("1.3.0", "main"), ("1.4.0", "main"), ("1.4.1", "main"), ("1.4.2", "main"), ("1.5.0-rc.1", "release/1.5")],
    ),
    (
        "storefront-web",
        "Storefront web",
        "storefront",
        "https://git.example.com/storefront/web",
        [("2.0.0", "main"), ("2.1.0", "main"), ("2.2.0-beta.1", "feature/checkout-v2")],
    ),
    (
        "ledger-worker",
        "Ledger worker",
        "payments",
        "https://git.example.com/payments/ledger",
        [("2026.11.20-a1b2c3d", "main"), ("2026.11.24-e4f5a6b", "main")],
    ),
]


# The demo template: install the build into the target's directory, write its configuration, let it settle.
DEMO_TEMPLATE_STEPS = [
    {"name": "Install release", "kind": "release_dir", "params": {"keep": 3}},
    {
        "name": "Write configuration",
        "kind": "shell",
        "params": {
            "command": 'printf "LOG_LEVEL=%s\\nREPLICAS=%s\\n" "$LOG_LEVEL" "$REPLICAS" > current/app.env'
            " && cat current/app.env",
            "working_dir": "{{ target.path }}",
            "timeout": 30,
        },
    },
    {"name": "Settle", "kind": "wait", "params": {"seconds": 2}},
]

# Releases made of the latest builds, so there is something to deploy at once.
RELEASES = [("payments-api", "1.4.1"), ("payments-api", "1.4.2"), ("storefront-web", "2.1.0")]


def demo_dir(*parts: str) -> str:
    return os.path.join(settings.VAR_DIR, "demo", *parts)


def demo_artifact(slug: str, version: str) -> tuple[str, str]:
    """Write a small, byte-for-byte reproducible tar.gz for a demo build; returns (file:// URI, digest)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as archive:
        for name, text in (("VERSION", f"{version}\n"), ("README", f"{slug} {version}: a ReleaseHub demo build.\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    body = buffer.getvalue()
    os.makedirs(demo_dir("artifacts"), exist_ok=True)
    path = demo_dir("artifacts", f"{slug}-{version}.tar.gz")
    with open(path, "wb") as file:
        file.write(body)
    return f"file://{path}", "sha256:" + hashlib.sha256(body).hexdigest()


def bare_repository(path: str) -> None:
    """Make a bare git repository at `path`, its default branch main, unless there is one.
    Raises OSError (no git) or CalledProcessError."""
    if os.path.exists(os.path.join(path, "HEAD")):
        return
    os.makedirs(path, exist_ok=True)
    subprocess.run(["git", "init", "--quiet", "--bare", path], check=True, capture_output=True)  # noqa: S603, S607
    subprocess.run(  # noqa: S603
        ["git", "--git-dir", path, "symbolic-ref", "HEAD", "refs/heads/main"],  # noqa: S607
        check=True,
        capture_output=True,
    )


def health_url() -> str:
    return f"http://{os.environ.get('RELEASEHUB_BIND', '127.0.0.1:8000')}/healthz"


class Command(BaseCommand):
    help = (
        f"Load demo teams, people (password {DEMO_PASSWORD!r}), environments (one in pull mode), a lifecycle, "
        "applications, artifacts, deployment templates and releases."
    )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            teams = self._teams()
            environments = self._environments(teams)
            lifecycle = self._lifecycle(environments)
            self._applications(teams, lifecycle)
            self._releases()
            self._approvals(environments, teams)
            self._policies()
            self._bookings(environments)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: teams {', '.join(teams)}; people {', '.join(u[0] for u in USERS)} "
                f"(password {DEMO_PASSWORD!r}); environments {', '.join(environments)}; "
                f"applications {', '.join(a[0] for a in APPLICATIONS)}."
            )
        )

    def _teams(self) -> dict[str, Team]:
        teams = {}
        for slug, name, description in TEAMS:
            teams[slug] = Team.objects.filter(slug=slug).first() or team_create(
                actor=None, slug=slug, name=name, description=description
            )
        team_role_set(actor=None, team=teams["auditors"], role="auditor", enabled=True)
        for username, first, last, member_of in USERS:
            user, _ = user_ensure(
                username=username,
                password=DEMO_PASSWORD,
                email=f"{username}@example.com",
                first_name=first,
                last_name=last,
            )
            for slug in member_of:
                team_add_member(actor=None, team=teams[slug], user=user)
        return teams

    def _environments(self, teams: dict[str, Team]) -> dict[str, Environment]:
        environments = {}
        for slug, name, tier, tz, booking, protected, targets in ENVIRONMENTS:
            environment = Environment.objects.filter(slug=slug).first()
            if environment is None:
                environment = environment_create(
                    actor=None,
                    slug=slug,
                    name=name,
                    tier=tier,
                    owner_team=teams["platform"],
                    timezone=tz,
                    requires_booking=booking,
                    protected=protected,
                    labels={"region": "eu-central", "tier": tier},
                    description=f"{name} environment of the demo shop.",
                )
                for target_name, address, slot in targets:
                    target_create(
                        actor=None,
                        environment=environment,
                        name=target_name,
                        address=address,
                        slot=slot,
                        path=demo_dir("targets", target_name),
                        health_check_url=health_url(),
                        attributes={"port": 8080, "weight": 1},
                    )
                variable_create(
                    actor=None,
                    environment=environment,
                    name="LOG_LEVEL",
                    value="debug" if tier != "production" else "info",
                )
                variable_create(
                    actor=None, environment=environment, name="REPLICAS", value="1" if tier != "production" else "4"
                )
                if slug == "prod":
                    variable_create(actor=None, environment=environment, name="TARGETS_DIR", value=demo_dir("targets"))
                if slug in ENVIRONMENT_DEPLOYS:
                    environment_update(actor=None, environment=environment, **ENVIRONMENT_DEPLOYS[slug])
                variable_create(
                    actor=None,
                    environment=environment,
                    name="DATABASE_PASSWORD",
                    value=f"{slug}-demo-secret-{hashlib.sha256(slug.encode()).hexdigest()[:8]}",
                    secret=True,
                )
            environments[slug] = environment
        environments["preview"] = self._preview(teams)
        prod = environments["prod"]
        first_target = prod.targets.order_by("name").first()
        if not prod.variables.filter(target=first_target).exists():
            variable_create(actor=None, environment=prod, target=first_target, name="LOG_LEVEL", value="debug")
        for team_slug, grants in ENVIRONMENT_GRANTS.items():
            for env_slug, actions in grants.items():
                for action in actions:
                    environment_grant(
                        actor=None, environment=environments[env_slug], team=teams[team_slug], action=action
                    )
        return environments

    def _preview(self, teams: dict[str, Team]) -> Environment:
        """The pull-mode environment: a cluster, the variables its manifest uses, the `gitops` template as its
        default, and its repository (the bare git repository is made again when var/ was cleared)."""
        url = os.path.abspath(demo_dir("gitops", "environments.git"))
        try:
            bare_repository(url)
        except (OSError, subprocess.CalledProcessError) as exc:  # the rest of the demo works without git
            self.stderr.write(self.style.WARNING(f"No git repository for preview at {url} ({exc}): install git."))
        environment = Environment.objects.filter(slug=PREVIEW["slug"]).first()
        if environment is not None:
            return environment
        template = DeploymentTemplate.objects.filter(slug="gitops").first() or template_create(
            actor=None,
            slug="gitops",
            name="GitOps commit",
            description="Pull mode: commit the manifest rendered for the release to the environment's repository.",
            steps=GITOPS_TEMPLATE_STEPS,
        )
        environment = environment_create(actor=None, owner_team=teams["platform"], default_template=template, **PREVIEW)
        name, address = PREVIEW_CLUSTER
        target_create(actor=None, environment=environment, name=name, address=address, attributes={"kind": "cluster"})
        variable_create(actor=None, environment=environment, name="LOG_LEVEL", value="debug")
        variable_create(actor=None, environment=environment, name="REPLICAS", value="1")
        repository_set(
            actor=None,
            environment=environment,
            url=url,
            branch="main",
            path=PREVIEW_MANIFEST_PATH,
            manifest_template=PREVIEW_MANIFEST,
        )
        return environment

    def _lifecycle(self, environments: dict[str, Environment]) -> Lifecycle:
        existing = Lifecycle.objects.filter(slug="standard").first()
        if existing:
            return existing
        return lifecycle_create(
            actor=None,
            slug="standard",
            name="Standard",
            description="Development and test promote on their own; staging and production need a person.",
            stages=[
                {"name": "Development", "automatic": True, "environments": [environments["dev"]]},
                {"name": "Test", "automatic": True, "environments": [environments["test"]]},
                {"name": "Staging", "automatic": False, "environments": [environments["staging"]]},
                {"name": "Production", "automatic": False, "environments": [environments["prod"]]},
            ],
        )

    def _applications(self, teams: dict[str, Team], lifecycle: Lifecycle) -> None:
        ci = User.objects.get(username="ci-bot")
        template = DeploymentTemplate.objects.filter(slug="directory-release").first() or template_create(
            actor=None,
            slug="directory-release",
            name="Directory release",
            description="Unpack the build into releases/<version>, switch `current`, write the configuration.",
            steps=DEMO_TEMPLATE_STEPS,
        )
        for slug, name, owner, repository, versions in APPLICATIONS:
            application = Application.objects.filter(slug=slug).first() or application_create(
                actor=None,
                slug=slug,
                name=name,
                owner_team=teams[owner],
                repository_url=repository,
                description=f"{name}, built by the {teams[owner].name} team.",
                default_template=template,
                lifecycle=lifecycle,
            )
            for team in ("release-managers", "auditors", "platform"):
                application_grant(actor=None, application=application, team=teams[team], action="view")
            for index, (version, branch) in enumerate(versions):
                if Artifact.objects.filter(application=application, version=version).exists():
                    continue
                uri, digest = demo_artifact(slug, version)
                artifact_register(
                    actor=ci,
                    application=slug,
                    version=version,
                    digest=digest,
                    uri=uri,
                    commit=hashlib.sha1(f"{slug}{version}".encode()).hexdigest(),  # noqa: S324  (a made-up commit id)
                    branch=branch,
                    build_url=f"https://ci.example.com/{slug}/builds/{1000 + index}",
                    labels={"team": owner},
                )
            # Builds of main from now on go through the lifecycle by themselves (registered after the demo
            # builds above, so seeding deploys nothing).
            if not CdTrigger.objects.filter(application=application).exists():
                trigger_create(actor=None, application=application, branch_pattern="main", lifecycle=lifecycle)

    def _releases(self) -> None:
        for slug, version in RELEASES:
            application = Application.objects.get(slug=slug)
            if Release.objects.filter(application=application, version=version).exists():
                continue
            artifact = Artifact.objects.get(application=application, version=version)
            release_create(
                actor=None, application=application, artifacts=[artifact], notes=f"{application.name} {version}."
            )

    def _bookings(self, environments: dict[str, Environment]) -> None:
        """Tomorrow's production slots: one the platform team booked (approved), one Payments asked for."""
        if Booking.objects.exists():
            return
        tomorrow = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        slots = [
            ("bob", "Platform maintenance: database upgrade", 0, 1),
            ("alice", "payments-api 1.4.2 to production", 5, 1),
            ("carol", "storefront-web 2.1.0 to staging", 2, 2),
        ]
        friday = tomorrow + timedelta(days=(4 - tomorrow.weekday()) % 7)
        freeze_create(
            actor=None,
            title="Friday evening freeze",
            reason="Weekend traffic: no production changes after 18:00 on Fridays.",
            environments=[environments["prod"]],
            starts_at=friday.replace(hour=17),  # 18:00 in Berlin in winter
            ends_at=friday.replace(hour=23),
            rrule="FREQ=WEEKLY;BYDAY=FR",
            timezone_name="Europe/Berlin",
        )
        for username, title, offset, hours in slots:
            booking_request(
                actor=User.objects.get(username=username),
                environment=environments["staging" if "staging" in title else "prod"],
                starts_at=tomorrow + timedelta(hours=offset),
                ends_at=tomorrow + timedelta(hours=offset + hours),
                title=title,
            )

    def _approvals(self, environments: dict[str, Environment], teams: dict[str, Team]) -> None:
        """Staging needs one release manager's approval, production two."""
        for slug, required in (("staging", 1), ("prod", 2)):
            if not ApprovalPolicy.objects.filter(environment=environments[slug]).exists():
                policy_set(
                    actor=None,
                    environment=environments[slug],
                    required_approvals=required,
                    eligible_teams=[teams["release-managers"]],
                    expires_after=timedelta(days=2),
                )

    def _policies(self) -> None:
        """Production takes builds of main and release branches only (not overridable), canary or blue/green."""
        if not PolicySet.objects.filter(slug="production-guardrails").exists():
            policy_set_create(
                actor=None,
                slug="production-guardrails",
                name="Production guardrails",
                description="What every production deployment meets; overrides are for emergencies.",
                tiers=["production"],
                rules=[
                    {"kind": "allowed_branches", "params": {"patterns": ["main", "release/*"]}, "overridable": False},
                    {"kind": "allowed_strategies", "params": {"strategies": ["canary", "blue_green"]}},
                    {"kind": "artifact_requirements", "params": {"digest": True}, "two_person": True},
                ],
            )
