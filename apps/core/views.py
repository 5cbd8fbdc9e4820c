import logging
import os

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.cache import never_cache
from kombu import Connection

from apps.approvals.selectors import waiting_for
from apps.approvals.views import mark_overdue
from apps.audit.selectors import audit_events_visible_to

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


@login_required
def dashboard(request):
    """The user's recent activity, and the (first five) deployments waiting for their approval."""
    recent = audit_events_visible_to(request.user).filter(actor=request.user).order_by("-id")[:8]
    waiting = waiting_for(request.user)
    waiting_rows = mark_overdue(list(waiting[:DASHBOARD_WAITING]))
    waiting_count = len(waiting_rows) if len(waiting_rows) < DASHBOARD_WAITING else waiting.count()
    context = {"recent_events": recent, "waiting": waiting_rows, "waiting_count": waiting_count}
    return render(request, "core/dashboard.html", context)


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
