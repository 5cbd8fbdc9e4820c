"""Migration operations shared by the apps."""

from django.db.migrations.operations.base import Operation

_FUNCTION = """
CREATE OR REPLACE FUNCTION releasehub_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table "%" is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


class AppendOnly(Operation):
    """Make a model's table append-only on PostgreSQL: a trigger rejects every UPDATE and DELETE.

    One line in the migration that creates the table: `AppendOnly("historicalenvironment")`.
    Other databases have no such trigger; there the audit chain still detects edits.
    TRUNCATE stays possible for the table owner (test databases are flushed that way).
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name], {}

    def state_forwards(self, app_label, state) -> None:
        pass

    def _table(self, app_label, state) -> str:
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, to_state))
        trigger = schema_editor.quote_name(f"{self._table(app_label, to_state)}_append_only")
        schema_editor.execute(_FUNCTION, params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION releasehub_append_only()"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        table = self._table(app_label, from_state)
        trigger = schema_editor.quote_name(f"{table}_append_only")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {schema_editor.quote_name(table)}")

    def describe(self) -> str:
        return f"Make {self.model_name} append-only (PostgreSQL trigger)"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name}_append_only"


class PostgresOnlySQL(Operation):
    """SQL that only PostgreSQL runs (e.g. a GIN index); other databases skip it.

    `PostgresOnlySQL("CREATE INDEX ... USING gin (labels jsonb_path_ops)", "DROP INDEX ...")`
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, sql: str, reverse_sql: str) -> None:
        self.sql, self.reverse_sql = sql, reverse_sql

    def deconstruct(self):
        return self.__class__.__name__, [self.sql, self.reverse_sql], {}

    def state_forwards(self, app_label, state) -> None:
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(self.sql, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(self.reverse_sql, params=None)

    def describe(self) -> str:
        return "PostgreSQL only: " + self.sql[:60]
