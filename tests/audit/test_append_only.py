"""On PostgreSQL, audit and history tables reject UPDATE and DELETE whoever asks."""

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from apps.audit.services import audit_record
from tests.conftest import on_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not on_postgres(), reason="the append-only trigger is a PostgreSQL feature"),
]


def append_only_tables() -> list[str]:
    """The audit table and every history table of every app."""
    history = sorted(m._meta.db_table for m in apps.get_models() if m.__name__.startswith("Historical"))
    return ["audit_auditevent", *history]


def test_every_history_table_has_the_trigger(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgname = c.relname || '_append_only'"
        )
        protected = {row[0] for row in cursor.fetchall()}
    assert len(append_only_tables()) >= 4
    assert set(append_only_tables()) <= protected, set(append_only_tables()) - protected


@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}"])
def test_update_and_delete_are_rejected(db, user, statement):
    audit_record(verb="x.y")
    for table in append_only_tables():
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement.format(table=connection.ops.quote_name(table)))


def test_inserts_still_work(db, user):
    before = user.history.count()
    user.last_name = "New"
    user.save()
    assert user.history.count() == before + 1
