"""Writes for applications, artifacts and application access. Each audits itself."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, Team, User
from apps.accounts.services import object_access_set, team_grant
from apps.audit.services import audit_record
from apps.core.changes import apply_changes, validated_save
from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.core.permissions import ensure_can, with_permission
from apps.environments.validators import check_slug_available

from .models import Application, Artifact, CdTrigger
from .versions import version_sort_key

# What the owner team of a new application may do with it at once.
OWNER_ACTIONS = ("view", "register", "manage")
APPLICATION_FIELDS = {"name", "description", "owner_team", "repository_url", "default_template", "lifecycle"}


def _ensure_manage(actor: User | None, application: Application) -> None:
    """`manage` on the application; `actor=None` is the system (commands, seed data)."""
    if actor is not None:
        ensure_can(actor, "manage", application)


def application_create(*, actor: User | None, slug: str, name: str, owner_team: Team, **fields: Any) -> Application:
    """Create an application; its owner team may view it, register artifacts and manage it.

    Raises PermissionDenied (no add_application), ValidationFailed, Conflict (slug taken).
    """
    if actor is not None and not actor.has_perm("catalog.add_application"):
        raise PermissionDenied("You may not create applications; ask an administrator.")
    unknown = set(fields) - APPLICATION_FIELDS
    if unknown:
        raise ValidationFailed(fields={field: ["Unknown field."] for field in sorted(unknown)})
    check_slug_available(slug)
    application = Application(slug=slug, name=name, owner_team=owner_team, **fields)
    with transaction.atomic():
        validated_save(application, conflict=f"An application with slug {slug!r} exists already.")
        for action in OWNER_ACTIONS:
            team_grant(team=owner_team, perm=f"catalog.{action}_application", obj=application, actor=actor)
        audit_record(
            verb="application.created", target=application, actor=actor, details={"owner_team": owner_team.slug}
        )
    return application


def application_update(*, actor: User | None, application: Application, **changes: Any) -> Application:
    """Change an application's fields (not its slug). Raises NotFound, PermissionDenied, ValidationFailed."""
    _ensure_manage(actor, application)
    unknown = set(changes) - APPLICATION_FIELDS
    if unknown:
        raise ValidationFailed(fields={field: ["This field cannot be changed."] for field in sorted(unknown)})
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=application.pk)
        diff = apply_changes(application, changes)
        if diff:
            validated_save(application)
            audit_record(verb="application.updated", target=application, actor=actor, details={"changes": diff})
    return application


def application_delete(*, actor: User | None, application: Application) -> None:
    """Delete an application without artifacts. Raises NotFound, PermissionDenied, Conflict."""
    _ensure_manage(actor, application)
    with transaction.atomic():
        # Locked, so no artifact can be registered between the check and the delete.
        application = Application.objects.select_for_update().get(pk=application.pk)
        if application.artifacts.exists():
            raise Conflict("Applications with registered artifacts are kept: their artifacts are the record.")
        audit_record(verb="application.deleted", target=application, actor=actor, details={"slug": application.slug})
        application.delete()


def application_grant(*, actor: User | None, application: Application, team: Team, action: str) -> None:
    """Grant `action` on the application to `team` (accounts.services.object_access_set)."""
    object_access_set(actor=actor, obj=application, team=team, action=action, granted=True)


def application_revoke(*, actor: User | None, application: Application, team: Team, action: str) -> None:
    """Withdraw `action` on the application from `team`; the last managing team keeps `manage`."""
    object_access_set(actor=actor, obj=application, team=team, action=action, granted=False)


