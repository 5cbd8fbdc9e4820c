"""Installation records, written by the deployment engine as targets change, and drift: what targets report
they run, compared with those records."""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.catalog.models import Application, Artifact
from apps.core.errors import ValidationFailed
from apps.core.permissions import can, ensure_can
from apps.environments.models import Environment, Target
from apps.notifications.services import notify

from .models import Installation, Observation, Source

logger = logging.getLogger(__name__)


def _close_current(target_id: int, application_id: int, now) -> Installation | None:
    current = (
        Installation.objects.select_for_update()
        .filter(target_id=target_id, application_id=application_id, current=True)
        .order_by()  # the default ordering joins the target: lock this row only
        .first()
    )
    if current is not None:
        current.current, current.until = False, now
        current.save(update_fields=["current", "until"])
    return current


def record_installation(*, deployment, target_id: int, artifact_id: int) -> Installation:
    """`artifact` now runs on the target, installed by `deployment`; closes the record it replaces.
    Recording the same artifact by the same deployment again (a re-run step) changes nothing."""
    with transaction.atomic():
        now = timezone.now()
        application_id = Artifact.objects.values_list("application_id", flat=True).get(pk=artifact_id)
        current = (
            Installation.objects.select_for_update()
            .filter(target_id=target_id, application_id=application_id, current=True)
            .order_by()
            .first()
        )
        if current is not None and current.artifact_id == artifact_id and current.deployment_id == deployment.pk:
            return current
        replaced = _close_current(target_id, application_id, now)
        installation = Installation.objects.create(
            environment_id=deployment.environment_id,
            target_id=target_id,
            application_id=application_id,
            artifact_id=artifact_id,
            deployment=deployment,
            replaced=replaced,
            since=now,
        )
        _settle_observation(target_id, application_id)
        return installation


def record_deployed(deployment) -> None:
    """The deployment succeeded: every target its phases acted on runs its release now. Steps that install
    (release_dir) recorded their targets as they went; this records the others (shell, http...), so the
    inventory knows what any successful deployment put where."""
    artifacts = deployment.plan["release"]["artifacts"]
    if not artifacts:
        return
    names = {name for phase in deployment.plan["phases"] for name in phase.get("targets", [])}
    ids = [deployment.plan["targets"][name]["id"] for name in names if name in deployment.plan["targets"]]
    existing = Target.objects.filter(pk__in=ids, environment_id=deployment.environment_id)  # not deleted since
    for target_id in existing.order_by("pk").values_list("pk", flat=True):
        record_installation(deployment=deployment, target_id=target_id, artifact_id=artifacts[0]["id"])


def record_rollback(*, deployment, target_id: int) -> Installation | None:
    """The deployment's installation on the target was undone: what it replaced runs again (a new record,
    so the timeline shows the rollback); nothing runs there when it replaced nothing. Recording the same
    rollback twice (two undone steps, a re-run) changes nothing."""
    with transaction.atomic():
        now = timezone.now()
        application_id = deployment.application_id
        mine = (
            Installation.objects.filter(target_id=target_id, deployment=deployment, application_id=application_id)
            .select_related("replaced")
            .order_by("since", "id")
            .first()
        )
        current = Installation.objects.filter(target_id=target_id, application_id=application_id, current=True).first()
        if mine is None or current is None or current.deployment_id != deployment.pk:
            return None  # nothing installed by this deployment runs there (any more)
        if current.pk != mine.pk:
            return current  # restored already
        _close_current(target_id, application_id, now)
        restored = None
        if mine.replaced is not None:
            restored = Installation.objects.create(
                environment_id=deployment.environment_id,
                target_id=target_id,
                application_id=application_id,
                artifact_id=mine.replaced.artifact_id,
                deployment=deployment,
                replaced=mine,
                since=now,
            )
        _settle_observation(target_id, application_id)
        return restored


# --- Drift -----------------------------------------------------------------------------------------------


def _matches(observation: Observation, artifact: Artifact) -> bool:
    """The target runs `artifact` by what it said: the digest decides when it sent one, else the version."""
    if observation.digest:
        return observation.digest == artifact.digest
    return observation.version == artifact.version


