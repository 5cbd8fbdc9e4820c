"""Writes for people, teams and API tokens. Each one audits itself."""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from guardian.shortcuts import assign_perm, get_group_perms, remove_perm

from apps.audit.services import audit_record
from apps.core.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from apps.core.permissions import ensure_can, holders

from .models import TOKEN_PREFIX_LENGTH, ApiToken, Team, User, hash_secret

# last_used_at is refreshed at most this often, so busy CI tokens do not write on every call.
LAST_USED_GRANULARITY = timedelta(minutes=1)
_PREFIX = re.compile(rf"[0-9a-f]{{{TOKEN_PREFIX_LENGTH}}}")


def _check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(settings.API_TOKEN_SCOPES))
    if unknown:
        raise ValidationFailed(
            "Unknown scope.",
            fields={
                "scopes": [f"Unknown scope {s!r}; known: {', '.join(settings.API_TOKEN_SCOPES)}." for s in unknown]
            },
        )
    if not scopes:
        raise ValidationFailed("A token needs at least one scope.", fields={"scopes": ["Choose at least one scope."]})
    return sorted(set(scopes))


def token_create(
    *, user: User, name: str, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the token text, which is shown once and never stored.

    Raises ValidationFailed (blank name, unknown or no scopes, expiry in the past).
    """
    name = name.strip()
    if not name:
        raise ValidationFailed("A token needs a name.", fields={"name": ["This field may not be blank."]})
    scopes = _check_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("Expiry must be in the future.", fields={"expires_at": ["Must be in the future."]})
    raw, prefix, secret_hash = ApiToken.generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=prefix, secret_hash=secret_hash, scopes=scopes, expires_at=expires_at
        )
        audit_record(
            verb="token.created",
            target=token,
            details={"owner": user.username, "scopes": scopes, "expires_at": expires_at},
        )
    return token, raw


def token_revoke(*, token_id: int, actor: User) -> ApiToken:
    """Revoke a token at once. Its owner or a superuser may.

    Raises NotFound (unknown, or someone else's), Conflict (already revoked).
    """
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None or (token.user_id != actor.pk and not actor.is_superuser):
            raise NotFound("No such token.")
        if token.revoked_at is not None:
            raise Conflict("This token is already revoked.")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(verb="token.revoked", target=token, actor=actor, details={"owner": token.user.username})
    return token


def token_authenticate(*, raw: str, ip: str | None) -> ApiToken:
    """The active token matching `raw`, its last use refreshed.

    The first use, and every use from a new address, is audited (`token.used`).
    Raises NotAuthenticated for malformed, unknown, expired or revoked tokens, and for
    tokens of deactivated users, with one message for all so none can be told apart.
    """
    parts = raw.split("_", 2)
    # The prefix is hex (ApiToken.generate): anything else, e.g. a NUL that PostgreSQL refuses, is not looked up.
    if len(parts) != 3 or parts[0] != "rh" or not _PREFIX.fullmatch(parts[1]):
        raise NotAuthenticated("Invalid token.")
    token = ApiToken.objects.active().select_related("user").filter(prefix=parts[1]).first()
    # compare_digest keeps the comparison time independent of where the digests differ.
    if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(parts[2])):
        raise NotAuthenticated("Invalid token.")
    now = timezone.now()
    ip = ip or ""
    new_address = token.last_used_ip != ip
    if new_address or token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        with transaction.atomic():
            # A plain UPDATE on purpose: usage is bookkeeping, not a change the token's history should show.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
            if new_address:
                audit_record(
                    verb="token.used",
                    target=token,
                    actor=token.user,
                    token=token,
                    details={"owner": token.user.username},
                )
        token.last_used_at, token.last_used_ip = now, ip
    return token


def default_token_expiry() -> datetime:
    """When a token created without an expiry expires: API_TOKEN_DEFAULT_LIFETIME_DAYS from now."""
    return timezone.now() + timedelta(days=settings.API_TOKEN_DEFAULT_LIFETIME_DAYS)


def _require_team_admin(actor: User | None) -> None:
    """Teams and roles are managed by superusers; `actor=None` is the system (management commands).

    Not by staff: membership and roles carry every permission, so whoever manages them could
    grant themselves anything (and separation of duties would be void).
    """
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Only administrators manage teams.")


def team_create(*, actor: User | None, name: str, slug: str = "", description: str = "") -> Team:
    """Create a team and its backing group. Raises PermissionDenied, ValidationFailed, Conflict (slug taken)."""
    _require_team_admin(actor)
    name = name.strip()
    slug = slugify(slug or name)
    if not name or not slug:
        raise ValidationFailed("A team needs a name.", fields={"name": ["This field may not be blank."]})
    with transaction.atomic():
        if Team.objects.filter(slug=slug).exists() or Group.objects.filter(name=f"team:{slug}").exists():
            raise Conflict(f"A team with slug {slug!r} exists already.", fields={"slug": ["Already taken."]})
        group = Group.objects.create(name=f"team:{slug}")
        team = Team.objects.create(group=group, slug=slug, name=name, description=description.strip())
        audit_record(verb="team.created", target=team, actor=actor, details={"slug": slug})
    return team


def team_add_member(*, actor: User | None, team: Team, user: User) -> None:
    """Add `user` to `team` (no-op if already a member). Raises PermissionDenied, ValidationFailed (inactive user)."""
    _require_team_admin(actor)
    if not user.is_active:
        raise ValidationFailed(f"{user.username} is deactivated.")
    with transaction.atomic():
        if user.groups.filter(pk=team.group_id).exists():
            return
        user.groups.add(team.group)
        audit_record(verb="team.member_added", target=team, actor=actor, details={"user": user.username})


def team_remove_member(*, actor: User | None, team: Team, user: User) -> None:
    """Remove `user` from `team`. Raises PermissionDenied, NotFound (not a member)."""
    _require_team_admin(actor)
    with transaction.atomic():
        if not user.groups.filter(pk=team.group_id).exists():
            raise NotFound(f"{user.username} is not a member of {team.name}.")
        user.groups.remove(team.group)
        audit_record(verb="team.member_removed", target=team, actor=actor, details={"user": user.username})


def user_ensure(
    *, username: str, password: str, email: str = "", superuser: bool = False, first_name: str = "", last_name: str = ""
) -> tuple[User, bool]:
    """Create `username` if missing (returns (user, created)); an existing account is left as it is."""
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        if user is not None:
            return user, False
        user = User(
            username=username,
            email=email,
            first_name=first_name,
            last_name=last_name,
            is_staff=superuser,
            is_superuser=superuser,
        )
        user.set_password(password)
        user.save()
        audit_record(verb="user.created", target=user, details={"superuser": superuser})
    return user, True


def _permission(perm: str) -> Permission:
    app_label, _, codename = perm.partition(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None:
        raise ValidationFailed(f"Unknown permission {perm!r}.")
    return permission


def team_grant(*, team: Team, perm: str, obj=None, actor: User | None = None) -> None:
    """Grant `perm` ("app_label.codename") to the team: on `obj` (django-guardian), or globally if obj is None.

    A no-op when the team holds it already. Low level: the calling service checks that its
    actor may grant it.
    """
    _permission(perm)
    if _holds(team, perm, obj):
        return
    with transaction.atomic():
        assign_perm(perm, team.group, obj)
        audit_record(verb="team.permission_granted", target=team, actor=actor, details=_grant_details(perm, obj))


def team_revoke(*, team: Team, perm: str, obj=None, actor: User | None = None) -> None:
    """Withdraw what team_grant granted. Low level, like team_grant."""
    _permission(perm)
    if not _holds(team, perm, obj):
        return
    with transaction.atomic():
        remove_perm(perm, team.group, obj)
        audit_record(verb="team.permission_revoked", target=team, actor=actor, details=_grant_details(perm, obj))


def _holds(team: Team, perm: str, obj) -> bool:
    """Whether the team's own grants include `perm` (globally, or on `obj`)."""
    codename = perm.partition(".")[2]
    if obj is None:
        return team.group.permissions.filter(pk=_permission(perm).pk).exists()
    return codename in get_group_perms(team.group, obj)


def _grant_details(perm: str, obj) -> dict:
    return {"permission": perm, "object": f"{obj._meta.label_lower}:{obj.pk}" if obj is not None else None}


# Global roles a team can hold: name -> (permission, what it allows).
TEAM_ROLES = {
    "auditor": ("audit.view_auditevent", "Reads the whole audit trail"),
}


def team_role_set(*, actor: User | None, team: Team, role: str, enabled: bool) -> None:
    """Give or take a global role (TEAM_ROLES). Raises PermissionDenied, ValidationFailed (unknown role)."""
    _require_team_admin(actor)
    if role not in TEAM_ROLES:
        raise ValidationFailed(f"Unknown role {role!r}.")
    perm = TEAM_ROLES[role][0]
    if enabled:
        team_grant(team=team, perm=perm, actor=actor)
    else:
        team_revoke(team=team, perm=perm, actor=actor)


def object_access_set(*, actor: User | None, obj, team: Team, action: str, granted: bool) -> None:
    """Grant (`granted=True`) or withdraw a team's `action` on one object (an environment, an application).

    The actions are the model's ACCESS_ACTIONS. Granting any action grants `view` too (an action
    on an object one cannot see is no use), and `view` is withdrawn only after the others.
    Needs `manage` on the object (`actor=None` is the system). The last team that manages an
    object keeps `manage`, so nobody but a superuser is locked out of it. Raises NotFound,
    PermissionDenied, ValidationFailed (unknown action), Conflict (last manager, or `view`
    while other actions remain).
    """
    actions = type(obj).ACCESS_ACTIONS
    if actor is not None:
        ensure_can(actor, "manage", obj)
    if action not in actions:
        raise ValidationFailed(
            f"Unknown permission {action!r}; use one of {', '.join(actions)}.", fields={"action": ["Unknown."]}
        )

    def perm(name: str) -> str:
        return f"{obj._meta.app_label}.{name}_{obj._meta.model_name}"

    with transaction.atomic():
        if granted:
            team_grant(team=team, perm=perm("view"), obj=obj, actor=actor)
            team_grant(team=team, perm=perm(action), obj=obj, actor=actor)
            return
        held = {codename.removesuffix(f"_{obj._meta.model_name}") for codename in get_group_perms(team.group, obj)}
        if action == "view" and held - {"view"}:
            raise Conflict(
                f"Withdraw {team.name}'s other permissions on {obj} ({', '.join(sorted(held - {'view'}))}) first."
            )
        if action == "manage" and not holders(obj, "manage").exclude(pk=team.group_id).exists():
            raise Conflict(f"{team.name} is the only team that manages {obj}; let another team manage it first.")
        team_revoke(team=team, perm=perm(action), obj=obj, actor=actor)
