from django.db.models import Count, Max, OuterRef, QuerySet, Subquery

from apps.accounts.models import Team
from apps.core.history import HistoryEntry, history_entries, newest_first
from apps.core.permissions import restrict

from .models import Application, Artifact


def applications_visible_to(user, action: str = "view") -> QuerySet[Application]:
    """Applications the user may view (or perform `action` on), by name."""
    return restrict(Application.objects.select_related("owner_team"), user, action).order_by("name")


def applications_with_counts(user) -> QuerySet[Application]:
    """Visible applications with their number of artifacts (one query)."""
    return applications_visible_to(user).annotate(artifact_count=Count("artifacts"))


def artifacts_visible_to(user) -> QuerySet[Artifact]:
    """Artifacts inherit visibility from their application; newest version first."""
    return (
        Artifact.objects.filter(application__in=restrict(Application.objects.all(), user))
        .select_related("application", "registered_by", "registered_token")
        .order_by("application__slug", "-version_key")
    )


# --- Pages ---------------------------------------------------------------------------------------


def applications_overview(user) -> QuerySet[Application]:
    """Visible applications with `artifact_count`, `latest_version` (highest version) and
    `last_registered_at` (one query)."""
    latest = Artifact.objects.filter(application=OuterRef("pk")).order_by("-version_key").values("version")[:1]
    return applications_with_counts(user).annotate(
        latest_version=Subquery(latest), last_registered_at=Max("artifacts__registered_at")
    )


def branches_of(application: Application) -> list[str]:
    """The branches the application's artifacts were built from, sorted (one query, served by an index)."""
    return list(
        Artifact.objects.filter(application=application)
        .exclude(branch="")
        .order_by("branch")
        .values_list("branch", flat=True)
        .distinct()
    )


def application_history(application: Application) -> list[HistoryEntry]:
    """The application's history rows, newest first, each with what it changed (two queries)."""
    rows = list(Application.history.filter(id=application.pk).select_related("history_user"))
    team_ids = {row.owner_team_id for row in rows}
    teams = {team.pk: team.name for team in Team.objects.filter(pk__in=team_ids)} if team_ids else {}

    def shown(field_name, value):
        return teams.get(value, value) if field_name == "owner_team" else value

    return newest_first(history_entries(rows, subject="application", label=lambda r: r.name, values=shown))