def _compare(observation: Observation) -> None:
    """Compare the observation with the target's installation record and save it when anything changed; a
    change of the verdict is audited, and a new drift is announced to the environment's subscribers.

    A reading older than the installation (taken before the last deployment) proves nothing: it is not
    drift, the next reading decides."""
    installation = (
        Installation.objects.filter(
            target_id=observation.target_id, application_id=observation.application_id, current=True
        )
        .select_related("artifact")
        .first()
    )
    expected = installation.artifact if installation else None
    if installation is not None:
        changed_at = installation.since
    else:  # a rollback may have left nothing: its end is the last change
        changed_at = (
            Installation.objects.filter(target_id=observation.target_id, application_id=observation.application_id)
            .order_by(F("until").desc(nulls_last=True))
            .values_list("until", flat=True)
            .first()
        )
    stale = changed_at is not None and observation.observed_at < changed_at
    drifted = not stale and (expected is None or not _matches(observation, expected))
    was = observation.drifted
    changed = drifted != was or observation.expected_id != (expected and expected.pk)
    observation.expected, observation.drifted = expected, drifted
    if drifted and not was:
        observation.drifted_since = observation.observed_at
    elif not drifted:
        observation.drifted_since = None
    if changed:
        observation.save()
    if drifted == was:
        return
    target, environment = observation.target, observation.environment
    recorded = expected.version if expected else "nothing"
    summary = (
        f"{target.name} in {environment.name} runs {observation.application.slug} {observation.observed}; "
        f"recorded: {recorded}"
        if drifted
        else f"{target.name} in {environment.name}: {observation.application.slug} "
        + ("was deployed again since the differing reading" if stale else "runs as recorded again")
    )
    details = {
        "environment": environment.slug,
        "target": target.name,
        "application": observation.application.slug,
        "reported": {"version": observation.version, "digest": observation.digest, "source": observation.source},
        "recorded": {"version": expected.version, "digest": expected.digest} if expected else None,
    }
    audit_record(verb="drift.detected" if drifted else "drift.cleared", target=target, summary=summary, details=details)
    if drifted:
        notify(
            "drift.detected",
            environment=environment,
            subject=f"Drift in {environment.name}: {target.name}",
            body=summary + ". Someone or something changed the target outside ReleaseHub.",
            url=reverse("inventory:environment", args=[environment.slug]),
            data=details,
        )


def _settle_observation(target_id: int, application_id: int) -> None:
    """A deployment changed what the target should run: compare its last reading again."""
    observation = (
        Observation.objects.select_for_update(of=("self",))
        .filter(target_id=target_id, application_id=application_id)
        .select_related("target", "environment", "application", "expected")
        .first()
    )
    if observation is not None:
        _compare(observation)


def _observe(
    *, target: Target, application: Application, version: str, digest: str, source: str, actor: User | None
) -> tuple[Observation, bool]:
    """Record a reading of the target, compare it, and say whether it differs from the previous reading."""
    now = timezone.now()
    reading = {"version": version, "digest": digest, "source": source, "reported_by": actor}
    observation, created = Observation.objects.select_for_update().get_or_create(
        target=target,
        application=application,
        defaults={"environment": target.environment, "observed_at": now, **reading},
    )
    observation.target, observation.environment, observation.application = target, target.environment, application
    news = created or any(getattr(observation, key) != value for key, value in reading.items())
    for key, value in reading.items():
        setattr(observation, key, value)
    observation.observed_at = now
    if not created and news:
        observation.save()
    elif not news:  # the same reading again: no history row for it
        Observation.objects.filter(pk=observation.pk).update(observed_at=now)
    _compare(observation)
    return observation, news


def target_report(
    *,
    actor: User,
    environment: Environment,
    target: Target,
    application: Application,
    version: str = "",
    digest: str = "",
) -> Observation:
    """The target says it runs `version` (or the build with `digest`) of the application: record the reading
    and flag the target when it differs from the installation record. Needs `deploy` on the environment."""
    ensure_can(actor, "deploy", environment)
    if not can(actor, "view", application):
        raise ValidationFailed(fields={"application": [f"No such application: {application.slug!r}."]})
    if not version and not digest:
        raise ValidationFailed(fields={"version": ["Give the version or the digest the target runs."]})
    with transaction.atomic():
        observation, news = _observe(
            target=target, application=application, version=version, digest=digest, source=Source.REPORT, actor=actor
        )
        if news:
            audit_record(
                verb="target.reported",
                target=target,
                summary=f"{target.name} in {environment.name} runs {application.slug} {observation.observed}",
                details={"application": application.slug, "version": version, "digest": digest},
            )
    return observation


@dataclass
class Reading:
    """One target's health check read for drift: what it said (or why nothing could be read)."""

    target: Target
    observation: Observation | None = None
    problem: str = ""


