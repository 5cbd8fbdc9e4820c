"""Helpers for pages: domain errors become messages or form errors, the way the API turns them into error bodies."""

from django.contrib import messages

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
    """Show a domain error on the form: per field where it names fields the form has, else at the top."""
    for field, errors in (exc.fields or {}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)
    if not exc.fields:
        form.add_error(None, exc.detail)
