"""The audit API of API.md: visibility, filters, export, constant queries."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.context import Channel, acting

URL = "/api/v1/audit-events/"


@pytest.fixture
def auditor(make_user):
    auditor = make_user("audrey")
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    return auditor


@pytest.fixture
def events(db, user, other_user):
    with acting(channel=Channel.UI, user=user, ip="10.1.1.1"):
        audit_record(verb="thing.created", object_type="test.thing", object_id=1, summary="one")
        audit_record(verb="thing.deleted", object_type="test.thing", object_id=1, summary="one")
    with acting(channel=Channel.API, user=other_user, ip="10.2.2.2"):
        audit_record(verb="thing.created", object_type="test.thing", object_id=2, summary="two", details={"k": "v"})


def client_for(api_client, who):
    api_client.force_authenticate(who)
    return api_client


def test_users_see_their_own_events_and_auditors_see_all(api_client, events, user, auditor):
    own = client_for(api_client, user).get(URL).json()
    assert [(e["actor"], e["verb"]) for e in own["results"]] == [
        ("ursula", "thing.deleted"),
        ("ursula", "thing.created"),
    ]
    everything = client_for(api_client, auditor).get(URL).json()
    assert everything["count"] == 3


def test_event_shape(api_client, events, auditor):
    event = client_for(api_client, auditor).get(URL).json()["results"][0]
    assert set(event) == {
        "id",
        "at",
        "actor",
        "token",
        "channel",
        "ip",
        "verb",
        "object_type",
        "object_id",
        "summary",
        "details",
        "hash",
        "prev_hash",
    }
    assert (event["actor"], event["channel"], event["ip"], event["details"]) == ("oscar", "api", "10.2.2.2", {"k": "v"})
    assert len(event["hash"]) == 64


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=oscar", 1),
        ("verb=thing.created", 2),
        ("object_type=test.thing&object_id=1", 2),
        ("channel=ui", 2),
        ("actor=nobody", 0),
    ],
)
def test_filters(api_client, events, auditor, query, expected):
    assert client_for(api_client, auditor).get(f"{URL}?{query}").json()["count"] == expected


def test_time_filters(api_client, events, auditor):
    client = client_for(api_client, auditor)
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert client.get(URL, {"since": past}).json()["count"] == 3
    assert client.get(URL, {"since": future}).json()["count"] == 0
    assert client.get(URL, {"until": past}).json()["count"] == 0
    bad = client.get(URL, {"since": "last tuesday"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid"
    assert "since" in bad.json()["fields"]


def test_detail_of_invisible_event_is_404(api_client, events, user, other_user):
    from apps.audit.models import AuditEvent

    theirs = AuditEvent.objects.get(actor=other_user)
    response = client_for(api_client, user).get(f"{URL}{theirs.pk}/")
    assert response.status_code == 404


def test_export_csv(api_client, events, auditor):
    response = client_for(api_client, auditor).get(f"{URL}export/", {"format": "csv", "verb": "thing.created"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["actor"], r["object_id"]) for r in rows] == [("ursula", "1"), ("oscar", "2")]  # oldest first
    assert json.loads(rows[1]["details"]) == {"k": "v"}


def test_export_json(api_client, events, user):
    response = client_for(api_client, user).get(f"{URL}export/", {"format": "json"})
    data = json.loads(b"".join(response.streaming_content))
    assert [e["verb"] for e in data] == ["thing.created", "thing.deleted"]


def test_export_rejects_unknown_format(api_client, events, user):
    response = client_for(api_client, user).get(f"{URL}export/", {"format": "xml"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"format": ["Choose csv or json."]}


def test_anonymous_is_401(api_client, events):
    assert api_client.get(URL).status_code == 401
    assert api_client.get(f"{URL}export/").status_code == 401


def test_list_queries_do_not_grow_with_rows(api_client, auditor, django_assert_max_num_queries):
    client = client_for(api_client, auditor)
    for i in range(5):
        audit_record(verb="x.y", object_id=i)
    with django_assert_max_num_queries(10) as few:
        client.get(URL)
    for i in range(50):
        audit_record(verb="x.y", object_id=i)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(URL).json()["count"] == 55