def artifact_register(
    *,
    actor: User,
    application: str,
    version: str,
    digest: str,
    uri: str,
    commit: str = "",
    branch: str = "",
    build_url: str = "",
    labels: dict | None = None,
    token: ApiToken | None = None,
) -> tuple[Artifact, bool]:
    """Register a build of `application` (a slug); returns (artifact, created).

    Idempotent: the same version with the same digest returns the stored artifact
    (created=False). Raises ValidationFailed (unknown application, bad fields),
    PermissionDenied (no `register` permission), Conflict (the version exists with another
    digest; the attempt is audited, since it may be an attempt to replace a build).
    """
    # CI's hot path: both permission checks in the query that reads the application.
    apps = Application.objects.filter(slug=application)
    app = with_permission(with_permission(apps, actor, "view", "may_view"), actor, "register", "may_register").first()
    if app is None or not (app.may_view or app.may_register):
        raise ValidationFailed(fields={"application": [f"Unknown application {application!r}."]})
    if not app.may_register:
        raise PermissionDenied(f"You may not register artifacts of {app.slug}.")
    now = timezone.now()
    artifact = Artifact(
        application=app,
        version=version,
        digest=digest,
        uri=uri,
        commit=commit,
        branch=branch,
        build_url=build_url,
        labels=labels if labels is not None else {},
        registered_at=now,
        registered_by=actor,
        registered_token=token,
        version_key=version_sort_key(version, now),
    )
    _validate_artifact(artifact)
    existing = (
        Artifact.objects.select_related("application", "registered_by", "registered_token")
        .filter(application=app, version=version)
        .first()
    )
    if existing is None:
        try:
            with transaction.atomic():
                artifact.save(force_insert=True)
                audit_record(
                    verb="artifact.registered",
                    target=artifact,
                    actor=actor,
                    token=token,
                    summary=str(artifact),
                    details={"application": app.slug, "version": version, "digest": digest, "branch": branch},
                )
            if branch:
                from apps.releases.cd import on_registered  # CD builds on the catalog

                on_registered(artifact, actor=actor)
            return artifact, True
        except IntegrityError:
            # Another request registered this version between our read and our insert.
            existing = Artifact.objects.get(application=app, version=version)
    if existing.digest == digest:
        return existing, False
    audit_record(
        verb="artifact.digest_mismatch",
        target=existing,
        actor=actor,
        token=token,
        summary=str(existing),
        details={"version": version, "registered_digest": existing.digest, "offered_digest": digest},
    )
    raise Conflict(
        f"{app.slug} {version} is registered with digest {existing.digest}; versions are immutable.",
        fields={"digest": ["Differs from the registered build of this version."]},
    )


def _validate_artifact(artifact: Artifact) -> None:
    try:
        artifact.full_clean(exclude=["application", "registered_by", "registered_token"], validate_unique=False)
    except ValidationError as exc:
        raise ValidationFailed(fields={f: list(m) for f, m in exc.message_dict.items()}) from exc


# --- CD triggers -----------------------------------------------------------------------------------------

TRIGGER_FIELDS = {"branch_pattern", "lifecycle", "position", "active"}


def _validate_pattern(pattern) -> str:
    if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 255 or any(c.isspace() for c in pattern):
        raise ValidationFailed(fields={"branch_pattern": ["A glob without spaces, such as main or release/*."]})
    return pattern.strip()


def trigger_create(
    *, actor: User | None, application: Application, branch_pattern: str, lifecycle, position: int = 0, active=True
) -> CdTrigger:
    """A CD trigger of the application (`manage` on it): builds of matching branches become releases that
    are deployed through `lifecycle`."""
    _ensure_manage(actor, application)
    trigger = CdTrigger(
        application=application,
        branch_pattern=_validate_pattern(branch_pattern),
        lifecycle=lifecycle,
        position=position,
        active=active,
    )
    with transaction.atomic():
        validated_save(trigger)
        audit_record(
            verb="cd_trigger.created",
            target=trigger,
            actor=actor,
            details={
                "application": application.slug,
                "branch_pattern": trigger.branch_pattern,
                "lifecycle": lifecycle.slug,
            },
        )
    return trigger


def trigger_update(*, actor: User | None, trigger: CdTrigger, **changes: Any) -> CdTrigger:
    _ensure_manage(actor, trigger.application)
    unknown = set(changes) - TRIGGER_FIELDS
    if unknown:
        raise ValidationFailed(fields={field: ["This field cannot be changed."] for field in sorted(unknown)})
    if "branch_pattern" in changes:
        changes["branch_pattern"] = _validate_pattern(changes["branch_pattern"])
    with transaction.atomic():
        trigger = CdTrigger.objects.select_for_update().get(pk=trigger.pk)
        diff = apply_changes(trigger, changes)
        if diff:
            validated_save(trigger)
            audit_record(verb="cd_trigger.updated", target=trigger, actor=actor, details={"changes": diff})
    return trigger


def trigger_delete(*, actor: User | None, trigger: CdTrigger) -> None:
    _ensure_manage(actor, trigger.application)
    with transaction.atomic():
        audit_record(
            verb="cd_trigger.deleted",
            target=trigger,
            actor=actor,
            details={"application": trigger.application.slug, "branch_pattern": trigger.branch_pattern},
        )
        trigger.delete()
