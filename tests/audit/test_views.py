from django.contrib.auth.models import Permission

from apps.audit.services import audit_record
from apps.core.context import Channel, acting


def test_audit_page_lists_and_filters(client, user, other_user):
    with acting(channel=Channel.UI, user=user):
        audit_record(verb="thing.created", summary="mine")
    with acting(channel=Channel.UI, user=other_user):
        audit_record(verb="thing.created", summary="theirs")
    client.force_login(user)
    page = client.get("/audit/").content.decode()
    assert "mine" in page
    assert "theirs" not in page
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    page = client.get("/audit/", {"actor": "oscar"}).content.decode()
    assert "theirs" in page
    assert "mine" not in page


def test_audit_page_shows_bad_filters(client, user):
    client.force_login(user)
    response = client.get("/audit/", {"since": "not a date"})
    assert response.status_code == 200
    assert "Enter a valid date/time." in response.content.decode()


def test_audit_page_paginates_with_constant_queries(client, user, django_assert_max_num_queries):
    client.force_login(user)
    with acting(channel=Channel.UI, user=user):
        for i in range(3):
            audit_record(verb="x.y", object_id=i)
    with django_assert_max_num_queries(20) as few:
        client.get("/audit/")
    with acting(channel=Channel.UI, user=user):
        for i in range(120):
            audit_record(verb="x.y", object_id=i)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/audit/", {"page": 2})
    assert "Page 2 of 3" in response.content.decode()


def test_audit_page_requires_sign_in(client, db):
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
