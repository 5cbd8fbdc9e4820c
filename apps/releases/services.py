"""Writes of releases: create, change (notes, artifact list) and delete. Each checks, locks and audits itself.

Who may: `register` on the release's application (CI holds it, and so do the application's
release managers). A release that a deployment used never changes again: its deployments'
plans and approvals describe exactly its artifacts.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.catalog.models import VERSION, Application, Artifact
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import restrict, with_permission
from apps.environments.models import Lifecycle

from .models import Release, ReleaseArtifact
from .selectors import release_in_use

MAX_ARTIFACTS = 20
NOTES_MAX_LENGTH = 10_000
# Ids beyond the database's 64-bit integers cannot exist (and would overflow the query parameter).
_MAX_ID = 2**63 - 1


def _application_of(actor: User | None, application: Application | str) -> Application:
    """The application (an object or a slug) with `may_view` and `may_register` for `actor`, read in one query.

    Raises ValidationFailed naming `application` when it does not exist or the actor may not see it
    (the same answer for both), PermissionDenied when the actor sees it but may not register.
    """
    if isinstance(application, Application):
        apps, name = Application.objects.filter(pk=application.pk), application.slug
    else:
        apps, name = Application.objects.filter(slug=application), application
    app = with_permission(with_permission(apps, actor, "view", "may_view"), actor, "register", "may_register").first()
    if actor is None and app is not None:  # the system (CD triggers, commands, seed data)
        app.may_view = app.may_register = True
    if app is None or not (app.may_view or app.may_register):
        raise ValidationFailed(fields={"application": [f"Unknown application {name!r}."]})
    if not app.may_register:
        raise PermissionDenied(f"You may not create releases of {app.slug}; that needs `register` on it.")
    return app


def _ensure_may_change(actor: User | None, release: Release) -> None:
    """`register` on the release's application. Raises NotFound (the actor may not view the release) or
    PermissionDenied (may view it but not change it)."""
    if actor is None:
        return
    apps = Application.objects.filter(pk=release.application_id)
    app = with_permission(with_permission(apps, actor, "view", "may_view"), actor, "register", "may_register").get()
    if not app.may_view:
        raise NotFound("No such release.")
    if not app.may_register:
        raise PermissionDenied(f"You may not change releases of {app.slug}; that needs `register` on it.")


def _resolve_artifacts(actor: User | None, app: Application, artifacts: Sequence) -> tuple[list[Artifact], list[str]]:
    """The artifacts (ids or Artifact objects) in the given order, and what is wrong with the list.

    Each must exist, be an artifact of `app` and appear once; an artifact the actor may not see reads as
    unknown, like an id that does not exist. Two queries at most.
    """
    if isinstance(artifacts, str | bytes) or not isinstance(artifacts, Sequence):
        return [], ["Give a list of artifact ids."]
    ids = [item.pk if isinstance(item, Artifact) else item for item in artifacts]
    if not ids:
        return [], ["Give at least one artifact; the first is the release's primary artifact."]
    if len(ids) > MAX_ARTIFACTS:
        return [], [f"A release holds at most {MAX_ARTIFACTS} artifacts; {len(ids)} given."]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return [], ["Artifact ids are whole numbers."]
    errors = [f"Artifact {i} is listed more than once." for i in sorted({i for i in ids if ids.count(i) > 1})]
    found = {
        artifact.pk: artifact
        for artifact in Artifact.objects.filter(pk__in=[i for i in ids if 0 < i <= _MAX_ID]).select_related(
            "application"
        )
    }
    foreign = {artifact.application_id for artifact in found.values() if artifact.application_id != app.pk}
    if not foreign:
        seen_apps: set[int] = set()
    elif actor is None:
        seen_apps = foreign
    else:
        seen_apps = set(restrict(Application.objects.filter(pk__in=foreign), actor).values_list("pk", flat=True))
    for i in dict.fromkeys(ids):
        artifact = found.get(i)
        if artifact is None or (artifact.application_id != app.pk and artifact.application_id not in seen_apps):
            errors.append(f"Unknown artifact {i}.")
        elif artifact.application_id != app.pk:
            errors.append(f"Artifact {i} is {artifact}, not an artifact of {app.slug}.")
    return [found[i] for i in ids if i in found], errors


def _notes_errors(notes) -> list[str]:
    if not isinstance(notes, str):
        return ["Notes are text."]
    if "\x00" in notes:  # PostgreSQL refuses NUL in text
        return ["Null characters are not allowed."]
    if len(notes) > NOTES_MAX_LENGTH:
        return [f"At most {NOTES_MAX_LENGTH} characters ({len(notes)} given)."]
    return []


def _version_errors(version: str) -> list[str]:
    try:
        VERSION(version)
    except ValidationError as exc:
        return list(exc.messages)
    return []


def _duplicate(app: Application, version: str) -> Conflict:
    return Conflict(
        f"{app.slug} has a release {version} already; release versions are unique per application.",
        fields={"version": [f"{app.slug} has a release {version} already."]},
    )


def _in_use(release: Release) -> Conflict:
    return Conflict(f"Release {release} is used by deployment(s); releases are immutable once deployed.")


def _locked(release: Release) -> Release:
    """The release read again under a row lock (its application joined, not locked); NotFound if it is gone."""
    try:
        return Release.objects.select_for_update(of=("self",)).select_related("application").get(pk=release.pk)
    except Release.DoesNotExist:
        raise NotFound("No such release.") from None


def release_create(
    *,
    actor: User | None,
    application: Application | str,
    artifacts: Sequence[int | Artifact],
    version: str = "",
    notes: str = "",
    lifecycle: Lifecycle | None = None,
) -> Release:
    """Create a release of `application` (an object or a slug) bundling `artifacts` in the given order.

    The first artifact is the primary one; a blank `version` defaults to its version. It goes through
    `lifecycle` (a CD trigger's), or else its application's. `actor=None` is the system. Records
    `release.created`. Raises ValidationFailed (unknown or invisible
    application, a bad version, notes or artifact list: `fields` names which), PermissionDenied (no
    `register` on the application), Conflict (the application has a release of this version).
    """
    app = _application_of(actor, application)
    chosen, artifact_errors = _resolve_artifacts(actor, app, artifacts)
    errors: dict[str, list[str]] = {}
    if artifact_errors:
        errors["artifacts"] = artifact_errors
    if not isinstance(version, str):
        errors["version"] = ["A version is text, such as 1.4.2."]
    else:
        version = version.strip()
        if not version and chosen and not artifact_errors:
            version = chosen[0].version  # the primary artifact's
        # A blank version with a bad artifact list: the list's error says what to fix.
        if (version or not artifact_errors) and (version_errors := _version_errors(version)):
            errors["version"] = version_errors
    if notes_errors := _notes_errors(notes):
        errors["notes"] = notes_errors
    if errors:
        raise ValidationFailed(fields=errors)
    if Release.objects.filter(application=app, version=version).exists():
        raise _duplicate(app, version)
    release = Release(
        application=app, version=version, notes=notes, created_by=actor, lifecycle=lifecycle or app.lifecycle
    )
    try:
        with transaction.atomic():
            release.save(force_insert=True)
            for position, artifact in enumerate(chosen):
                ReleaseArtifact.objects.create(release=release, artifact=artifact, position=position)
            audit_record(
                verb="release.created",
                target=release,
                actor=actor,
                details={
                    "application": app.slug,
                    "version": version,
                    "artifacts": [a.version for a in chosen],
                    "lifecycle": release.lifecycle.slug if release.lifecycle else None,
                },
            )
    except IntegrityError as exc:
        # Another request created this version between our check and our insert.
        raise _duplicate(app, version) from exc
    return release


def release_update(
    *,
    actor: User | None,
    release: Release,
    notes: str | None = None,
    artifacts: Sequence[int | Artifact] | None = None,
) -> Release:
    """Change a release's notes and/or its artifact list (None: unchanged), under a row lock.

    Records `release.updated` with the changes, unless nothing changed. Raises NotFound,
    PermissionDenied (no `register` on the application), ValidationFailed, Conflict (a deployment used
    the release).
    """
    _ensure_may_change(actor, release)
    with transaction.atomic():
        release = _locked(release)
        if release_in_use(release):
            raise _in_use(release)
        errors: dict[str, list[str]] = {}
        if notes is not None and (notes_errors := _notes_errors(notes)):
            errors["notes"] = notes_errors
        rows = list(release.release_artifacts.select_related("artifact").order_by("position"))
        chosen = [row.artifact for row in rows]
        if artifacts is not None:
            chosen, artifact_errors = _resolve_artifacts(actor, release.application, artifacts)
            if artifact_errors:
                errors["artifacts"] = artifact_errors
        if errors:
            raise ValidationFailed(fields=errors)
        changes: dict[str, list] = {}
        if notes is not None and notes != release.notes:
            changes["notes"] = [release.notes, notes]
            release.notes = notes
        if [a.pk for a in chosen] != [row.artifact_id for row in rows]:
            changes["artifacts"] = [[row.artifact.version for row in rows], [a.version for a in chosen]]
            _replace_artifacts(release, rows, chosen)
        if changes:
            release.save()
            audit_record(verb="release.updated", target=release, actor=actor, details={"changes": changes})
    return release


def _replace_artifacts(release: Release, rows: list[ReleaseArtifact], chosen: list[Artifact]) -> None:
    """Make the release's artifact list `chosen`, touching only the positions that change (each row saved or
    deleted on its own, so history records it). Deletes come first: the list is unique per artifact."""
    for row in rows:
        if row.position >= len(chosen) or chosen[row.position].pk != row.artifact_id:
            row.delete()
    kept = {row.position for row in rows if row.position < len(chosen) and chosen[row.position].pk == row.artifact_id}
    for position, artifact in enumerate(chosen):
        if position not in kept:
            ReleaseArtifact.objects.create(release=release, artifact=artifact, position=position)


def release_delete(*, actor: User | None, release: Release) -> None:
    """Delete a release that no deployment used, with its artifact list (the artifacts stay).

    Records `release.deleted`. Raises NotFound, PermissionDenied, Conflict (a deployment used it).
    """
    _ensure_may_change(actor, release)
    with transaction.atomic():
        release = _locked(release)
        if release_in_use(release):
            raise _in_use(release)
        audit_record(
            verb="release.deleted",
            target=release,
            actor=actor,
            details={"application": release.application.slug, "version": release.version},
        )
        release.delete()
