import logging
import os
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import JsonResponse
from django.utils import timezone
from django.views import defaults
from django.views.decorators.cache import never_cache
from kombu import Connection

from apps.accounts.models import Team
from apps.approvals.selectors import waiting_for
from apps.approvals.views import mark_overdue
from apps.deployments.models import ACTIVE_STATUSES, DeploymentStatus
from apps.deployments.selectors import deployments_visible_to
from apps.environments.models import Lifecycle
from apps.inventory.selectors import dashboard_applications, dashboard_environments, dashboard_matrix
from apps.scheduling.freezes import covering
from apps.scheduling.models import ACTIVE_BOOKING_STATUSES
from apps.scheduling.selectors import bookings_visible_to, freezes_visible_to

from .ui import page_or_fragment

logger = logging.getLogger(__name__)


@never_cache
def healthz(request):
    """The process is up. Touches nothing else, so it stays cheap for frequent probes."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = options["data_folder_in"]
        if not os.access(folder, os.W_OK):
            raise OSError(f"queue folder {folder} is not writable")
        return
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2, transport_options=options) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=2)


@never_cache
def readyz(request):
    """200 when the database and the broker answer; 503 naming the one that does not."""
    checks, ready = {}, True
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            check()
        except Exception:  # any failure means not ready: name it here, the details go to the log only
            logger.exception("readiness check of the %s failed", name)
            checks[name], ready = "error", False
        else:
            checks[name] = "ok"
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


DASHBOARD_WAITING = 5
DASHBOARD_ROWS = 100  # applications per page of the matrix
DASHBOARD_PANEL = 6
UPCOMING = timedelta(days=14)


def _upcoming_freezes(user, now) -> list[tuple]:
    """(window, start, end) of the freeze occurrences in force or starting in the next two weeks."""
    windows = freezes_visible_to(user).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now) | ~Q(rrule=""), starts_at__lt=now + UPCOMING
    )
    return sorted(covering(windows, now, now + UPCOMING), key=lambda item: item[1])[:DASHBOARD_PANEL]


class DashboardFilters(forms.Form):
    """The matrix's filters: a team's applications, a lifecycle's applications and environments."""

    team = forms.SlugField(required=False)
    lifecycle = forms.SlugField(required=False)

    def chosen(self) -> tuple[Team | None, Lifecycle | None, bool]:
        """(team, lifecycle, whether the filters name something that does not exist)."""
        if not self.is_valid():
            return None, None, True
        data = self.cleaned_data
        team = Team.objects.filter(slug=data["team"]).first() if data["team"] else None
        lifecycle = Lifecycle.objects.filter(slug=data["lifecycle"]).first() if data["lifecycle"] else None
        return team, lifecycle, bool((data["team"] and not team) or (data["lifecycle"] and not lifecycle))


@login_required
def dashboard(request):
    """The matrix of applications by environments (what runs where, coloured by the latest deployment and drift),
    filtered by team and lifecycle; beside it what waits for the user, what runs, and the next bookings and
    freezes. The matrix is a fixed number of queries whatever its size (inventory.selectors.dashboard_matrix)."""
    team, lifecycle, unknown = DashboardFilters(request.GET).chosen()
    applications = dashboard_applications(request.user, team=team, lifecycle=lifecycle)
    if unknown:  # a team or lifecycle that does not exist has no applications
        applications = applications.none()
    environments = list(dashboard_environments(request.user, lifecycle=lifecycle))
    page = Paginator(applications, DASHBOARD_ROWS).get_page(request.GET.get("page"))
    applications = list(page.object_list)
    cells = dashboard_matrix(applications, environments)
    matrix = [(application, [cells.get((application.pk, e.pk)) for e in environments]) for application in applications]
    waiting = waiting_for(request.user)
    waiting_rows = mark_overdue(list(waiting[:DASHBOARD_WAITING]))
    waiting_count = len(waiting_rows) if len(waiting_rows) < DASHBOARD_WAITING else waiting.count()
    now = timezone.now()
    context = {
        "environments": environments,
        "matrix": matrix,
        "page": page,
        "team": team,
        "lifecycle": lifecycle,
        "filtered": unknown or bool(team or lifecycle),
        "teams": Team.objects.order_by("name"),
        "lifecycles": Lifecycle.objects.order_by("name"),
        "waiting": waiting_rows,
        "waiting_count": waiting_count,
        "running": list(
            deployments_visible_to(request.user).filter(status__in=(*ACTIVE_STATUSES, DeploymentStatus.QUEUED))[
                :DASHBOARD_PANEL
            ]
        ),
        "bookings": list(
            bookings_visible_to(request.user).filter(ends_at__gt=now, status__in=ACTIVE_BOOKING_STATUSES)[
                :DASHBOARD_PANEL
            ]
        ),
        "freezes": _upcoming_freezes(request.user, now),
        "now": now,
    }
    return page_or_fragment(request, "core/dashboard.html", "core/_matrix.html", context)


def _api_error(code: str, detail: str, status: int):
    return JsonResponse({"error": code, "detail": detail}, status=status)


def page_not_found(request, exception):
    """JSON under /api/ (clients parse the error body), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return _api_error("not_found", f"No API endpoint at {request.path}.", 404)
    return defaults.page_not_found(request, exception)


def permission_denied(request, exception):
    if request.path.startswith("/api/"):
        return _api_error("permission_denied", "You do not have permission to do this.", 403)
    return defaults.permission_denied(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return _api_error("server_error", "Internal error; it has been logged.", 500)
    return defaults.server_error(request)
