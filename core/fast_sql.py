"""Hand-written SQL for the statements every step runs.

Django's ORM spends about a millisecond of CPU compiling each query on this class of
machine, ten times what the database takes to answer (measured in bench/engine.py's
notes). The handful of statements on the per-step path are written here once, portable
between PostgreSQL and SQLite; everything else uses the ORM. Values are adapted by the
model fields themselves, so JSON and datetimes are stored exactly as the ORM stores them.
On PostgreSQL the statements are prepared (common.prepared), and those that carry many
rows take them as one JSON recordset, so that their text never depends on the row count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models, transaction
from django.utils.dateparse import parse_datetime

from common.prepared import column_type, hot_cursor, on_postgresql, recordset
from core.models import Attempt, Run, StepRun

UNIT_TABLE = StepRun._meta.db_table
ATTEMPT_TABLE = Attempt._meta.db_table


# Field types whose plain Python values (str, int, bool, float, None) go to the driver
# unchanged: their get_db_prep_save would only hand the value back, at some cost per call.
_PLAIN_TYPES = frozenset({"CharField", "TextField", "IntegerField", "PositiveIntegerField",
                          "BigIntegerField", "PositiveBigIntegerField", "BooleanField",
                          "FloatField", "AutoField", "BigAutoField"})  # fmt: skip
_PLAIN_VALUES = (str, int, bool, float, type(None))
_fields: dict[tuple[type[models.Model], str], tuple[Any, bool]] = {}


def adapt(model: type[models.Model], name: str, value: Any) -> Any:
    """`value` as the database adapter for `model.name` expects it."""
    known = _fields.get((model, name))
    if known is None:
        field = model._meta.get_field(name)
        known = _fields[(model, name)] = (field, field.get_internal_type() in _PLAIN_TYPES)
    field, plain = known
    if plain and type(value) in _PLAIN_VALUES:
        return value
    return field.get_db_prep_save(value, connection)  # type: ignore[union-attr]


def decode_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes | bytearray) else value


def decode_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a datetime: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def db_now_plus(seconds: float) -> tuple[str, list[Any]]:
    """SQL for the database clock plus `seconds`, and its parameters."""
    if on_postgresql():
        return "(statement_timestamp() + %s * INTERVAL '1 second')", [seconds]
    return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', %s)", [f"{seconds:+f} seconds"]


def select_units(run_id: int, columns: Sequence[str], json_columns: Iterable[str],
                 datetime_columns: Iterable[str]) -> list[dict[str, Any]]:  # fmt: skip
    """Every unit row of a run, as dicts like QuerySet.values() gives."""
    json_set, dt_set = set(json_columns), set(datetime_columns)
    with hot_cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {UNIT_TABLE} WHERE run_id = %s", [run_id])  # noqa: S608 - fixed column names
        rows = cursor.fetchall()
    out = []
    for row in rows:
        item = dict(zip(columns, row, strict=True))
        for name in json_set:
            item[name] = decode_json(item[name])
        for name in dt_set:
            item[name] = decode_datetime(item[name])
        out.append(item)
    return out


def update_unit(
    row_id: int,
    *,
    expect_status: str,
    expect_attempts: int,
    expect_result: bool,
    fields: dict[str, Any],
) -> int:
    """UPDATE one unit if it still has the status, attempt number and (no) recorded result
    it was loaded with; a worker recording a result meanwhile makes this match nothing."""
    names = sorted(fields)
    assignments = ", ".join(f"{name} = %s" for name in names)
    params = [adapt(StepRun, name, fields[name]) for name in names]
    result = "IS NOT NULL" if expect_result else "IS NULL"
    with hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {UNIT_TABLE} SET {assignments} "  # noqa: S608 - names come from the model
            f"WHERE id = %s AND status = %s AND attempts = %s AND result {result}",
            [*params, row_id, expect_status, expect_attempts],
        )
        return int(cursor.rowcount)


@dataclass(frozen=True)
class UnitUpdate:
    """One conditional unit write of a transition: the fields to set, and what the row
    must still hold (status, attempt number, whether a result is recorded)."""

    row_id: int
    expect_status: str
    expect_attempts: int
    expect_result: bool
    fields: dict[str, Any]


def update_units(updates: Sequence[UnitUpdate]) -> int:
    """Apply conditional unit writes; returns how many rows matched.

    On PostgreSQL they go as one `UPDATE … FROM jsonb_to_recordset(…)` (a fan-out queues
    a hundred units in one statement, not a hundred round trips); on SQLite, where there
    is no concurrency to speak of, one statement a row.
    """
    if not on_postgresql():
        return sum(
            update_unit(u.row_id, expect_status=u.expect_status, expect_attempts=u.expect_attempts,
                        expect_result=u.expect_result, fields=u.fields)
            for u in updates
        )  # fmt: skip
    names = tuple(sorted({name for update in updates for name in update.fields}))
    return sum(
        _update_rows(names, updates[start : start + _UPDATE_BATCH])
        for start in range(0, len(updates), _UPDATE_BATCH)
    )


# Rows per statement: bounds a statement's size however wide the fan-out.
_UPDATE_BATCH = 1000


def _update_rows(names: tuple[str, ...], group: Sequence[UnitUpdate]) -> int:
    """One UPDATE for all of a transition's unit writes. The rows go as one JSON
    recordset, so the statement's text depends on the column names only (and is
    prepared); a bit mask per row says which columns it sets, the others keep theirs."""
    assignments = ", ".join(
        f"{name} = CASE WHEN v.mask & {1 << i} <> 0 THEN v.{name} ELSE u.{name} END"
        for i, name in enumerate(names)
    )
    columns = [("id", "bigint"), ("expect_status", "text"), ("expect_attempts", "bigint"),
               ("expect_result", "boolean"), ("mask", "bigint")]  # fmt: skip
    columns += [(name, column_type(StepRun, name)) for name in names]
    rows = [
        [u.row_id, u.expect_status, u.expect_attempts, u.expect_result,
         sum(1 << i for i, name in enumerate(names) if name in u.fields),
         *(u.fields.get(name) for name in names)]
        for u in group
    ]  # fmt: skip
    source, param = recordset(columns, rows)
    with hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {UNIT_TABLE} AS u SET {assignments} FROM {source} "  # noqa: S608 - names come from the model
            # The ids again, as an index condition: a plan prepared while the table was
            # small would otherwise scan it whole, however large it grows.
            "WHERE u.id = ANY(%s::bigint[]) AND u.id = v.id AND u.status = v.expect_status "
            "AND u.attempts = v.expect_attempts AND (u.result IS NOT NULL) = v.expect_result",
            [param, [u.row_id for u in group]],
        )
        return int(cursor.rowcount)


CLAIMED_COLUMNS = ("run_id", "step_id", "item_index", "phase", "attempts", "attempt_group",
                   "max_attempts", "inputs", "progress")  # fmt: skip


def take_unit(
    unit_id: int, token: int, *, worker: str, lease_seconds: float
) -> dict[str, Any] | None:
    """The claim: queued under this dispatch token → running, attempts + 1, leased.

    Returns the claimed unit's fields, or None when it was not claimable.
    """
    lease_sql, lease_params = db_now_plus(lease_seconds)
    now_sql, now_params = db_now_plus(0)
    with hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {UNIT_TABLE} SET status = 'running', attempts = attempts + 1, lease_owner = %s, "  # noqa: S608
            f"lease_expires_at = {lease_sql}, started_at = COALESCE(started_at, {now_sql}), "
            f"attempt_started_at = {now_sql}, result = NULL "
            "WHERE id = %s AND status = 'queued' AND dispatch_token = %s "
            f"RETURNING {', '.join(CLAIMED_COLUMNS)}",
            [worker, *lease_params, *now_params, *now_params, unit_id, token],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(CLAIMED_COLUMNS, row, strict=True))
    values["inputs"] = decode_json(values["inputs"])
    values["progress"] = decode_json(values["progress"])
    return values


def insert_finished_attempt(*, unit_id: int, number: int, attempt_group: int, worker: str,
                            idempotency_key: str, started_at: datetime, outcome: str,
                            finished_at: datetime, duration_ms: float,
                            error: dict[str, Any] | None) -> None:  # fmt: skip
    """An attempt's row, written once, when it has ended."""
    with hot_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ATTEMPT_TABLE} (unit_id, number, attempt_group, outcome, worker, "  # noqa: S608
            "idempotency_key, started_at, finished_at, duration_ms, error) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [unit_id, number, attempt_group, outcome, worker, idempotency_key,
             adapt(Attempt, "started_at", started_at), adapt(Attempt, "finished_at", finished_at),
             duration_ms, adapt(Attempt, "error", error)],
        )  # fmt: skip


