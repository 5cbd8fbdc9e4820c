from django.db.models import Count, QuerySet

from apps.core.permissions import restrict

from .models import Application, Artifact


def applications_visible_to(user, action: str = "view") -> QuerySet[Application]:
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
