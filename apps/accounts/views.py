from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.core.context import current
from apps.core.errors import PermissionDenied, ReleaseHubError
from apps.core.ui import call_service, form_add_domain_error

from . import services
from .forms import ApiTokenForm, MemberForm, TeamForm
from .models import Team, User
from .throttling import FailedSignIns


class LoginView(auth_views.LoginView):
    """Sign-in; wrong passwords count towards the per-address limit of failed sign-ins (429 beyond it)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if FailedSignIns.exceeded(current().ip):
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, "Too many failed sign-ins from this address; try again in a minute.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        FailedSignIns.record(current().ip)
        return super().form_invalid(form)


# The token text between the POST that creates it and the GET that shows it (Post/Redirect/Get).
NEW_TOKEN_SESSION_KEY = "accounts:new-token"  # noqa: S105 - a session key, not a secret


@never_cache
@login_required
def account(request):
    """The signed-in user's profile, teams and API tokens; creating a token shows it once.

    A successful POST redirects, so reloading the page neither creates a second token nor
    shows the secret again: the next GET pops it from the session.
    """
    form = ApiTokenForm(request.POST or None)
    new_token = request.session.pop(NEW_TOKEN_SESSION_KEY, None) if request.method == "GET" else None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_token = services.token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
            )
        except ReleaseHubError as exc:
            form.add_error(None, exc.detail)
        else:
            request.session[NEW_TOKEN_SESSION_KEY] = new_token
            return redirect("accounts:account")
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": request.user.api_tokens.all(),
        "teams": request.user.groups.filter(team__isnull=False).select_related("team").order_by("team__name"),
    }
    return render(request, "accounts/account.html", context)


@login_required
@require_POST
def token_revoke(request, pk: int):
    call_service(request, services.token_revoke, "Token revoked.", token_id=pk, actor=request.user)
    return redirect("accounts:account")


@login_required
def team_list(request):
    """Every team with its member count; administrators create teams here."""
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(actor=request.user, **form.cleaned_data)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
        except ReleaseHubError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Team “{team.name}” created.")
            return redirect("accounts:team-detail", slug=team.slug)
    teams = Team.objects.annotate(member_count=Count("group__user", filter=Q(group__user__is_active=True)))
    return render(request, "accounts/team_list.html", {"teams": teams, "form": form})


@login_required
def team_detail(request, slug: str):
    """A team's members and roles; administrators add and remove members and roles."""
    team = get_object_or_404(Team.objects.select_related("group"), slug=slug)
    members = User.objects.filter(groups=team.group, is_active=True).order_by("username")
    held = set(team.group.permissions.values_list("content_type__app_label", "codename"))
    roles = [
        {"name": name, "description": description, "held": tuple(perm.split(".")) in held}
        for name, (perm, description) in services.TEAM_ROLES.items()
    ]
    context = {"team": team, "members": members, "roles": roles, "member_form": MemberForm(team=team)}
    return render(request, "accounts/team_detail.html", context)


@login_required
@require_POST
def team_member_add(request, slug: str):
    team = get_object_or_404(Team, slug=slug)
    form = MemberForm(request.POST, team=team)
    if not form.is_valid():
        messages.error(request, "Choose an active person who is not a member yet.")
    else:
        call_service(
            request,
            services.team_add_member,
            f"{form.cleaned_data['user'].username} added.",
            actor=request.user,
            team=team,
            user=form.cleaned_data["user"],
        )
    return redirect("accounts:team-detail", slug=slug)


@login_required
@require_POST
def team_member_remove(request, slug: str, username: str):
    team = get_object_or_404(Team, slug=slug)
    user = get_object_or_404(User, username=username)
    call_service(request, services.team_remove_member, f"{username} removed.", actor=request.user, team=team, user=user)
    return redirect("accounts:team-detail", slug=slug)


@login_required
@require_POST
def team_role(request, slug: str, role: str):
    team = get_object_or_404(Team, slug=slug)
    enabled = request.POST.get("enabled") == "1"
    call_service(
        request, services.team_role_set, "Role updated.", actor=request.user, team=team, role=role, enabled=enabled
    )
    return redirect("accounts:team-detail", slug=slug)
