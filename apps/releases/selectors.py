"""Reads of releases: permission-filtered, with their artifacts in order and whether a deployment used them."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils.text import Truncator

from apps.catalog.models import Application, Artifact
from apps.core.errors import NotFound
from apps.core.history import HistoryEntry, history_entries, newest_first
from apps.core.permissions import restrict
from apps.deployments.models import Deployment

from .models import Release, ReleaseArtifact

# The artifacts offered by the release form: the application's newest versions.
FORM_ARTIFACT_CHOICES = 50
# Characters of the notes a history row shows (the history table keeps one line per field).
NOTES_SHOWN_IN_HISTORY = 40


def with_details(qs: QuerySet[Release]) -> QuerySet[Release]:
    """`qs` with what every list and page shows, in a constant number of queries: the application and
    creator (joined), the artifacts in release order (one prefetch query, as `release_artifacts`), and
    `in_use` (whether a deployment used the release; an EXISTS subquery per row, no extra query)."""
    in_use = Exists(Deployment.objects.filter(release=OuterRef("pk")))
    ordered = ReleaseArtifact.objects.select_related("artifact").order_by("position")
    return (
        qs.select_related("application", "created_by")
        .prefetch_related(Prefetch("release_artifacts", queryset=ordered))
        .annotate(in_use=in_use)
    )


def releases_visible_to(user) -> QuerySet[Release]:
    """Releases inherit visibility from their application (`view` on it); newest first."""
    visible = Release.objects.filter(application__in=restrict(Application.objects.all(), user))
    return with_details(visible).order_by("-created_at", "-id")


def release_for(user, pk) -> Release:
    """The release with its details if `user` may view it. Raises NotFound otherwise, and for ids that
    are not numbers (its existence stays hidden)."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound("No such release.") from None
    release = releases_visible_to(user).filter(pk=pk).first()
    if release is None:
        raise NotFound("No such release.")
    return release


def release_reloaded(release: Release) -> Release:
    """The release read again with `with_details` (after a write), whoever may view it."""
    return with_details(Release.objects.filter(pk=release.pk)).get()


def release_in_use(release: Release) -> bool:
    """Whether a deployment used the release: its artifacts are then fixed (plans and approvals describe them)."""
    return release.deployments.exists()


def release_artifacts(release: Release) -> list[Artifact]:
    """The release's artifacts in order; the first is the primary one. Uses the prefetch of `with_details`."""
    return [row.artifact for row in release.release_artifacts.all()]


# --- Pages -------------------------------------------------------------------------------------------


def applications_for_releases(user) -> QuerySet[Application]:
    """Applications the user may create releases of (`register` on them) and may view, by name."""
    return restrict(restrict(Application.objects.all(), user), user, "register").order_by("name")


def artifact_choices(application: Application, limit: int = FORM_ARTIFACT_CHOICES) -> list[Artifact]:
    """The application's newest artifacts (highest version first), for the release form (one query)."""
    return list(Artifact.objects.filter(application=application).order_by("-version_key")[:limit])


def release_history(release: Release) -> list[HistoryEntry]:
    """The release's history rows and those of its artifact list (also removed entries), newest first; positions
    counted from 1 and notes shortened, as the pages show them.

    Three queries whatever the rows: the release rows, the artifact-list rows, the artifacts they name.
    """
    release_rows = list(Release.history.filter(id=release.pk).select_related("history_user"))
    entry_rows = list(ReleaseArtifact.history.filter(release_id=release.pk).select_related("history_user"))
    artifact_ids = {row.artifact_id for row in entry_rows}
    versions = dict(Artifact.objects.filter(pk__in=artifact_ids).values_list("pk", "version")) if artifact_ids else {}
    slugs = {release.application_id: release.application.slug}

    def shown(field_name, value):
        if field_name == "application":
            return slugs.get(value, value)
        if field_name == "artifact":
            return versions.get(value, value)
        if field_name == "position":  # shown from 1, as on the release page
            return value + 1
        if field_name == "notes":  # in full on the release page and in the audit event
            return Truncator(value).chars(NOTES_SHOWN_IN_HISTORY)
        return value

    def entry_label(row) -> str:
        return f"#{row.position + 1} {versions.get(row.artifact_id, row.artifact_id)}"

    release_entries = history_entries(release_rows, subject="release", label=lambda r: r.version, values=shown)
    return newest_first(
        [
            # A change of the artifact list only saves the release for its updated_at: its own rows say what changed.
            *[e for e in release_entries if e.kind != "changed" or e.changes],
            *history_entries(
                entry_rows, subject="artifact", label=entry_label, values=shown, skip=frozenset({"release"})
            ),
        ]
    )
