"""Retention: pruning audit events older than the retention period, leaving tombstones.

What may go: the oldest events of a stream, up to the first that is recent or is about a
run that is kept (on legal hold, or still open, as the caller says). A run's own stream
goes whole or not at all, so a run's timeline is never half there. Before deleting, the
pruned range is verified, so a tombstone never vouches for events that were altered;
then a signed tombstone (audit.tombstones) takes its place in the chain, and one
`audit.pruned` event in the system stream records the pass.

The stream heads stay: a digest that listed a stream still finds it, and a run stream
appended to after pruning continues from the tombstone's hash.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from audit.digest_verify import Listed, listings
from audit.digests import make_digest
from audit.events import EVENTS, record_event
from audit.hashing import ZERO_HASH, format_timestamp
from audit.holds import HOLD_KINDS, PLACED, hold_lock
from audit.models import AuditEvent, AuditStreamHead, AuditTombstone, LegalHold
from audit.tombstones import sign_tombstone
from audit.verify import Row, event_rows, row_hash

log = logging.getLogger("bulwark.audit")

STREAMS_PER_BATCH = 200
REFUSALS_LISTED = 20

# Given run ids, those whose trail must stay although old (the engine's open runs).
KeepRuns = Callable[[set[int]], set[int]]


@dataclass
class PruneResult:
    """What a pass of prune_audit did."""

    before: datetime
    streams: int = 0
    events: int = 0
    held: int = 0  # streams kept, in part or whole, for a legal hold
    kept_open: int = 0  # run streams kept because the run is still open
    refused: list[tuple[str, str]] = field(default_factory=list)  # (stream, why)

    def add(self, part: PruneResult) -> None:
        """Count one batch's outcome into the pass's."""
        self.streams += part.streams
        self.events += part.events
        self.held += part.held
        self.kept_open += part.kept_open
        self.refused.extend(part.refused)


def run_of(stream: str) -> int | None:
    """The run a run stream ("run:<id>") is of; None for other streams."""
    prefix, _, rest = stream.partition(":")
    return int(rest) if prefix == "run" and rest.isdigit() else None


def retention_cutoff(now: datetime | None = None) -> datetime | None:
    """Events older than this may be pruned; None when retention is off (0 days)."""
    days = settings.BULWARK_AUDIT_RETENTION_DAYS
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def prune_audit(
    before: datetime,
    *,
    keep_runs: KeepRuns,
    reason: str,
    actor: str = "system",
    dry_run: bool = False,
) -> PruneResult:
    """Prune what may go of the events older than `before`; see the module's docstring.

    A digest is signed first, so every range pruned is checked against signed heads. Each
    batch of streams is pruned, and recorded (`audit.pruned`), in its own transaction.
    A dry run does all of it, the digest included, in one transaction it then undoes, and
    reports what it would have done: it leaves nothing behind.
    """
    if not dry_run:
        return _prune(before, keep_runs, reason, actor)
    with transaction.atomic():
        result = _prune(before, keep_runs, reason, actor)
        transaction.set_rollback(True)
    return result


def _prune(before: datetime, keep_runs: KeepRuns, reason: str, actor: str) -> PruneResult:
    result = PruneResult(before=before)
    batches = _candidate_batches(before)
    first = next(batches, None)
    if first is None:
        return result
    make_digest()
    for batch in itertools.chain([first], batches):
        with transaction.atomic():
            part = PruneResult(before=before)
            _prune_batch(batch, before, keep_runs, reason, part)
            if part.events or part.refused:
                _record(part, reason, actor)
        result.add(part)
    return result


def _record(part: PruneResult, reason: str, actor: str) -> None:
    record_event(
        stream="system",
        kind="audit.pruned",
        actor=actor,
        payload={
            "before": format_timestamp(part.before),
            "reason": reason,
            "streams": part.streams,
            "events": part.events,
            "held": part.held,
            "kept_open": part.kept_open,
            # The first few, to say what to look at: audit_verify names the rest.
            "refused": [f"{s}: {why}" for s, why in part.refused[:REFUSALS_LISTED]],
            "refused_count": len(part.refused),
        },
    )


def _candidate_batches(before: datetime) -> Iterator[list[str]]:
    """Streams with events older than `before`, a batch at a time, in stream order.

    Paged through the stream heads, so each batch reads only its own streams' events
    (by the stream-and-seq index) rather than every old event of every stream again.
    """
    after: str | None = None
    while True:
        heads = AuditStreamHead.objects.order_by("stream")
        if after is not None:
            heads = heads.filter(stream__gt=after)
        page = list(heads.values_list("stream", flat=True)[:STREAMS_PER_BATCH])
        if not page:
            return
        old = (
            AuditEvent.objects.filter(stream__in=page, created_at__lt=before)
            .values_list("stream", flat=True)
            .distinct()
        )
        batch = sorted(set(old))
        if batch:
            yield batch
        after = page[-1]


def _prune_batch(
    batch: list[str], before: datetime, keep_runs: KeepRuns, reason: str, result: PruneResult
) -> None:
    # Holds are placed and released under the same lock: one placed while this batch is
    # pruned waits for it, and one placed before is seen below.
    hold_lock()
    heads = _lock_heads(batch)
    about = (
        AuditEvent.objects.filter(stream__in=batch, created_at__lt=before, run_id__isnull=False)
        .values_list("run_id", flat=True)
        .distinct()
    )
    mentioned = {run for run in [*about, *map(run_of, batch)] if run is not None}
    held = held_runs(mentioned)
    open_runs = keep_runs(mentioned - held) if mentioned - held else set()
    kept = held | open_runs
    blocked = dict(
        AuditEvent.objects.filter(stream__in=batch)
        .filter(Q(created_at__gte=before) | Q(run_id__in=kept))
        .values("stream")
        .annotate(first=Min("seq"))
        .values_list("stream", "first")
    )
    ends = _pruned_ends(batch)
    plans: list[_Plan] = []
    for stream in batch:
        head = heads.get(stream)
        if head is None:  # its head was deleted since the batch was listed
            continue
        run = run_of(stream)
        if run is not None and (stream in blocked or run in kept):
            # A run's stream goes whole or not at all.
            if run in held:
                result.held += 1
            elif run in open_runs:
                result.kept_open += 1
            continue
        if stream in blocked:
            result.held += _held_at(stream, blocked[stream], held)
        through = blocked[stream] - 1 if stream in blocked else head[0]
        start, prev = ends.get(stream, (1, ZERO_HASH))
        if through >= start:
            plans.append(_Plan(stream, start, through, prev))
    if not plans:
        return
    tombstones = _tombstones(plans, reason, result)
    if not tombstones:
        return
    _allow_prune()
    AuditTombstone.objects.bulk_create(tombstones)
    ranges = " OR ".join(["(stream = %s AND seq >= %s AND seq <= %s)"] * len(tombstones))
    params = [v for t in tombstones for v in (t.stream, t.from_seq, t.through_seq)]
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {EVENTS} WHERE {ranges}", params)  # noqa: S608
        deleted = cursor.rowcount
    expected = sum(t.event_count for t in tombstones)
    if deleted != expected:
        # The batch's transaction rolls back: no tombstone stands for events still there.
        raise RuntimeError(f"audit: pruning deleted {deleted} events where the tombstones "
                           f"count {expected}; nothing of this batch was pruned")  # fmt: skip
    result.streams += len(tombstones)
    result.events += sum(t.event_count for t in tombstones)


@dataclass(frozen=True)
class _Plan:
    """A range of one stream to prune, and the hash its first event must follow."""

    stream: str
    start: int
    through: int
    prev: str


def _tombstones(plans: list[_Plan], reason: str, result: PruneResult) -> list[AuditTombstone]:
    """Read and verify every planned range in one pass; a signed tombstone for each that
    verifies, and a refusal for each that does not."""
    ranges = Q()
    for plan in plans:
        ranges |= Q(stream=plan.stream, seq__gte=plan.start, seq__lte=plan.through)
    by_stream = {plan.stream: plan for plan in plans}
    listed = listings(by_stream)
    made = []
    now = timezone.now()
    with closing(event_rows(AuditEvent.objects.filter(ranges))) as events:
        for stream, rows in groupby(events, key=itemgetter(1)):
            plan = by_stream.pop(stream)
            tombstone, why = _range_tombstone(plan, rows, listed.get(stream, []))
            if tombstone is None:
                log.error("audit: not pruning %s: %s", stream, why)
                result.refused.append((stream, why))
                continue
            tombstone.pruned_at, tombstone.reason = now, reason[:200]
            sign_tombstone(tombstone)
            made.append(tombstone)
    for stream, plan in by_stream.items():  # no events at all where some were expected
        result.refused.append((stream, f"seq {plan.start} is missing; run audit_verify"))
    return made


def _range_tombstone(
    plan: _Plan, rows: Iterator[Row], listed: list[Listed]
) -> tuple[AuditTombstone | None, str]:
    """The (unsigned) tombstone of one planned range if its events verify, else why not."""
    why = _uncovered(plan, listed)
    if why is not None:
        return None, why
    # Every digest's listing in the range, each of which must be the event there.
    signed: dict[int, set[str]] = {}
    for entry in listed:
        if plan.start <= entry.seq <= plan.through:
            signed.setdefault(entry.seq, set()).add(entry.hash)
    expected_seq, expected_prev, count = plan.start, plan.prev, 0
    first_at = last_at = None
    for row in rows:
        seq = row[2]
        if seq != expected_seq or row[10] != expected_prev or row_hash(row) != row[11]:
            return None, f"seq {expected_seq} does not verify; run audit_verify"
        if signed.get(seq, {row[11]}) != {row[11]}:
            return None, f"seq {seq} is not the event a digest signed; run audit_verify"
        count += 1
        last_at = _when(row[3])
        first_at = first_at or last_at
        expected_seq, expected_prev = seq + 1, row[11]
    if expected_seq != plan.through + 1 or first_at is None or last_at is None:
        return None, f"seq {expected_seq} is missing; run audit_verify"
    tombstone = AuditTombstone(
        stream=plan.stream, from_seq=plan.start, through_seq=plan.through,
        prev_hash=plan.prev, hash=expected_prev, event_count=count, first_at=first_at,
        last_at=last_at,
    )  # fmt: skip
    return tombstone, ""


def _uncovered(plan: _Plan, listed: list[Listed]) -> str | None:
    """Why the range cannot be pruned yet: no signed digest lists the stream at or past its
    end, so nothing signed would vouch for the hash its tombstone ends on."""
    if any(entry.seq >= plan.through for entry in listed):
        return None
    return f"no digest lists seq {plan.through} or later yet; run audit_digest"


def held_runs(run_ids: set[int]) -> set[int]:
    """Those of the runs on legal hold: by the hold table, or by their trails (a hold
    placed and not released), so that deleting a hold's row releases nothing."""
    held = set(LegalHold.objects.filter(run_id__in=run_ids).values_list("run_id", flat=True))
    last: dict[str, str] = {}
    for stream, kind in (
        AuditEvent.objects.filter(stream__in=[f"run:{r}" for r in run_ids], kind__in=HOLD_KINDS)
        .order_by("stream", "seq")
        .values_list("stream", "kind")
    ):
        last[stream] = kind
    held.update(run for stream, kind in last.items() if kind == PLACED
                and (run := run_of(stream)) is not None)  # fmt: skip
    return held


