"""One permission gate for pages and API: object permissions granted to teams (django-guardian).

Every permission-bearing model (Environment, Application) declares a direct foreign-key
group permission model (`<Model>GroupObjectPermission`, a guardian
GroupObjectPermissionBase), so `restrict()` is one indexed subquery, whatever the rows.

Rules: superusers may do everything; staff see everything; a global permission
(`environments.deploy_environment` on a team or user) applies to every object; otherwise
the user needs the permission on the object through one of their teams.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Exists, Model, OuterRef, QuerySet, Value
from guardian.models import GroupObjectPermissionBase

from .errors import NotFound, PermissionDenied


def _codename(model, action: str) -> str:
    return f"{action}_{model._meta.model_name}"


def _group_permission_model(model):
    """The direct group-permission model of `model` (guardian finds it the same way)."""
    for relation in model._meta.related_objects:
        related = relation.related_model
        if issubclass(related, GroupObjectPermissionBase) and relation.field.name == "content_object":
            return related
    raise LookupError(f"{model.__name__} has no direct group object permission model")


def restrict(qs: QuerySet, user, action: str = "view") -> QuerySet:
    """The rows of `qs` on which `user` holds `<app>.<action>_<model>`."""
    model = qs.model
    if user is None or not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser or (action == "view" and user.is_staff):
        return qs
    if user.has_perm(f"{model._meta.app_label}.{_codename(model, action)}"):
        return qs
    granted = _group_permission_model(model).objects.filter(
        group__user=user,
        permission__codename=_codename(model, action),
        permission__content_type__app_label=model._meta.app_label,
    )
    return qs.filter(pk__in=granted.values("content_object_id"))


def with_permission(qs: QuerySet, user, action: str, name: str) -> QuerySet:
    """`qs` annotated with boolean `name`: whether `user` may perform `action` on each row (restrict's rules),
    so a service checks several actions on a row it reads anyway, in that same query."""
    model = qs.model
    if user is None or not user.is_authenticated or not user.is_active:
        return qs.annotate(**{name: Value(False)})
    if (
        user.is_superuser
        or (action == "view" and user.is_staff)
        or user.has_perm(f"{model._meta.app_label}.{_codename(model, action)}")
    ):
        return qs.annotate(**{name: Value(True)})
    granted = _group_permission_model(model).objects.filter(
        content_object=OuterRef("pk"),
        group__user=user,
        permission__codename=_codename(model, action),
        permission__content_type__app_label=model._meta.app_label,
    )
    return qs.annotate(**{name: Exists(granted)})


def can(user, action: str, obj: Model) -> bool:
    """Whether `user` may perform `action` on `obj` (same rules as restrict)."""
    return restrict(type(obj)._default_manager.filter(pk=obj.pk), user, action).exists()


def ensure_can(user, action: str, obj: Model) -> None:
    """Raise NotFound if the user may not even view `obj` (its existence stays hidden), PermissionDenied if
    they may view it but not perform `action`."""
    if not can(user, "view", obj):
        raise NotFound(f"No such {obj._meta.verbose_name}.")
    if action != "view" and not can(user, action, obj):
        raise PermissionDenied(f"You may not {action} {obj._meta.verbose_name} {obj}.")


def holders(obj: Model, action: str) -> QuerySet[Group]:
    """The groups (teams) granted `action` on `obj` itself (global grants not included)."""
    model = type(obj)
    granted = _group_permission_model(model).objects.filter(
        content_object=obj,
        permission__codename=_codename(model, action),
        permission__content_type__app_label=model._meta.app_label,
    )
    return Group.objects.filter(pk__in=granted.values("group_id"))


def grants_on(obj: Model) -> QuerySet:
    """The team grants on one object, with their group, team and permission (one query)."""
    return (
        _group_permission_model(type(obj))
        .objects.filter(content_object=obj)
        .select_related("group__team", "permission")
        .order_by("group__name", "permission__codename")
    )


def grants_by_team(grants, model) -> list[dict]:
    """Group object-permission rows into [{"group", "team", "actions": {action, ...}}], teams by name.

    `model` is the permission-bearing model: its name is stripped from the codenames
    (`deploy_environment` -> `deploy`).
    """
    suffix = f"_{model._meta.model_name}"
    holders: dict[int, dict] = {}
    for grant in grants:
        entry = holders.setdefault(
            grant.group_id,
            {"group": grant.group, "team": getattr(grant.group, "team", None), "actions": set()},
        )
        entry["actions"].add(grant.permission.codename.removesuffix(suffix))
    return sorted(holders.values(), key=lambda e: (e["team"].name if e["team"] else e["group"].name).lower())
