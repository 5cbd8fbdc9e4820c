"""Notification pages: the signed-in person's subscriptions and deliveries, and the confirmation page that
signed action links (from approval-request emails) open.

Pages write only through services: a domain error becomes a message or a form error. A link's
token identifies the person it was sent to; nothing changes on GET.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.approvals import services as approvals
from apps.approvals.models import ApprovalRequest
from apps.core.errors import NotFound, ReleaseHubError, ValidationFailed
from apps.core.ui import call_service, form_add_domain_error
from apps.deployments.models import DeploymentStatus
from apps.deployments.selectors import deployment_for
from apps.environments.selectors import environments_visible_to

from . import services
from .forms import SubscriptionForm
from .links import InvalidActionLink, read_action_token
from .models import Channel
from .selectors import recent_deliveries_for, subscriptions_visible_to


def _own(request: HttpRequest, pk: int):
    """One of the user's own subscriptions (the page manages no team's), else 404."""
    return get_object_or_404(subscriptions_visible_to(request.user).filter(owner=request.user), pk=pk)


@login_required
def index(request):
    """The user's subscriptions with a form to add one, and their latest deliveries."""
    environments = environments_visible_to(request.user).order_by("name")
    form = SubscriptionForm(request.POST or None, environments=environments)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            channel = data["channel"]
            try:
                services.subscription_create(
                    actor=request.user,
                    events=data["events"],
                    channel=channel,
                    environment=data["environment"],
                    url=data["url"] if channel == Channel.WEBHOOK else "",
                    secret=data["secret"] if channel == Channel.WEBHOOK else "",
                    apprise_url=data["apprise_url"] if channel == Channel.CHAT else "",
                )
            except ReleaseHubError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Subscribed.")
                return redirect("notifications:index")
        status = 400
    context = {
        "form": form,
        "subscriptions": subscriptions_visible_to(request.user).filter(owner=request.user),
        "deliveries": recent_deliveries_for(request.user),
        "has_email": bool(request.user.email),
    }
    return render(request, "notifications/index.html", context, status=status)


@login_required
@require_POST
def subscription_toggle(request, pk: int):
    """Pause an active subscription, or resume a paused one."""
    subscription = _own(request, pk)
    active = not subscription.active
    call_service(
        request,
        services.subscription_update,
        "Subscription resumed." if active else "Subscription paused.",
        actor=request.user,
        subscription=subscription,
        active=active,
    )
    return redirect("notifications:index")


@login_required
@require_POST
def subscription_delete(request, pk: int):
    subscription = _own(request, pk)
    call_service(
        request,
        services.subscription_delete,
        "Subscription deleted.",
        actor=request.user,
        subscription=subscription,
    )
    return redirect("notifications:index")


# --- Signed action links --------------------------------------------------------------------------------


def _link_error(request: HttpRequest, status: int, title: str, text: str) -> HttpResponse:
    return render(
        request, "notifications/link_error.html", {"title": title, "text": text, "code": status}, status=status
    )


@login_required
def act(request, token: str):
    """GET: what the link would do, for the person to confirm (changes nothing). POST: approve or reject
    through apps.approvals.services, bound to the plan digest the page showed; then the deployment page."""
    try:
        claims = read_action_token(token)
    except InvalidActionLink as exc:
        return _link_error(request, 400, "This link does not work", exc.reason)
    if claims.user_id != request.user.pk:
        return _link_error(
            request,
            403,
            "This link is someone else's",
            "It was sent to another person and only works when they are signed in. Open the deployment from "
            "the Deployments page instead.",
        )
    try:
        deployment = deployment_for(request.user, claims.deployment_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    approve = claims.action == "approve"
    comment_error = ""
    if request.method == "POST":
        comment = request.POST.get("comment", "")
        digest = request.POST.get("plan_digest", "")
        service = approvals.approve if approve else approvals.reject
        try:
            service(actor=request.user, deployment=deployment, comment=comment, plan_digest=digest or None)
        except ValidationFailed as exc:  # a rejection without a reason: ask again on this page
            comment_error = "; ".join((exc.fields or {}).get("comment", [])) or exc.detail
        except ReleaseHubError as exc:
            messages.error(request, exc.detail)
            return redirect("deployments:detail", pk=deployment.pk)
        else:
            messages.success(request, f"You {'approved' if approve else 'rejected'} {deployment}.")
            return redirect("deployments:detail", pk=deployment.pk)
    approval = ApprovalRequest.objects.filter(deployment=deployment).first()
    waiting = approval is not None and approval.status == "pending"
    waiting = waiting and deployment.status == DeploymentStatus.PENDING_APPROVAL
    context = {
        "deployment": deployment,
        "approval": approval,
        "approve": approve,
        "waiting": waiting,
        "not_eligible": approvals.why_not_eligible(request.user, deployment, approval) if waiting else None,
        "approvals_given": approval.decisions.filter(verdict="approve").count() if approval else 0,
        "comment": request.POST.get("comment", "") if request.method == "POST" else "",
        "comment_error": comment_error,
        "token": token,
    }
    return render(request, "notifications/act.html", context, status=400 if comment_error else 200)
