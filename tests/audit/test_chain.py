"""The hash chain: appends link up, and `audit_verify` finds the first edited or removed event."""

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.audit.models import GENESIS_HASH, AuditEvent
from apps.audit.services import audit_chain_check, audit_chain_verify, audit_record
from apps.core.context import Channel, acting
from tests.conftest import on_postgres


@pytest.fixture
def chain(db, user):
    with acting(channel=Channel.UI, user=user, ip="192.0.2.7"):
        return [
            audit_record(
                verb="thing.done", object_type="test.thing", object_id=i, summary=f"thing {i}", details={"i": i}
            )
            for i in range(5)
        ]


def tamper(sql: str, params) -> None:
    """Change the table behind the application's back, as someone with database access could.

    On PostgreSQL the append-only trigger is disabled first (the table owner can do that),
    to show the chain catches what gets past the trigger.
    """
    with connection.cursor() as cursor:
        if on_postgres():
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks may block ALTER TABLE
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute(sql, params)
        if on_postgres():
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")


def test_events_link_to_their_predecessor(chain, user):
    assert chain[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.hash
    event = AuditEvent.objects.get(pk=chain[2].pk)
    assert (event.actor, event.actor_name, event.channel, event.ip) == (user, "ursula", "ui", "192.0.2.7")
    assert event.compute_hash() == event.hash


def test_verify_reports_ok(chain, capsys):
    call_command("audit_verify")
    assert "OK: 5 events verified" in capsys.readouterr().out
    assert audit_chain_check().ok


def test_verify_detects_an_edited_row(chain):
    tamper("UPDATE audit_auditevent SET summary = %s WHERE id = %s", ["nothing happened", chain[2].pk])
    report = audit_chain_check()
    assert (report.ok, report.broken_id, report.checked) == (False, chain[2].pk, 2)
    assert "edited" in report.reason
    with pytest.raises(CommandError, match=f"BROKEN at audit event #{chain[2].pk}"):
        call_command("audit_verify")


def test_verify_detects_edited_details(chain):
    tamper("UPDATE audit_auditevent SET details_json = %s WHERE id = %s", ['{"i":99}', chain[1].pk])
    assert audit_chain_check().broken_id == chain[1].pk


def test_verify_detects_a_removed_row(chain):
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [chain[3].pk])
    report = audit_chain_check()
    assert report.broken_id == chain[4].pk
    assert "removed or altered" in report.reason


def test_verify_detects_a_rehashed_row(chain):
    """Recomputing the edited row's own hash is not enough: the next event still links to the old one."""
    event = AuditEvent.objects.get(pk=chain[1].pk)
    event.summary = "forged"
    tamper(
        "UPDATE audit_auditevent SET summary = %s, hash = %s WHERE id = %s", ["forged", event.compute_hash(), event.pk]
    )
    assert audit_chain_check().broken_id == chain[2].pk


def test_verify_service_records_its_outcome(chain):
    assert audit_chain_verify().ok
    event = AuditEvent.objects.order_by("-id").first()
    assert event.verb == "audit.verified"
    assert event.details == {"checked": 5, "head_hash": chain[-1].hash}
    tamper("UPDATE audit_auditevent SET verb = %s WHERE id = %s", ["x", chain[0].pk])
    assert not audit_chain_verify().ok
    assert AuditEvent.objects.order_by("-id").first().verb == "audit.broken"


def test_details_survive_the_round_trip(db):
    """Values that JSON turns into other types (dates, decimals, tuples) are stored as JSON gives them back."""
    import datetime
    import decimal

    event = audit_record(
        verb="x.y",
        details={
            "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            "n": decimal.Decimal("1.5"),
            "t": (1, 2),
            "u": "ünïcode ✓",
            "f": 0.1,
            # Numbers a JSON column would hand back in another form (jsonb: 1e16 -> 10000000000000000).
            "big": 1e16,
            "negative_zero": -0.0,
        },
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.hash == stored.compute_hash()
    assert audit_chain_check().ok
