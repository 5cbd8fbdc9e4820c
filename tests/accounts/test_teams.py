"""Teams: services (who may, what is audited) and their pages."""

import pytest

from apps.accounts.models import Team
from apps.accounts.services import team_add_member, team_create, team_remove_member, team_role_set
from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


@pytest.fixture
def staff(make_user):
    """A superuser: teams are managed by superusers only."""
    return make_user("stella", is_staff=True, is_superuser=True)


@pytest.fixture
def team(staff):
    return team_create(actor=staff, name="Payments", description="Money")


def test_create_team_makes_its_group_and_audits(team, staff):
    assert (team.slug, team.group.name) == ("payments", "team:payments")
    event = AuditEvent.objects.get(verb="team.created")
    assert (event.actor, event.object_id) == (staff, str(team.pk))


def test_only_staff_manage_teams(user, team):
    with pytest.raises(PermissionDenied):
        team_create(actor=user, name="Rogue")
    with pytest.raises(PermissionDenied):
        team_add_member(actor=user, team=team, user=user)
    with pytest.raises(PermissionDenied):
        team_role_set(actor=user, team=team, role="auditor", enabled=True)
    assert not user.groups.exists()


def test_duplicate_and_blank_teams_are_refused(team, staff):
    with pytest.raises(Conflict):
        team_create(actor=staff, name="Payments")
    with pytest.raises(ValidationFailed):
        team_create(actor=staff, name="  ")


def test_membership_and_roles(team, staff, user):
    team_add_member(actor=staff, team=team, user=user)
    team_add_member(actor=staff, team=team, user=user)  # idempotent
    assert list(user.groups.all()) == [team.group]
    assert not user.has_perm("audit.view_auditevent")
    team_role_set(actor=staff, team=team, role="auditor", enabled=True)
    user = type(user).objects.get(pk=user.pk)  # permission cache
    assert user.has_perm("audit.view_auditevent")
    team_role_set(actor=staff, team=team, role="auditor", enabled=False)
    team_remove_member(actor=staff, team=team, user=user)
    with pytest.raises(NotFound):
        team_remove_member(actor=staff, team=team, user=user)
    verbs = list(AuditEvent.objects.order_by("id").values_list("verb", flat=True))
    assert verbs == [
        "team.created",
        "team.member_added",
        "team.permission_granted",
        "team.permission_revoked",
        "team.member_removed",
    ]


def test_deactivated_people_cannot_join(team, staff, user):
    user.is_active = False
    user.save()
    with pytest.raises(ValidationFailed):
        team_add_member(actor=staff, team=team, user=user)


def test_team_pages_for_staff(client, staff, user):
    client.force_login(staff)
    response = client.post("/teams/", {"name": "Storefront", "slug": "", "description": "Shop"})
    assert response.status_code == 302
    team = Team.objects.get(slug="storefront")
    client.post(f"/teams/{team.slug}/members/", {"user": user.pk})
    client.post(f"/teams/{team.slug}/roles/auditor/", {"enabled": "1"})
    page = client.get(f"/teams/{team.slug}/").content.decode()
    assert "ursula" in page
    assert "Withdraw" in page
    client.post(f"/teams/{team.slug}/members/{user.username}/remove/")
    assert not user.groups.exists()
    assert "Storefront" in client.get("/teams/").content.decode()


def test_team_pages_for_everyone_else(client, user, team):
    client.force_login(user)
    page = client.get(f"/teams/{team.slug}/").content.decode()
    assert "Payments" in page
    assert "Remove" not in page
    response = client.post("/teams/", {"name": "Rogue"}, follow=True)
    assert "Only administrators manage teams." in response.content.decode()
    assert not Team.objects.filter(slug="rogue").exists()
    response = client.post(f"/teams/{team.slug}/roles/auditor/", {"enabled": "1"}, follow=True)
    assert "Only administrators manage teams." in response.content.decode()
    assert client.get("/teams/nope/").status_code == 404


def test_team_create_form_errors(client, staff, team):
    client.force_login(staff)
    response = client.post("/teams/", {"name": "Payments"})
    assert response.status_code == 200
    assert "Already taken." in response.content.decode()


def test_team_list_queries_are_constant(client, staff, django_assert_max_num_queries):
    client.force_login(staff)
    for i in range(3):
        team_create(actor=staff, name=f"Team {i}")
    with django_assert_max_num_queries(15) as few:
        client.get("/teams/")
    for i in range(20):
        team_create(actor=staff, name=f"More {i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/teams/")


def test_admin_changes_are_audited(client, make_user, user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    data = {
        "username": user.username,
        "first_name": "Ursula",
        "last_name": "Lind",
        "email": "new@example.com",
        "is_active": "",
        "timezone": "Europe/Paris",
        "last_login_0": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    response = client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert not user.is_active
    event = AuditEvent.objects.get(verb="user.changed_in_admin")
    assert (event.actor, event.channel, event.object_id) == (admin, "ui", str(user.pk))
    assert "Active" in event.details["changes"]


def test_admin_history_cannot_be_reverted_or_edited(client, make_user, user, make_token):
    """simple-history's history form would save a POST; ours refuses it, so a revoked token stays revoked."""
    from apps.accounts.services import token_revoke

    root = make_user("root", is_staff=True, is_superuser=True)
    token, _ = make_token(user)
    first = token.history.earliest("history_date")
    token_revoke(token_id=token.pk, actor=user)
    client.force_login(root)
    url = f"/admin/accounts/apitoken/{token.pk}/history/{first.history_id}/"
    assert client.get(url).status_code == 200  # reading history is fine
    response = client.post(url, {"name": "ci", "scopes": '["read"]', "revoked_at": ""})
    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_staff_who_are_not_superusers_cannot_raise_their_own_rights(make_user, team):
    stan = make_user("stan", is_staff=True)
    with pytest.raises(PermissionDenied):
        team_add_member(actor=stan, team=team, user=stan)
    with pytest.raises(PermissionDenied):
        team_role_set(actor=stan, team=team, role="auditor", enabled=True)
    assert not stan.groups.exists()