RUN_COLUMNS = ("id", "playbook_id", "version_id", "status", "inputs", "context", "created_by_id", "actor",
               "created_at", "finished_at", "updated_at", "dry_run", "parent_id", "parent_unit")  # fmt: skip


def lock_run(run_id: int, *, wait: bool) -> tuple[Run, str] | None:
    """SELECT the run FOR UPDATE (SKIP LOCKED when not waiting), with its version's content
    hash; None if there is no such run or, not waiting, it is locked."""
    from playbooks.models import PlaybookVersion

    lock = ""
    if connection.features.has_select_for_update:
        lock = f" FOR UPDATE OF r{'' if wait else ' SKIP LOCKED'}"
    columns = ", ".join(f"r.{c}" for c in RUN_COLUMNS)
    query = (
        f"SELECT {columns}, v.content_hash FROM {Run._meta.db_table} r "  # noqa: S608 - fixed names
        f"JOIN {PlaybookVersion._meta.db_table} v ON v.id = r.version_id WHERE r.id = %s{lock}"
    )
    with hot_cursor() as cursor:
        cursor.execute(query, [run_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(RUN_COLUMNS, row[:-1], strict=True))
    for name in ("inputs", "context"):
        values[name] = decode_json(values[name])
    for name in ("created_at", "finished_at", "updated_at"):
        values[name] = decode_datetime(values[name])
    values["dry_run"] = bool(values["dry_run"])  # SQLite answers 0 or 1
    run = Run.from_db(connection.alias, list(RUN_COLUMNS), [values[c] for c in RUN_COLUMNS])
    return run, str(row[-1])


def run_version(run_id: int) -> tuple[int, str, bool]:
    """A run's pinned version id, that version's content hash, and whether it is dry."""
    from playbooks.models import PlaybookVersion

    query = (
        f"SELECT r.version_id, v.content_hash, r.dry_run FROM {Run._meta.db_table} r "  # noqa: S608 - fixed names
        f"JOIN {PlaybookVersion._meta.db_table} v ON v.id = r.version_id WHERE r.id = %s"
    )
    with hot_cursor() as cursor:
        cursor.execute(query, [run_id])
        version_id, content_hash, dry_run = cursor.fetchone()
    return int(version_id), str(content_hash), bool(dry_run)


def has_recorded_results(run_id: int) -> bool:
    """Whether any unit of the run holds a result not yet applied (cheaper than a load)."""
    with hot_cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {UNIT_TABLE} WHERE run_id = %s AND result IS NOT NULL LIMIT 1",  # noqa: S608
            [run_id],
        )
        return cursor.fetchone() is not None