def _when(created: datetime | str) -> datetime:
    """An event's time as verification read it (PostgreSQL writes it as text)."""
    return datetime.fromisoformat(created) if isinstance(created, str) else created


def _lock_heads(streams: list[str]) -> dict[str, tuple[int, str]]:
    rows = (
        AuditStreamHead.objects.select_for_update()
        .filter(stream__in=streams)
        .order_by("stream")
        .values_list("stream", "seq", "hash")
    )
    return {stream: (seq, digest) for stream, seq, digest in rows}


def _pruned_ends(streams: list[str]) -> dict[str, tuple[int, str]]:
    """Where each already pruned stream's remaining events start, and the hash before."""
    ends: dict[str, tuple[int, str]] = {}
    for stream, through, digest in (
        AuditTombstone.objects.filter(stream__in=streams)
        .order_by("stream", "from_seq")
        .values_list("stream", "through_seq", "hash")
    ):
        ends[stream] = (through + 1, digest)
    return ends


def _held_at(stream: str, first_blocked: int, held: set[int]) -> int:
    """1 when the event that stops the stream's pruning is about a held run."""
    run_id = (
        AuditEvent.objects.filter(stream=stream, seq=first_blocked)
        .values_list("run_id", flat=True)
        .first()
    )
    return 1 if run_id is not None and run_id in held else 0


def _allow_prune() -> None:
    """Let this transaction delete audit events past the append-only trigger (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL bulwark.audit_prune = 'on'")
