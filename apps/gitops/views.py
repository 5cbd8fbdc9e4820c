"""The environment's GitOps tab: push or pull mode, the repository a pull-mode environment's deployments commit to,
and for managers the form that sets or changes it and the page that removes it.

Pages write only through services.repository_set and services.repository_delete: a domain error becomes a form
error next to its field, or a message. An environment the user may not view is a 404; the forms answer 403 to
those who may view it but not manage it.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as Forbidden
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.approvals.views import duration_words
from apps.core.errors import PermissionDenied, ReleaseHubError
from apps.core.permissions import can
from apps.core.ui import call_service, form_add_domain_error
from apps.environments.models import Environment
from apps.environments.views import tab_context, visible_or_404

from . import services
from .forms import PROVIDER_NAMES, SECRET_FIELDS, RepositoryForm
from .models import EnvironmentRepository
from .providers import DEFAULT_API_URLS, project_from_url
from .selectors import repository_of, secret_names

SECRET_USES = {
    "credential_variable": "Credential (push and pull)",
    "api_token_variable": "Provider API token",
    "webhook_secret_variable": "Webhook secret",
}


def seconds_words(seconds: int) -> str:
    """ "45 seconds", "90 seconds", "1 hour", "2 days": whole minutes in words, anything else in seconds."""
    if seconds % 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return duration_words(timedelta(seconds=seconds))


def _secrets_used(repository: EnvironmentRepository, present: set[str]) -> list[dict]:
    """Which secret variables the repository names, by name only, and whether each still is a secret here."""
    used = []
    for field in SECRET_FIELDS:
        name = getattr(repository, field)
        if name:
            used.append({"use": SECRET_USES[field], "name": name, "present": name in present})
    return used


def _gitops_page(
    request: HttpRequest,
    environment: Environment,
    repository: EnvironmentRepository | None,
    form: RepositoryForm | None = None,
) -> HttpResponse:
    """The tab: the mode, the repository's settings and manifest template, and for managers the form (`form` when
    it comes back with errors)."""
    context = tab_context(request, environment, "gitops")
    if form is None and context["can_manage"]:
        form = RepositoryForm(environment=environment, repository=repository)
    if repository is not None:
        present = set(form.secret_names if form is not None else secret_names(environment))
        context.update(
            secrets_used=_secrets_used(repository, present),
            provider_name=PROVIDER_NAMES.get(repository.provider, repository.provider),
            sync_timeout_words=seconds_words(repository.sync_timeout),
            poll_interval_words=seconds_words(repository.poll_interval),
            api_url_shown=repository.api_url or DEFAULT_API_URLS.get(repository.provider, ""),
            project_shown=repository.project or (project_from_url(repository.url) if repository.provider else ""),
            audit_query=f"object_type=environments.environment&object_id={environment.pk}",
        )
    context.update(repository=repository, form=form)
    return render(request, "gitops/environment.html", context)


def _ensure_manager(request: HttpRequest, environment: Environment) -> None:
    """403 for someone who may view the environment but not manage it (the service checks again)."""
    if not can(request.user, "manage", environment):
        raise Forbidden(f"You may not manage {environment.name}.")


@login_required
def environment_gitops(request, slug: str):
    """GET: the GitOps tab. POST (managers): put the environment in pull mode with the repository, or change it."""
    environment = visible_or_404(request, slug)
    if request.method != "POST":
        return _gitops_page(request, environment, repository_of(environment))
    _ensure_manager(request, environment)
    repository = repository_of(environment)
    form = RepositoryForm(request.POST, environment=environment, repository=repository)
    if form.is_valid():
        values = form.values()
        changed = repository is None or any(getattr(repository, name) != value for name, value in values.items())
        try:
            saved = services.repository_set(actor=request.user, environment=environment, **values)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return redirect("gitops:environment", slug=environment.slug)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            if repository is None:
                messages.success(
                    request,
                    f"{environment.name} is in pull mode now: deployments commit {saved.path} to the {saved.branch} "
                    f"branch of {saved.url}.",
                )
            elif changed:
                messages.success(request, f"Repository settings of {environment.name} saved.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("gitops:environment", slug=environment.slug)
    return _gitops_page(request, environment, repository, form)


@login_required
def environment_gitops_remove(request, slug: str):
    """GET (managers): what removing the repository means, and a button to confirm; POST: remove it, so the
    environment is back in push mode (refused while a deployment to it is active)."""
    environment = visible_or_404(request, slug)
    _ensure_manager(request, environment)
    back = redirect("gitops:environment", slug=environment.slug)
    repository = repository_of(environment)
    if repository is None:
        messages.info(request, f"{environment.name} has no repository: it is in push mode.")
        return back
    if request.method == "POST":
        call_service(
            request,
            services.repository_delete,
            f"{environment.name} is in push mode again: workers run its deployments' steps.",
            actor=request.user,
            environment=environment,
        )
        return back
    context = {
        "environment": environment,
        "repository": repository,
        "back_url": reverse("gitops:environment", args=[environment.slug]),
    }
    return render(request, "gitops/remove.html", context)
