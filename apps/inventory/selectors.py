"""What runs where: reads of installation records and of what targets report.

Every read here is a fixed number of queries served by the partial indexes of current rows
(`installation_current`, `installation_artifact_now`), the timeline index (`installation_timeline`,
`installation_env_since`) and the index of drifted observations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, F, Max, Min, Q, QuerySet

from apps.catalog.models import Application, Artifact
from apps.catalog.selectors import applications_visible_to, artifacts_visible_to
from apps.deployments.models import Deployment, DeploymentStatus
from apps.environments.models import Environment, Target
from apps.environments.selectors import environments_visible_to

from .models import Installation, Observation


def current_installations(**filters) -> QuerySet[Installation]:
    """The open installation records (what runs now), e.g. `current_installations(environment=env)` or
    `(target=t, application=a)`: one query on the partial indexes of current rows."""
    return (
        Installation.objects.filter(current=True, **filters)
        .select_related("target", "application", "artifact", "deployment")
        .defer("deployment__plan")  # kilobytes per row, never shown here
        .order_by("target__name", "application__slug")
    )


def visible_installations(user, **filters) -> QuerySet[Installation]:
    """Current installations in environments and of applications the user may view, with who deployed them."""
    return current_installations(
        environment__in=environments_visible_to(user).values("pk"), **_of_visible_applications(user), **filters
    ).select_related("environment", "deployment__created_by")


def _of_visible_applications(user) -> dict:
    return {"application__in": applications_visible_to(user).values("pk")}


def installations_at(user, environment: Environment, at: datetime) -> QuerySet[Installation]:
    """What ran in the environment at `at` (of the applications the user may view): the records open then (time
    travel on the inventory tab)."""
    return (
        Installation.objects.filter(environment=environment, since__lte=at, **_of_visible_applications(user))
        .filter(Q(until__isnull=True) | Q(until__gt=at))
        .select_related("target", "application", "artifact", "deployment__created_by")
        .defer("deployment__plan")
        .order_by("application__slug", "target__name")
    )


def target_timeline(user, target: Target) -> QuerySet[Installation]:
    """Every installation record of the target (of the applications the user may view), newest first."""
    return (
        Installation.objects.filter(target=target, **_of_visible_applications(user))
        .select_related("application", "artifact", "deployment__created_by", "replaced")
        .defer("deployment__plan")
        .order_by("-since", "-id")
    )


def observations_of(user, **filters) -> QuerySet[Observation]:
    """Readings of targets (of the applications the user may view), e.g. `observations_of(user, target=t)`."""
    return (
        Observation.objects.filter(**filters, **_of_visible_applications(user))
        .select_related("target", "application", "expected")
        .order_by("target__name", "application__slug")
    )


def drifted_observations(user) -> QuerySet[Observation]:
    """Observations that disagree with the installation record, in environments and of applications the user
    may view; served by the partial index."""
    return (
        observations_of(user, drifted=True, environment__in=environments_visible_to(user).values("pk"))
        .select_related("environment")
        .order_by("environment__name", "target__name", "application__slug")
    )


# --- Search: "payments-api 1.4.2", a digest or a commit ---------------------------------------------------

SEARCH_LIMIT = 50
DIGEST = re.compile(r"^(sha256:)?[0-9a-f]{8,64}$")
COMMIT = re.compile(r"^[0-9a-f]{7,64}$")


def search_artifacts(user, query: str) -> QuerySet[Artifact]:
    """Visible artifacts a search names: `<application> <version>`, a version, an application, a digest (or its
    start, with or without `sha256:`) or a commit (or its start). At most SEARCH_LIMIT, newest first.

    The application is looked up first, so the artifact query ORs indexed columns of one table only."""
    words = query.split()
    artifacts = artifacts_visible_to(user)
    if not words or len(words) > 2 or "\x00" in query:
        return artifacts.none()
    named = Application.objects.filter(Q(slug=words[0]) | Q(name__iexact=words[0])).values("pk")
    if len(words) == 2:
        matches = Q(application__in=named, version=words[1])
    else:
        (word,) = words
        lowered = word.lower()
        matches = Q(version=word) | Q(application__in=named)
        if COMMIT.match(lowered):
            matches |= Q(commit__startswith=lowered)
        if DIGEST.match(lowered):
            matches |= Q(digest__startswith=lowered if lowered.startswith("sha256:") else f"sha256:{lowered}")
    return artifacts.filter(matches).order_by("-registered_at", "-id")[:SEARCH_LIMIT]


# --- Where one application runs: environments by versions -------------------------------------------------


@dataclass
class VersionSpread:
    """One environment's versions of an application: each with its number of targets, the newest first."""

    environment: Environment
    versions: list[dict] = field(default_factory=list)


