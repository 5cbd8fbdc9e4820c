"""The calendar page: the coming bookings of the environments the user may view, day by day, with the
controls the user may use, and a form to book a slot. Writes go through apps.scheduling.services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import groupby, islice

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.models import Team
from apps.core.errors import ReleaseHubError
from apps.core.permissions import restrict
from apps.core.ui import call_service, form_add_domain_error
from apps.environments.models import Environment
from apps.environments.selectors import environments_visible_to

from . import feeds, services
from .filters import BookingFilterSet
from .forms import BookingForm
from .freezes import occurrences
from .models import ACTIVE_BOOKING_STATUSES, FeedToken
from .selectors import bookings_visible_to, freezes_visible_to

DAYS_SHOWN = 28
FREEZE_OCCURRENCES = 4  # shown per freeze window


def _form(request, data=None) -> BookingForm:
    return BookingForm(data, environments=environments_visible_to(request.user, "book"))


def _with_controls(user, bookings: list) -> list:
    """Set `may_decide` and `may_cancel` on each booking (the services' rules; two queries in all)."""
    owned = set(Environment.objects.filter(owner_team__group__user=user).values_list("pk", flat=True)) | set(
        restrict(Environment.objects.all(), user, "manage").values_list("pk", flat=True)
    )
    my_teams = set(Team.objects.filter(group__user=user).values_list("pk", flat=True))
    for booking in bookings:
        booking.may_decide = booking.status == "requested" and booking.environment_id in owned
        booking.may_cancel = booking.is_active and (
            booking.requested_by_id == user.pk or booking.team_id in my_teams or booking.environment_id in owned
        )
    return bookings


def _date_param(request) -> str:
    """`?date=YYYY-MM-DD`: the day the calendar opens on ("" for today)."""
    value = request.GET.get("date", "")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return ""


def _page(request, form: BookingForm | None = None, status: int = 200):
    user = request.user
    now = timezone.now()
    bookings = BookingFilterSet(request.GET, queryset=bookings_visible_to(user)).qs.filter(
        ends_at__gt=now, starts_at__lt=now + timedelta(days=DAYS_SHOWN), status__in=ACTIVE_BOOKING_STATUSES
    )
    rows = _with_controls(user, list(bookings))
    days = [(day, list(items)) for day, items in groupby(rows, key=lambda b: b.starts_at.date())]
    windows = list(freezes_visible_to(user))
    for window in windows:
        window.upcoming = list(islice(occurrences(window, now, now + timedelta(days=DAYS_SHOWN)), FREEZE_OCCURRENCES))
    context = {
        "days": days,
        "form": form or _form(request),
        "environments": environments_visible_to(user),
        "selected": request.GET.get("environment", ""),
        "selected_team": request.GET.get("team", ""),
        "teams": Team.objects.filter(bookings__in=bookings_visible_to(user).values("pk")).distinct().order_by("name"),
        "highlight": request.GET.get("booking", ""),
        "days_shown": DAYS_SHOWN,
        "freezes": [window for window in windows if window.upcoming],
        "has_feed_token": FeedToken.objects.filter(user=user).exists(),
        "initial_date": _date_param(request),
    }
    return render(request, "scheduling/calendar.html", context, status=status)


@login_required
def calendar(request):
    """The coming four weeks of bookings, day by day (filter by environment); book a slot."""
    return _page(request)


@login_required
@require_POST
def booking_create(request):
    form = _form(request, request.POST)
    if form.is_valid():
        try:
            booking = services.booking_request(actor=request.user, **form.cleaned_data)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            return redirect(f"{reverse('scheduling:calendar')}?booking={booking.pk}")
    return _page(request, form, status=400)


def _control(request, pk: int, service, done: str, **kwargs):
    booking = get_object_or_404(bookings_visible_to(request.user), pk=pk)
    call_service(request, service, done, actor=request.user, booking=booking, **kwargs)
    return redirect("scheduling:calendar")


@login_required
@require_POST
def booking_approve(request, pk: int):
    return _control(request, pk, services.booking_approve, "Booking approved.")


@login_required
@require_POST
def booking_decline(request, pk: int):
    reason = request.POST.get("reason", "")
    return _control(request, pk, services.booking_decline, "Booking declined.", reason=reason)


@login_required
@require_POST
def booking_cancel(request, pk: int):
    reason = request.POST.get("reason", "")
    return _control(request, pk, services.booking_cancel, "Booking cancelled.", reason=reason)


def _environment(request, slug: str) -> Environment:
    return get_object_or_404(environments_visible_to(request.user), slug=slug)


@login_required
@require_POST
def environment_lock(request, slug: str):
    environment = _environment(request, slug)
    reason = request.POST.get("reason", "")
    done = f"{environment.name} is locked: deployments wait until it is unlocked."
    call_service(request, services.environment_lock, done, actor=request.user, environment=environment, reason=reason)
    return redirect("environments:detail", environment.slug)


@login_required
@require_POST
def environment_unlock(request, slug: str):
    environment = _environment(request, slug)
    done = f"{environment.name} is unlocked."
    call_service(request, services.environment_unlock, done, actor=request.user, environment=environment)
    return redirect("environments:detail", environment.slug)


# --- iCal feeds ------------------------------------------------------------------------------------


def ical_feed(request, slug: str):
    """`/calendar/<environment>.ics` and `/calendar/all.ics?token=...`: what the token's owner may view, from a
    month ago on. No session: calendar apps fetch it with the token in the query string."""
    user = services.feed_user(request.GET.get("token", ""))
    if user is None:
        return HttpResponse(
            "Give your calendar feed token: ?token=... (Calendar page).", status=401, content_type="text/plain"
        )
    environments = environments_visible_to(user)
    if slug != "all":
        environments = environments.filter(slug=slug)
        if not environments.exists():
            raise Http404("No such environment.")
    since = timezone.now() - timedelta(days=feeds.PAST_DAYS)
    bookings = bookings_visible_to(user).filter(environment__in=environments.values("pk"), ends_at__gte=since)
    windows = freezes_visible_to(user)
    if slug != "all":
        windows = windows.filter(Q(all_environments=True) | Q(environments__slug=slug))
    title = "ReleaseHub: all environments" if slug == "all" else f"ReleaseHub: {environments.first().name}"
    body = feeds.feed(title=title, bookings=bookings, freezes=windows, domain=request.get_host().split(":")[0])
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{slug}.ics"'
    return response


@login_required
@require_POST
def feed_token(request):
    """Make (or replace) the user's feed token and show its URLs once."""
    raw = services.feed_token_regenerate(actor=request.user)
    messages.success(
        request,
        "Your calendar feed: "
        + request.build_absolute_uri(reverse("scheduling:feed", args=["all"]) + f"?token={raw}")
        + " (shown once; any older feed link stopped working).",
    )
    return redirect("scheduling:calendar")


# --- The calendar component's data -----------------------------------------------------------------

PALETTE = ["#4f46e5", "#0891b2", "#16a34a", "#ca8a04", "#db2777", "#7c3aed", "#ea580c", "#0d9488"]
MAX_RANGE = timedelta(days=62)  # a month view with its overflow weeks


def _utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@login_required
def events(request):
    """Bookings and freeze occurrences overlapping [start, end) as FullCalendar event objects (`color=team` colours
    by team, else by environment): what the month, week and day views draw. A constant number of queries."""
    try:
        start, end = (_utc(datetime.fromisoformat(request.GET[key])) for key in ("start", "end"))
        end = min(end, start + MAX_RANGE)
    except (KeyError, ValueError, OverflowError):  # missing, malformed, or beyond what dates can hold
        return JsonResponse({"error": "invalid", "detail": "Give start and end as ISO times."}, status=400)
    user = request.user
    query = request.GET.copy()
    for key in ("start", "end"):  # the range is applied below, clipped
        query.pop(key)
    bookings = BookingFilterSet(query, queryset=bookings_visible_to(user)).qs.filter(
        starts_at__lt=end, ends_at__gt=start, status__in=(*ACTIVE_BOOKING_STATUSES, "completed")
    )
    by_team = request.GET.get("color") == "team"
    items = []
    for booking in _with_controls(user, list(bookings)):
        key = booking.team_id if by_team else booking.environment_id
        items.append(
            {
                "id": f"booking-{booking.pk}",
                "title": f"{booking.environment.name}: {booking.title}",
                "start": booking.starts_at.isoformat(),
                "end": booking.ends_at.isoformat(),
                "color": PALETTE[key % len(PALETTE)],
                "classNames": [f"rh-booking-{booking.status}"],
                "extendedProps": {
                    "kind": "booking",
                    "booking": booking.pk,
                    "status": booking.status,
                    "environment": booking.environment.name,
                    "team": booking.team.name,
                    "requester": booking.requested_by.display_name if booking.requested_by else "the system",
                    "notes": booking.notes,
                    "approve": reverse("scheduling:booking-approve", args=[booking.pk]) if booking.may_decide else "",
                    "decline": reverse("scheduling:booking-decline", args=[booking.pk]) if booking.may_decide else "",
                    "cancel": reverse("scheduling:booking-cancel", args=[booking.pk]) if booking.may_cancel else "",
                },
            }
        )
    environment = request.GET.get("environment")
    windows = freezes_visible_to(user)
    if environment:
        windows = windows.filter(Q(all_environments=True) | Q(environments__slug=environment))
    for window in windows:
        names = "all environments" if window.all_environments else ", ".join(e.name for e in window.environments.all())
        for begins, ends in occurrences(window, start, end):
            items.append(
                {
                    "id": f"freeze-{window.pk}-{begins:%Y%m%d%H%M}",
                    "title": f"Freeze: {window.title} ({names})",
                    "start": begins.isoformat(),
                    "end": min(ends, end).isoformat(),
                    "display": "background",
                    "classNames": ["rh-freeze"],
                    "extendedProps": {"kind": "freeze", "reason": window.reason},
                }
            )
    return JsonResponse(items, safe=False)
