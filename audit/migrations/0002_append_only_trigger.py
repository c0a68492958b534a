"""On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE of audit events in the database itself.

The stream head table is left alone: it must stay updatable. TRUNCATE alone may be let
through by a session that sets `bulwark.audit_allow_truncate = 'on'`, which test suites
need (flushing a test database truncates every table); UPDATE and DELETE never are.
"""

from django.db import migrations

FUNCTION = "audit_event_append_only"
TRIGGER = "audit_event_append_only"


def install_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("audit", "AuditEvent")._meta.db_table)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE'
               AND current_setting('bulwark.audit_allow_truncate', true) = 'on' THEN
                RETURN NULL;
            END IF;
            RAISE EXCEPTION 'audit events are append-only: % on % is refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$;
        CREATE TRIGGER {TRIGGER}
            BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
        """,
        None,  # no parameters: the '%' in RAISE is PL/pgSQL's, not a placeholder
    )


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("audit", "AuditEvent")._meta.db_table)
    schema_editor.execute(
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table}; DROP FUNCTION IF EXISTS {FUNCTION}();", None
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(install_trigger, remove_trigger)]