def where_deployed(user, application: Application) -> list[VersionSpread]:
    """Per visible environment (tier order) the versions of the application running there now and on how many
    targets (two queries)."""
    environments = list(environments_visible_to(user))
    rows = (
        Installation.objects.filter(current=True, application=application, environment__in=environments)
        .values("environment_id", "artifact_id", "artifact__version")
        .annotate(targets=Count("id"), since=Min("since"), deployment=Max("deployment_id"))
        .order_by("environment_id", "-artifact__version_key")
    )
    spread = {environment.pk: VersionSpread(environment) for environment in environments}
    for row in rows:
        spread[row["environment_id"]].versions.append(
            {
                "artifact": row["artifact_id"],
                "version": row["artifact__version"],
                "targets": row["targets"],
                "since": row["since"],
                "deployment": row["deployment"],
            }
        )
    return list(spread.values())


# --- The dashboard: applications by environments ------------------------------------------------------------

# How a cell is coloured, from its latest deployment's status.
CELL_STATE = {
    DeploymentStatus.SUCCEEDED: "succeeded",
    DeploymentStatus.RUNNING: "running",
    DeploymentStatus.PAUSED: "running",
    DeploymentStatus.QUEUED: "pending",
    DeploymentStatus.SCHEDULED: "pending",
    DeploymentStatus.PENDING_APPROVAL: "pending_approval",
    DeploymentStatus.FAILED: "failed",
    DeploymentStatus.ROLLED_BACK: "failed",
    DeploymentStatus.REJECTED: "stopped",
    DeploymentStatus.CANCELLED: "stopped",
}


@dataclass
class Cell:
    """What one application runs in one environment: the version of its latest installation (and how many
    other versions run beside it), the latest deployment, and whether a target drifted."""

    version: str = ""
    other_versions: int = 0
    targets: int = 0
    deployment_id: int | None = None
    deployment_status: str = ""
    deployment_version: str = ""
    drifted: bool = False

    @property
    def state(self) -> str:
        if self.drifted:
            return "drifted"
        return CELL_STATE.get(self.deployment_status, "empty" if not self.version else "succeeded")


def dashboard_environments(user, *, lifecycle=None) -> QuerySet[Environment]:
    """The matrix's columns: visible environments by lifecycle stage, then tier, then name."""
    environments = environments_visible_to(user)
    if lifecycle is not None:
        environments = environments.filter(lifecycle_stages__lifecycle=lifecycle)
        position = Min("lifecycle_stages__position", filter=Q(lifecycle_stages__lifecycle=lifecycle))
    else:
        position = Min("lifecycle_stages__position")
    return environments.annotate(stage_position=position).order_by(
        F("stage_position").asc(nulls_last=True), "tier_position", "name"
    )


def dashboard_applications(user, *, team=None, lifecycle=None) -> QuerySet[Application]:
    """The matrix's rows: visible applications by name, of one team or lifecycle when asked."""
    applications = applications_visible_to(user).order_by("name", "pk")
    if team is not None:
        applications = applications.filter(owner_team=team)
    if lifecycle is not None:
        applications = applications.filter(lifecycle=lifecycle)
    return applications


def dashboard_matrix(applications: list[Application], environments: list[Environment]) -> dict:
    """{(application id, environment id): Cell} for the cells that have a deployment or an installation.

    Three queries whatever the size: the latest deployment of every cell (one grouped subquery on the
    `deployment_cell_latest` index), the current installations grouped per cell and version, and the cells
    with a drifted observation (the `observation_drifted` partial index). bench/inventory.py measures them.
    """
    application_ids = [a.pk for a in applications]
    environment_ids = [e.pk for e in environments]
    if not application_ids or not environment_ids:
        return {}
    cells: dict[tuple[int, int], Cell] = {}
    in_matrix = {"application_id__in": application_ids, "environment_id__in": environment_ids}
    latest = (
        Deployment.objects.filter(**in_matrix)
        .order_by()
        .values("application_id", "environment_id")
        .annotate(latest=Max("id"))
        .values("latest")
    )
    for deployment in (
        Deployment.objects.filter(pk__in=latest)
        .order_by()
        .values("id", "application_id", "environment_id", "status", "release__version")
    ):
        cells[deployment["application_id"], deployment["environment_id"]] = Cell(
            deployment_id=deployment["id"],
            deployment_status=deployment["status"],
            deployment_version=deployment["release__version"],
        )
    groups = (
        Installation.objects.filter(current=True, **in_matrix)
        .order_by()
        .values("application_id", "environment_id", "artifact__version")
        .annotate(targets=Count("id"), newest=Max("deployment_id"))
    )
    newest: dict[tuple[int, int], int] = {}
    for group in groups:
        key = group["application_id"], group["environment_id"]
        cell = cells.setdefault(key, Cell())
        cell.targets += group["targets"]
        if group["newest"] > newest.get(key, 0):
            if cell.version:
                cell.other_versions += 1
            newest[key] = group["newest"]
            cell.version = group["artifact__version"]
        else:
            cell.other_versions += 1
    drifted = (
        Observation.objects.filter(drifted=True, **in_matrix).order_by().values_list("application_id", "environment_id")
    )
    for key in set(drifted):
        cells.setdefault(key, Cell()).drifted = True
    return cells