# A finished attempt, recorded in one statement on PostgreSQL: the fenced UPDATE of its
# unit (`recorded`, empty when the attempt was fenced) and the Attempt row built from it.
_RECORDED = (
    f"recorded AS (UPDATE {UNIT_TABLE} SET result = %s WHERE id = %s "  # noqa: S608
    "AND status = 'running' AND attempts = %s AND result IS NULL RETURNING id)"
)
_ATTEMPT_COLUMNS = ("unit_id, number, attempt_group, outcome, worker, idempotency_key, "
                    "started_at, finished_at, duration_ms, error")  # fmt: skip
# Typed, because a parameter in a SELECT list has no column to take its type from.
_ATTEMPT_CASTS = ("%s::integer, %s::integer, %s::text, %s::text, %s::text, %s::timestamptz, "
                  "%s::timestamptz, %s::double precision, %s::jsonb")  # fmt: skip


def _recorded_params(
    unit_id: int, attempt: int, result: dict[str, Any], finished: dict[str, Any]
) -> list[Any]:
    """Parameters of `_RECORDED` and then of `_ATTEMPT_CASTS`."""
    return [
        adapt(StepRun, "result", result), unit_id, attempt,
        attempt, finished["attempt_group"], finished["outcome"], finished["worker"],
        finished["idempotency_key"], adapt(Attempt, "started_at", finished["started_at"]),
        adapt(Attempt, "finished_at", finished["finished_at"]), finished["duration_ms"],
        adapt(Attempt, "error", finished["error"]),
    ]  # fmt: skip


