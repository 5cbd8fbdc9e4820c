from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from apps.core.context import Channel

from .filters import AuditEventFilterSet
from .selectors import audit_events_visible_to, can_view_all_audit

PAGE_SIZE = 50


@login_required
def audit_log(request):
    """The audit trail, filtered with the same FilterSet as the API."""
    filterset = AuditEventFilterSet(request.GET or None, queryset=audit_events_visible_to(request.user))
    events = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    page = Paginator(events.order_by("-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "page": page,
        "query": query.urlencode(),
        "sees_all": can_view_all_audit(request.user),
        "channels": Channel.choices,
    }
    return render(request, "audit/log.html", context)
