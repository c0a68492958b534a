"""bulwark_store_delivery(): a delivery and its alerts stored in one round trip on
PostgreSQL (see alerts.store). SQLite stores them through the ORM instead."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION bulwark_store_delivery(
    p_source bigint, p_slug text, p_delivery_id text, p_body text, p_alerts jsonb,
    p_window_seconds integer, p_shard integer, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_delivery bigint;
    v_alert jsonb;
    v_id bigint;
    v_count integer;
    v_stored jsonb := '[]'::jsonb;
BEGIN
    INSERT INTO alerts_delivery (source_id, delivery_id, body, received_at)
    VALUES (p_source, p_delivery_id, p_body, p_now)
    ON CONFLICT ON CONSTRAINT delivery_once_per_source DO NOTHING
    RETURNING id INTO v_delivery;
    IF v_delivery IS NULL THEN
        RETURN NULL;  -- a delivery id seen before: the caller counts the duplicate
    END IF;
    FOR v_alert IN SELECT value FROM jsonb_array_elements(p_alerts) LOOP
        -- One fingerprint at a time (a storm of copies), as alerts.store._lock does. Each
        -- statement after it takes a new snapshot, so it sees the alert a copy committed.
        PERFORM pg_advisory_xact_lock(
            ('x' || substr(v_alert->>'fingerprint', 1, 15))::bit(60)::bigint);
        v_id := NULL;
        -- The application's clock, not the database's: the same one the dedup window and
        -- the rest of Bulwark go by. A copy that waited on the lock keeps the later time.
        UPDATE alerts_alert SET count = count + 1, last_seen_at = greatest(last_seen_at, p_now),
                                status = v_alert->>'status'
        WHERE id = (
            SELECT id FROM alerts_alert
            WHERE source_id = p_source AND fingerprint = v_alert->>'fingerprint'
              AND last_seen_at >= p_now - make_interval(secs => p_window_seconds)
            ORDER BY last_seen_at DESC LIMIT 1)
        RETURNING id, count INTO v_id, v_count;
        IF v_id IS NULL THEN
            INSERT INTO alerts_alert (
                source_id, fingerprint, external_id, title, severity, status, occurred_at,
                entities, raw, count, first_seen_at, last_seen_at, trigger_errors)
            VALUES (
                p_source, v_alert->>'fingerprint', v_alert->>'external_id',
                v_alert->>'title', v_alert->>'severity', v_alert->>'status',
                (v_alert->>'occurred_at')::timestamptz, v_alert->'entities', v_alert->'raw',
                1, p_now, p_now, '[]'::jsonb)
            RETURNING id, count INTO v_id, v_count;
        END IF;
        INSERT INTO alerts_delivery_alerts (delivery_id, alert_id) VALUES (v_delivery, v_id)
        ON CONFLICT DO NOTHING;
        v_stored := v_stored || jsonb_build_array(jsonb_build_array(v_id, v_count));
    END LOOP;
    INSERT INTO alerts_intakecounter (source, outcome, shard, count)
    VALUES (p_slug, 'accepted', p_shard, 1)
    ON CONFLICT ON CONSTRAINT intake_counter_once
    DO UPDATE SET count = alerts_intakecounter.count + 1;
    RETURN v_stored;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS bulwark_store_delivery(bigint, text, text, text, jsonb, integer, integer, timestamptz);"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0006_intake_counter_shards")]

    operations = [migrations.RunPython(create, drop)]