def record_finished_attempt(*, unit_id: int, attempt: int, result: dict[str, Any],
                            attempt_group: int, worker: str, idempotency_key: str,
                            started_at: datetime, outcome: str, finished_at: datetime,
                            duration_ms: float, error: dict[str, Any] | None) -> bool:  # fmt: skip
    """Write a finished attempt's result on its unit (fenced by the attempt number) and
    its Attempt row, atomically; False, writing nothing, when the attempt was fenced.

    On PostgreSQL one statement in autocommit does both (a CTE), so a worker that leaves
    its result for the run's lock holder pays one round trip for it.
    """
    finished: dict[str, Any] = {"attempt_group": attempt_group, "worker": worker,
                "idempotency_key": idempotency_key, "started_at": started_at, "outcome": outcome,
                "finished_at": finished_at, "duration_ms": duration_ms, "error": error}  # fmt: skip
    if not on_postgresql():
        with transaction.atomic():
            if not record_result(unit_id, attempt=attempt, result=result):
                return False
            insert_finished_attempt(unit_id=unit_id, number=attempt, **finished)
            return True
    with hot_cursor() as cursor:
        cursor.execute(
            f"WITH {_RECORDED} INSERT INTO {ATTEMPT_TABLE} ({_ATTEMPT_COLUMNS}) "  # noqa: S608
            f"SELECT id, {_ATTEMPT_CASTS} FROM recorded",
            _recorded_params(unit_id, attempt, result, finished),
        )
        return bool(cursor.rowcount == 1)


def record_result(unit_id: int, *, attempt: int, result: dict[str, Any]) -> bool:
    """Write a finished attempt's result on its unit, fenced by the attempt number."""
    with hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {UNIT_TABLE} SET result = %s WHERE id = %s AND status = 'running' "  # noqa: S608
            "AND attempts = %s AND result IS NULL",
            [adapt(StepRun, "result", result), unit_id, attempt],
        )
        return bool(cursor.rowcount)


DRAINED_COLUMNS = ("id", *CLAIMED_COLUMNS)


def _claim_next_sql(lease_seconds: float) -> tuple[str, list[Any]]:
    """UPDATE … RETURNING that claims the run's lowest queued unit, whatever its dispatch
    token (a drain wake-up stands for every unit queued with it); `run_id` and the worker
    are the first two parameters. SKIP LOCKED lets concurrent drainers pass each other."""
    lease_sql, lease_params = db_now_plus(lease_seconds)
    now_sql, now_params = db_now_plus(0)
    skip = " FOR UPDATE SKIP LOCKED" if on_postgresql() else ""
    sql = (
        f"UPDATE {UNIT_TABLE} SET status = 'running', attempts = attempts + 1, lease_owner = %s, "  # noqa: S608
        f"lease_expires_at = {lease_sql}, started_at = COALESCE(started_at, {now_sql}), "
        f"attempt_started_at = {now_sql}, result = NULL "
        f"WHERE id = (SELECT id FROM {UNIT_TABLE} WHERE run_id = %s AND status = 'queued' "
        f"ORDER BY id LIMIT 1{skip}) AND status = 'queued' "
        f"RETURNING {', '.join(DRAINED_COLUMNS)}"
    )
    return sql, [*lease_params, *now_params, *now_params]


def _drained(row: Sequence[Any] | None) -> dict[str, Any] | None:
    if row is None or row[0] is None:
        return None
    values = dict(zip(DRAINED_COLUMNS, row, strict=True))
    values["inputs"] = decode_json(values["inputs"])
    values["progress"] = decode_json(values["progress"])
    return values


def take_queued_unit(run_id: int, *, worker: str, lease_seconds: float) -> dict[str, Any] | None:
    """Claim the lowest queued unit of the run (a drain wake-up); None when none is left."""
    sql, params = _claim_next_sql(lease_seconds)
    with hot_cursor() as cursor:
        cursor.execute(sql, [worker, *params, run_id])
        return _drained(cursor.fetchone())


