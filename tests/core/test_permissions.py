"""apps.core.permissions: one gate for pages and API (restrict, can, ensure_can)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.accounts.services import team_grant
from apps.catalog.models import Application
from apps.core.errors import NotFound, PermissionDenied
from apps.core.permissions import _group_permission_model, can, ensure_can, restrict, with_permission
from apps.environments.models import Environment, EnvironmentGroupObjectPermission, Lifecycle
from tests.factories import make_application, make_environment, make_team, make_user


@pytest.fixture
def objects(db):
    payments, storefront = make_team("payments"), make_team("storefront")
    return {
        "payments-dev": make_environment(payments, "payments-dev"),
        "storefront-dev": make_environment(storefront, "storefront-dev"),
        "payments": payments,
        "storefront": storefront,
    }


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # no cached permissions


def visible(user, action="view") -> set[str]:
    return set(restrict(Environment.objects.all(), user, action).values_list("slug", flat=True))


def test_team_members_see_their_teams_objects(objects):
    paula = make_user("paula")
    objects["payments"].group.user_set.add(paula)
    assert visible(paula) == {"payments-dev"}
    assert visible(paula, "manage") == {"payments-dev"}
    assert visible(paula, "approve") == set()  # the owner team does not approve by default


def test_member_of_two_teams_sees_both(objects):
    both = make_user("bo")
    objects["payments"].group.user_set.add(both)
    objects["storefront"].group.user_set.add(both)
    assert visible(both) == {"payments-dev", "storefront-dev"}


def test_a_user_outside_every_team_sees_nothing(objects):
    assert visible(make_user("nobody")) == set()


def test_anonymous_and_inactive_users_see_nothing(objects):
    assert visible(None) == set()
    assert visible(AnonymousUser()) == set()
    root = make_user("root", is_superuser=True, is_active=False)
    assert visible(root) == set()


def test_superusers_do_everything_and_staff_see_everything(objects):
    root = make_user("root", is_superuser=True)
    staff = make_user("stella", is_staff=True)
    assert visible(root, "manage") == visible(root, "approve") == {"payments-dev", "storefront-dev"}
    assert visible(staff) == {"payments-dev", "storefront-dev"}
    assert visible(staff, "manage") == set()


def test_a_global_permission_covers_every_object(objects):
    approver = make_user("rita")
    approver.user_permissions.add(Permission.objects.get(codename="approve_environment"))
    assert visible(fresh(approver), "approve") == {"payments-dev", "storefront-dev"}
    assert visible(fresh(approver)) == set()  # approving everything does not mean seeing everything
    managers = make_team("managers")
    team_grant(team=managers, perm="environments.manage_environment")
    member = make_user("max")
    managers.group.user_set.add(member)
    assert visible(fresh(member), "manage") == {"payments-dev", "storefront-dev"}


def test_grants_are_per_object_and_per_action(objects):
    vera = make_user("vera")
    viewers = make_team("viewers")
    viewers.group.user_set.add(vera)
    team_grant(team=viewers, perm="environments.view_environment", obj=objects["storefront-dev"])
    assert visible(vera) == {"storefront-dev"}
    assert visible(vera, "deploy") == set()


def test_environment_permissions_do_not_leak_to_applications(objects):
    """The same primary key on another model is another object."""
    paula = make_user("paula")
    objects["payments"].group.user_set.add(paula)
    application = make_application(objects["storefront"], "storefront-web")
    assert not can(paula, "view", application)
    assert not restrict(Application.objects.all(), paula).exists()


def test_can_and_ensure_can(objects):
    paula, vera = make_user("paula"), make_user("vera")
    objects["payments"].group.user_set.add(paula)
    viewers = make_team("viewers")
    viewers.group.user_set.add(vera)
    team_grant(team=viewers, perm="environments.view_environment", obj=objects["payments-dev"])
    environment = objects["payments-dev"]
    assert can(paula, "manage", environment)
    ensure_can(paula, "manage", environment)
    with pytest.raises(PermissionDenied):
        ensure_can(vera, "manage", environment)
    with pytest.raises(NotFound):
        ensure_can(vera, "manage", objects["storefront-dev"])
    with pytest.raises(NotFound):
        ensure_can(vera, "view", objects["storefront-dev"])
    ensure_can(vera, "view", environment)


def test_restrict_is_one_query_whatever_the_rows(objects):
    paula = fresh(make_user("paula"))
    objects["payments"].group.user_set.add(paula)
    for i in range(20):
        make_environment(objects["payments"], f"extra-{i}")
    paula.has_perm("environments.view_environment")  # the permission cache, filled once per request
    with CaptureQueriesContext(connection) as queries:
        assert len(list(restrict(Environment.objects.all(), paula))) == 21
    assert len(queries.captured_queries) == 1


def test_group_permission_model_is_found_or_refused():
    assert _group_permission_model(Environment) is EnvironmentGroupObjectPermission
    with pytest.raises(LookupError):
        _group_permission_model(Lifecycle)


@pytest.mark.parametrize("action", ["view", "deploy", "approve", "manage"])
def test_with_permission_agrees_with_can(objects, action):
    paula = make_user("paula")
    objects["payments"].group.user_set.add(paula)
    staff = make_user("stella", is_staff=True)
    root = make_user("root", is_superuser=True)
    globally = make_user("gus")
    globally.user_permissions.add(Permission.objects.get(codename=f"{action}_environment"))
    for user in [paula, staff, root, fresh(globally), make_user("nobody"), AnonymousUser()]:
        annotated = with_permission(Environment.objects.all(), user, action, "allowed")
        for environment in annotated:
            assert environment.allowed == can(user, action, environment), (user, environment)


def test_with_permission_is_one_query(objects, django_assert_num_queries):
    paula = make_user("paula")
    objects["payments"].group.user_set.add(paula)
    paula.has_perm("environments.view_environment")  # load the global permissions once, as a request does
    with django_assert_num_queries(1):
        rows = list(
            with_permission(
                with_permission(Environment.objects.all(), paula, "view", "may_view"), paula, "manage", "may_manage"
            )
        )
    assert {(e.slug, e.may_view, e.may_manage) for e in rows} == {
        ("payments-dev", True, True),
        ("storefront-dev", False, False),
    }
