"""Helpers for pages: domain errors become messages or form errors, the way the API turns them into error bodies."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from apps.accounts.models import Team
from apps.accounts.services import object_access_set

from .errors import ReleaseHubError
from .forms import AccessForm
from .permissions import can, grants_by_team, grants_on


def call_service(request, service, success: str, **kwargs):
    """Call `service(**kwargs)`; flash `success`, or the domain error's detail. Returns the result or None."""
    try:
        result = service(**kwargs)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
        return None
    messages.success(request, success)
    return result


def form_add_domain_error(form, exc: ReleaseHubError) -> None:
    """Show a domain error on the form: its message at the top (unless it only says "invalid input"), and
    its field messages on the fields the form has (a nested field's on the form field it is part of)."""
    for field, errors in (exc.fields or {}).items():
        head, _, rest = field.partition(".")  # "options.stages.0.weight": shown on "options"
        for error in errors:
            if field in form.fields:
                form.add_error(field, error)
            else:
                form.add_error(head if head in form.fields else None, f"{rest}: {error}" if rest else error)
    if not exc.fields or exc.detail != exc.default_detail:
        form.add_error(None, exc.detail)


def query_without_page(request: HttpRequest) -> str:
    """The request's query string without `page`: what the pagination links add their page number to."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def page_or_fragment(request: HttpRequest, page: str, partial: str, context: dict) -> HttpResponse:
    """The results fragment for htmx requests (filter forms), the whole page otherwise."""
    htmx = getattr(request, "htmx", None)
    fragment = bool(htmx) and not htmx.history_restore_request
    response = render(request, partial if fragment else page, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def access_context(request: HttpRequest, obj, *, grant_url: str, revoke_url: str) -> dict:
    """What an Access tab shows: each team's grants on `obj`, the caller's own actions, the grant/revoke URLs."""
    actions = type(obj).ACCESS_ACTIONS
    return {
        "holders": grants_by_team(grants_on(obj), type(obj)),
        "actions": actions,
        "teams": Team.objects.order_by("name"),
        "your_actions": [action for action in actions if can(request.user, action, obj)],
        "grant_url": grant_url,
        "revoke_url": revoke_url,
    }


def access_change(request: HttpRequest, obj, *, granted: bool) -> None:
    """Grant or revoke the posted team's action on `obj` (accounts.services.object_access_set), with a message."""
    actions = type(obj).ACCESS_ACTIONS
    form = AccessForm(request.POST, actions=actions)
    if not form.is_valid():
        messages.error(request, "Choose a team and one of the actions " + ", ".join(actions) + ".")
        return
    team, action = form.cleaned_data["team"], form.cleaned_data["action"]
    done = f"{team.name} {'may now' if granted else 'may no longer'} {action} on {obj}."
    call_service(
        request, object_access_set, done, actor=request.user, obj=obj, team=team, action=action, granted=granted
    )