def record_and_take_next(*, unit_id: int, attempt: int, result: dict[str, Any], run_id: int,
                         lease_seconds: float, attempt_group: int, worker: str,
                         idempotency_key: str, started_at: datetime, outcome: str,
                         finished_at: datetime, duration_ms: float,
                         error: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:  # fmt: skip
    """A drainer's step: record the finished attempt (as record_finished_attempt does) and
    claim the run's next queued unit. Returns whether the result was recorded (False: the
    attempt was fenced) and the claimed unit, if any.

    On PostgreSQL this is one statement: the two UPDATEs touch different rows (one running,
    one queued), and the attempt row is only inserted when the fenced UPDATE matched.
    """
    finished: dict[str, Any] = {"attempt_group": attempt_group, "worker": worker,
                "idempotency_key": idempotency_key, "started_at": started_at, "outcome": outcome,
                "finished_at": finished_at, "duration_ms": duration_ms, "error": error}  # fmt: skip
    if not on_postgresql():
        with transaction.atomic():
            recorded = record_finished_attempt(
                unit_id=unit_id, attempt=attempt, result=result, **finished
            )
            return recorded, take_queued_unit(run_id, worker=worker, lease_seconds=lease_seconds)
    claim_sql, claim_params = _claim_next_sql(lease_seconds)
    with hot_cursor() as cursor:
        cursor.execute(
            f"WITH {_RECORDED}, attempt_row AS (INSERT INTO {ATTEMPT_TABLE} ({_ATTEMPT_COLUMNS}) "  # noqa: S608
            f"SELECT id, {_ATTEMPT_CASTS} FROM recorded), claimed AS ({claim_sql}) "
            f"SELECT {', '.join(f'c.{name}' for name in DRAINED_COLUMNS)}, "
            "(SELECT count(*) FROM recorded) FROM (SELECT 1) AS one LEFT JOIN claimed c ON true",
            [*_recorded_params(unit_id, attempt, result, finished), worker, *claim_params, run_id],
        )
        row = cursor.fetchone()
    return bool(row[-1]), _drained(row[:-1])


# What a new unit row holds unless told otherwise (the model's defaults, which Django
# applies in Python, not in the table).
_NEW_UNIT = {"item_index": -1, "phase": "main", "status": "pending", "attempts": 0,
             "max_attempts": 1, "attempt_group": 1, "dispatch_token": 0, "lease_owner": "",
             "requests_made": 0}  # fmt: skip


def insert_units(run_id: int, rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int, str], int]:
    """Create unit rows of a run (each dict names step_id and any other fields); returns
    each new row's id by (step_id, item_index, phase). One statement on PostgreSQL
    whatever the number of rows; on SQLite, as few as its parameter limit allows."""
    names = sorted({"step_id", *_NEW_UNIT, *(name for row in rows for name in row)})
    values = [[row.get(name, _NEW_UNIT.get(name)) for name in names] for row in rows]
    returning = "RETURNING id, step_id, item_index, phase"
    if on_postgresql():
        source, param = recordset([(n, column_type(StepRun, n)) for n in names], values)
        sql = (f"INSERT INTO {UNIT_TABLE} (run_id, {', '.join(names)}) "  # noqa: S608 - names come from the model
               f"SELECT %s, {', '.join(f'v.{n}' for n in names)} FROM {source} {returning}")  # fmt: skip
        params: list[Any] = [run_id, param]
    else:
        return _insert_units_in_batches(run_id, names, values, returning)
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        return {(step, item, phase): pk for pk, step, item, phase in cursor.fetchall()}


def _insert_units_in_batches(run_id: int, names: list[str], values: list[list[Any]],
                             returning: str) -> dict[tuple[str, int, str], int]:  # fmt: skip
    """SQLite: multi-row INSERTs within its limit on parameters per statement."""
    per_row = len(names) + 1
    batch = max(1, (connection.features.max_query_params or 999) // per_row)
    ids: dict[tuple[str, int, str], int] = {}
    for start in range(0, len(values), batch):
        chunk = values[start : start + batch]
        marks = ", ".join(["(" + ", ".join(["%s"] * per_row) + ")"] * len(chunk))
        params = [
            p
            for row in chunk
            for p in (run_id, *(adapt(StepRun, n, v) for n, v in zip(names, row, strict=True)))
        ]
        with hot_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {UNIT_TABLE} (run_id, {', '.join(names)}) VALUES {marks} {returning}",  # noqa: S608
                params,
            )
            ids.update({(step, item, phase): pk for pk, step, item, phase in cursor.fetchall()})
    return ids