HEALTH_BODY_LIMIT = 4096
HEALTH_READERS = 16
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$")


def _fetch(url: str) -> tuple[int, str] | str:
    """(status, the body's first HEALTH_BODY_LIMIT bytes) of a GET, or why there is none."""
    try:
        with requests.get(
            url, timeout=settings.DRIFT_CHECK_TIMEOUT, headers={"Accept": "application/json"}, stream=True
        ) as response:
            body = response.raw.read(HEALTH_BODY_LIMIT, decode_content=True)
            return response.status_code, body.decode(response.encoding or "utf-8", errors="replace")
    except (requests.RequestException, OSError) as exc:
        return f"unreachable: {exc.__class__.__name__}"


def _reading(target: Target, answer: tuple[int, str] | str, installed: dict[int, list[Application]]):
    """(application, version, digest) from a health check answer, or why there is none. The URL answers JSON
    with `version` and/or `digest` (and `application` when the target runs several), or the bare version as
    text."""
    if isinstance(answer, str):
        return answer
    status, text = answer
    if status >= 400:
        return f"answered {status}"
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):  # the bare version as text: one with a digit ("ok" or "UP" says nothing)
        body = {"version": text.strip()} if any(c.isdigit() for c in text) else {}
    version, digest = str(body.get("version") or ""), str(body.get("digest") or "")
    if (version and not VERSION.match(version)) or (digest and not DIGEST.match(digest)):
        return "the version or digest in the answer is not one"
    if not version and not digest:
        return "no version in the answer"
    applications = installed.get(target.pk, [])
    named = str(body.get("application") or "")
    if named:
        application = next((a for a in applications if a.slug == named), None)
        if application is None:
            return f"{named!r} is not recorded on this target"
    elif len(applications) == 1:
        application = applications[0]
    else:
        return "the answer does not name the application" if applications else "nothing recorded to compare with"
    return application, version, digest


def drift_check(*, actor: User | None, environment: Environment) -> list[Reading]:
    """Read the version every target of the environment with a health check URL serves, compare each reading
    (and each reported one) with the installation records, and return what was read. People need `deploy`
    on the environment; the periodic task runs as the system."""
    if actor is not None:
        ensure_can(actor, "deploy", environment)
    installed: dict[int, list[Application]] = {}
    for installation in Installation.objects.filter(environment=environment, current=True).select_related(
        "application"
    ):
        installed.setdefault(installation.target_id, []).append(installation.application)
    targets = list(environment.targets.exclude(health_check_url="").order_by("name"))
    with ThreadPoolExecutor(max_workers=HEALTH_READERS) as pool:  # outside any transaction: URLs may be slow
        answers = list(pool.map(_fetch, [target.health_check_url for target in targets]))
    readings = []
    for target, fetched in zip(targets, answers, strict=True):
        answer = _reading(target, fetched, installed)
        if isinstance(answer, str):
            readings.append(Reading(target, problem=answer))
            continue
        application, version, digest = answer
        with transaction.atomic():
            observation, _ = _observe(
                target=target,
                application=application,
                version=version,
                digest=digest,
                source=Source.HEALTH_CHECK,
                actor=actor,
            )
        readings.append(Reading(target, observation))
    with transaction.atomic():  # reported readings: the record may have changed since
        for observation in (
            Observation.objects.select_for_update(of=("self",))
            .filter(environment=environment, source=Source.REPORT)
            .select_related("target", "environment", "application", "expected")
        ):
            _compare(observation)
        if actor is not None:
            drifted = sum(1 for r in readings if r.observation and r.observation.drifted)
            audit_record(
                verb="drift.checked",
                target=environment,
                summary=f"Drift check of {environment.name}: {len(readings)} target(s) read, {drifted} drifted",
                details={"read": len(readings), "drifted": drifted},
            )
    return readings


def drift_check_all() -> int:
    """The periodic drift check of every environment whose targets have health check URLs or reported
    readings, as the system; returns how many readings differ. One environment's failure is logged and does not
    keep the others unchecked."""
    reported = Observation.objects.values("environment_id")
    environments = Environment.objects.filter(Q(targets__health_check_url__gt="") | Q(pk__in=reported)).distinct()
    drifted = 0
    for environment in environments.order_by("pk"):
        try:
            readings = drift_check(actor=None, environment=environment)
        except Exception:  # one environment must not keep the others unchecked
            logger.exception("drift check of %s failed", environment.slug)
            continue
        drifted += sum(1 for r in readings if r.observation and r.observation.drifted)
    return drifted
