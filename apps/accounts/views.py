from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import ReleaseHubError

from . import services
from .forms import ApiTokenForm


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@login_required
def account(request):
    """The signed-in user's profile, teams and API tokens; creating a token shows it once."""
    form = ApiTokenForm(request.POST or None)
    new_token = None
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
            messages.success(request, "Token created. Copy it now: it will not be shown again.")
            form = ApiTokenForm()
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
    try:
        token = services.token_revoke(token_id=pk, actor=request.user)
    except ReleaseHubError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:account")
