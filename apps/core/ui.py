"""Helpers for pages: domain errors become messages or form errors, the way the API turns them into error bodies."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from .errors import ReleaseHubError


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
    its field messages on the fields the form has."""
    for field, errors in (exc.fields or {}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)
    if not exc.fields or exc.detail != exc.default_detail:
        form.add_error(None, exc.detail)


def page_or_fragment(request: HttpRequest, page: str, partial: str, context: dict) -> HttpResponse:
    """The results fragment for htmx requests (filter forms), the whole page otherwise."""
    htmx = getattr(request, "htmx", None)
    fragment = bool(htmx) and not htmx.history_restore_request
    response = render(request, partial if fragment else page, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
