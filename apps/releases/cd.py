"""Continuous deployment: a registered build that matches a CD trigger of its application becomes a
release, deployed to the first stage of the trigger's lifecycle; automatic stages follow by themselves
(apps.releases.lifecycle)."""

from __future__ import annotations

import fnmatch

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.catalog.models import Artifact, CdTrigger
from apps.core.errors import ReleaseHubError

from . import lifecycle
from .models import Release
from .services import release_create


def matching_trigger(artifact: Artifact) -> CdTrigger | None:
    """The first active trigger of the artifact's application whose pattern matches its branch."""
    if not artifact.branch:
        return None
    triggers = CdTrigger.objects.filter(application_id=artifact.application_id, active=True).select_related("lifecycle")
    return next((t for t in triggers if fnmatch.fnmatchcase(artifact.branch, t.branch_pattern)), None)


def on_registered(artifact: Artifact, *, actor: User) -> Release | None:
    """After a new artifact is registered (its transaction committed): run the matching trigger. The
    release is created as the registering user (channel `api`); its first deployments follow in a worker."""
    trigger = matching_trigger(artifact)
    if trigger is None:
        return None
    try:
        with transaction.atomic():
            release = release_create(
                actor=actor, application=artifact.application, artifacts=[artifact], lifecycle=trigger.lifecycle
            )
            audit_record(
                verb="cd.triggered",
                target=release,
                actor=actor,
                details={
                    "branch": artifact.branch,
                    "pattern": trigger.branch_pattern,
                    "lifecycle": trigger.lifecycle.slug,
                },
            )
            from .tasks import deploy_first_stage

            transaction.on_commit(lambda: deploy_first_stage.delay(release.pk, actor.pk if actor else None))
    except ReleaseHubError as exc:  # e.g. a release of this version exists already: the build stays registered
        audit_record(
            verb="cd.skipped",
            target=artifact,
            actor=actor,
            details={"branch": artifact.branch, "error": exc.detail, "fields": exc.fields},
        )
        return None
    return release


def deploy_first_stage(release_id: int, requested_by_id: int | None) -> int:
    release = Release.objects.select_related("application", "lifecycle").get(pk=release_id)
    requested_by = User.objects.filter(pk=requested_by_id).first() if requested_by_id else None
    stages = lifecycle.stages_of(release)
    if not stages:
        return 0
    made = 0
    for environment in stages[0].environments.all():
        try:
            with transaction.atomic():
                lifecycle.deploy(requested_by=requested_by, release=release, environment=environment)
            made += 1
        except ReleaseHubError as exc:
            audit_record(
                verb="promotion.failed",
                target=release,
                details={"environment": environment.slug, "error": exc.detail, "fields": exc.fields},
            )
    return made
