"""Verifying the audit chains: every hash, every link, no gaps, heads agree (SPEC §8)."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, NotRequired, TypedDict

from django.db import connection, transaction
from django.db.models import Exists, Func, OuterRef, QuerySet, TextField
from django.db.models.functions import Cast

from audit.digest_verify import (
    DIGESTS,
    Listed,
    listings,
    staleness,
    stream_listed_but_gone,
    verify_digest_chain,
)
from audit.hashing import ZERO_HASH, event_hash, format_timestamp
from audit.models import AuditEvent, AuditStreamHead, AuditTombstone
from audit.read_ahead import read_ahead
from audit.signing import trusted_public_keys
from audit.tombstones import tombstones_fault, tombstones_of

STREAMS_PER_BATCH = 500
EVENTS_PER_CHUNK = 2000
UNREADABLE = "unreadable"  # never a SHA-256 hex digest, so never an event's hash


class ChainProblem(TypedDict):
    """Where a chain first fails to verify; `id` is None when the event is missing.
    `digest` is the digest whose record of the stream it contradicts, if it is one."""

    stream: str
    seq: int
    id: int | None
    reason: str
    digest: NotRequired[int]
    tombstone: NotRequired[int]  # the tombstone that does not hold, if it is one


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of verify_chains."""

    ok: bool
    events_checked: int
    streams_checked: int
    first_problem: ChainProblem | None


@dataclass(frozen=True)
class Digested:
    """What the digests say, for checking the streams against: `newest` is the newest
    digest's number and `watermark` its watermark (audit.digests)."""

    newest: int
    watermark: int


def verify_chains(
    streams: Iterable[str] | None = None, *, digested: Digested | None = None
) -> VerifyResult:
    """Recompute every event's hash and link, stream by stream, in sequence order.

    Stops at the first problem: a hash that does not match the event's contents, a
    prev_hash that does not match the previous event, a gap in the sequence, a stream
    head that disagrees with the last event (a deleted tail), or events with no head.
    A pruned stream starts after its tombstones (audit.tombstones), which must hold.
    With `digested`, each stream is also checked against every head the digests list
    for it, and a head that moved before the newest digest must be listed as it is.
    """
    wanted = None if streams is None else sorted(set(streams))
    events_checked = streams_checked = 0
    for heads in _head_batches(wanted):
        unseen = dict(heads)
        listed = listings(heads) if digested is not None else {}
        pruned = tombstones_of(heads)
        with closing(event_rows(AuditEvent.objects.filter(stream__in=list(heads)))) as events:
            for stream, chain in groupby(events, key=itemgetter(1)):
                streams_checked += 1
                checks = _Checks(unseen.pop(stream), listed.get(stream, []), digested,
                                 pruned.get(stream, []))  # fmt: skip
                checked, problem = _verify_stream(stream, chain, checks)
                events_checked += checked
                if problem is not None:
                    return VerifyResult(False, events_checked, streams_checked, problem)
        for stream, head in sorted(unseen.items()):
            streams_checked += 1
            checks = _Checks(head, listed.get(stream, []), digested, pruned.get(stream, []))
            _, problem = _verify_stream(stream, iter(()), checks)
            if problem is not None:
                return VerifyResult(False, events_checked, streams_checked, problem)
    orphan = _headless(AuditEvent.objects.all(), wanted, "seq")
    if orphan is not None:
        problem = ChainProblem(
            stream=orphan.stream,
            seq=orphan.seq,
            id=orphan.pk,
            reason="the stream has events but no head row (the head was deleted)",
        )
        return VerifyResult(False, events_checked, streams_checked + 1, problem)
    buried = _headless(AuditTombstone.objects.all(), wanted, "from_seq")
    if buried is not None:
        problem = ChainProblem(
            stream=buried.stream,
            seq=buried.through_seq,
            id=None,
            reason="the stream has a tombstone but no head row (the head was deleted)",
            tombstone=buried.pk,
        )
        return VerifyResult(False, events_checked, streams_checked + 1, problem)
    return VerifyResult(True, events_checked, streams_checked, None)


@dataclass(frozen=True)
class _Checks:
    """What one stream's events are checked against besides each other."""

    head: AuditStreamHead
    listed: list[Listed]  # as the digests list it, oldest digest first
    digested: Digested | None
    tombstones: list[AuditTombstone]  # where it was pruned, oldest range first


class HashedTime(Func):
    """An event's time as the text its hash covers (hashing.format_timestamp), written by
    PostgreSQL itself; elsewhere the time, for Python to write."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"""to_char({sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""", params

    def as_sql(self, compiler: Any, connection: Any, *args: Any, **extra: Any) -> Any:
        return compiler.compile(self.source_expressions[0])


def event_rows(events: QuerySet[AuditEvent]) -> Generator[Row]:
    """The events as verification reads them (Row), by stream and seq, a chunk at a time
    read ahead while the caller hashes (close it when stopping early)."""
    rows = (
        events.order_by("stream", "seq")
        .annotate(payload_text=Cast("payload", TextField()), created_text=HashedTime("created_at"))
        .values_list(*_columns())
    )
    return read_ahead(rows, EVENTS_PER_CHUNK)


def _columns() -> tuple[str, ...]:
    """The columns verification reads, the payload as the JSON text stored."""
    created = "created_text" if connection.vendor == "postgresql" else "created_at"
    return ("id", "stream", "seq", created, "actor", "kind", "run_id", "step_id", "playbook",
            "payload_text", "prev_hash", "hash")  # fmt: skip


Row = tuple[
    int, str, int, datetime | str, str, str, int | None, str | None, str | None, str, str, str
]


def row_hash(row: Row) -> str:
    """The hash the event read as `row` must have; UNREADABLE if no event could hold it."""
    _, stream, seq, created_at, actor, kind, run_id, step_id, playbook, payload, prev, _ = row
    created = created_at if isinstance(created_at, str) else format_timestamp(created_at)
    try:
        return event_hash(stream=stream, seq=seq, created_at=created, actor=actor, kind=kind,
                          run_id=run_id, step_id=step_id, playbook=playbook,
                          payload_text=payload, prev_hash=prev)  # fmt: skip
    # Not JSON (SQLite stores text), not UTF-8, or nested deeper than any event could be
    # written with: it was altered.
    except (ValueError, RecursionError):
        return UNREADABLE


def _verify_stream(
    stream: str, chain: Iterator[Row], checks: _Checks
) -> tuple[int, ChainProblem | None]:
    """Check one stream's events (in seq order) against each other, its head and digests."""
    listed = sorted(checks.listed, key=lambda entry: entry.seq)
    expected_seq, prev_hash, checked, at = 1, ZERO_HASH, 0, 0
    if checks.tombstones:
        problem, at = _check_tombstones(stream, checks.tombstones, listed)
        if problem is not None:
            return 0, problem
        last = checks.tombstones[-1]
        expected_seq, prev_hash = last.through_seq + 1, last.hash
    for row in chain:
        checked += 1
        pk, seq, event_hash = row[0], row[2], row[11]
        reason = None
        if seq != expected_seq:
            reason = f"sequence gap: expected seq {expected_seq}, found seq {seq}"
        elif row_hash(row) != event_hash:
            reason = "hash does not match the event's contents (the event was altered)"
        elif row[10] != prev_hash:
            reason = "prev_hash does not match the previous event's hash (the chain is broken)"
        if reason is not None:
            return checked, ChainProblem(stream=stream, seq=seq, id=pk, reason=reason)
        while at < len(listed) and listed[at].seq <= seq:
            entry = listed[at]
            if entry.seq == seq and entry.hash != event_hash:
                reason = (f"the event is not the one digest #{entry.digest} signed for seq "
                          f"{entry.seq}: the stream was rewritten at or before this event")  # fmt: skip
                return checked, ChainProblem(stream=stream, seq=seq, id=pk,
                                             reason=reason, digest=entry.digest)  # fmt: skip
            at += 1
        expected_seq, prev_hash = expected_seq + 1, event_hash
    last_seq = expected_seq - 1
    head = checks.head
    if head.seq != last_seq or head.hash != prev_hash:
        reason = (
            f"the stream head is at seq {head.seq} but the last event is seq {last_seq} "
            "(events at the end of the stream were deleted or the head was altered)"
        )
        return checked, ChainProblem(stream=stream, seq=last_seq + 1, id=None, reason=reason)
    if at < len(listed):
        entry = listed[-1]
        reason = (f"digest #{entry.digest} lists the stream at seq {entry.seq}, but it ends at "
                  f"seq {last_seq}: events at its end were deleted")  # fmt: skip
        return checked, ChainProblem(stream=stream, seq=last_seq + 1, id=None, reason=reason,
                                     digest=entry.digest)  # fmt: skip
    digested = checks.digested
    if (digested is not None and head.seq > 0 and head.changed < digested.watermark
            and (not listed or listed[-1].seq != head.seq)):  # fmt: skip
        reason = (f"the stream's head, seq {head.seq}, was written before digest "
                  f"#{digested.newest} but no digest lists it: events were added or the head "
                  "changed outside Bulwark")  # fmt: skip
        return checked, ChainProblem(stream=stream, seq=head.seq, id=None, reason=reason,
                                     digest=digested.newest)  # fmt: skip
    return checked, None


def _check_tombstones(
    stream: str, tombstones: list[AuditTombstone], listed: list[Listed]
) -> tuple[ChainProblem | None, int]:
    """Check a pruned stream's tombstones, and the digests' listings of its pruned part
    against them (only a listing at a tombstone's last seq can be); returns the problem,
    if any, and how many of the (seq-ordered) listings the pruned part covers."""
    fault = tombstones_fault(tombstones, trusted_public_keys())
    if fault is not None:
        tombstone, why = fault
        reason = f"the tombstone for seq {tombstone.from_seq}..{tombstone.through_seq}: {why}"
        return ChainProblem(stream=stream, seq=tombstone.from_seq, id=None, reason=reason,
                            tombstone=tombstone.pk), 0  # fmt: skip
    ends = {tombstone.through_seq: tombstone for tombstone in tombstones}
    through, at = tombstones[-1].through_seq, 0
    while at < len(listed) and listed[at].seq <= through:
        entry = listed[at]
        ended = ends.get(entry.seq)
        if ended is not None and ended.hash != entry.hash:
            reason = (f"digest #{entry.digest} signed seq {entry.seq} with another hash than the "
                      "tombstone ending there: the stream was rewritten before it was pruned")  # fmt: skip
            return ChainProblem(stream=stream, seq=entry.seq, id=None, reason=reason,
                                digest=entry.digest, tombstone=ended.pk), at  # fmt: skip
        at += 1
    return None, at


@dataclass(frozen=True)
class TrailResult:
    """The outcome of verify_trail: the chains, and the digests over them."""

    ok: bool
    events_checked: int
    streams_checked: int
    digests_checked: int
    first_problem: ChainProblem | None


def verify_trail(
    streams: Iterable[str] | None = None, *, now: datetime | None = None
) -> TrailResult:
    """Verify the digests' chain and signatures, then every stream against its own chain
    and the digests; with no `streams`, also that no listed stream is gone and that the
    newest digest is recent. Stops at the first problem. Digest problems are reported
    under the stream name DIGESTS, with the digest's number as `seq`."""
    with _one_snapshot():
        return _verify_trail(streams, now)


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """On PostgreSQL, read everything from one snapshot (REPEATABLE READ, read only), so a
    digest or a retention pass committing meanwhile is seen whole or not at all, never
    half (the tombstones without the deletions, say) as a false alarm."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _verify_trail(streams: Iterable[str] | None, now: datetime | None) -> TrailResult:
    chain = verify_digest_chain()
    if chain.problem is not None:
        fault = chain.problem
        problem = ChainProblem(stream=DIGESTS, seq=fault.seq, id=fault.id, reason=fault.reason)
        return TrailResult(False, 0, 0, chain.checked, problem)
    newest = chain.newest
    digested = Digested(newest.seq, newest.watermark) if newest is not None else None
    result = verify_chains(streams, digested=digested)
    counts = (result.events_checked, result.streams_checked, chain.checked)
    if result.first_problem is not None:
        return TrailResult(False, *counts, result.first_problem)
    gone = stream_listed_but_gone(None if streams is None else sorted(set(streams)))
    if gone is not None:
        reason = (f"digest #{gone.digest_seq} lists this stream at seq {gone.seq}, but its "
                  "events and head are gone (the stream was deleted)")  # fmt: skip
        problem = ChainProblem(stream=gone.stream, seq=gone.seq, id=None, reason=reason,
                               digest=gone.digest_seq)  # fmt: skip
        return TrailResult(False, *counts, problem)
    stale = staleness(newest, now) if streams is None else None
    if stale is not None:
        next_seq = newest.seq + 1 if newest is not None else 1
        return TrailResult(False, *counts, ChainProblem(stream=DIGESTS, seq=next_seq, id=None,
                                                        reason=stale))  # fmt: skip
    return TrailResult(True, *counts, None)


def _head_batches(streams: list[str] | None) -> Iterator[dict[str, AuditStreamHead]]:
    """Stream heads in batches, paged by primary key so no batch is ever re-read."""
    if streams is not None:
        for start in range(0, len(streams), STREAMS_PER_BATCH):
            part = streams[start : start + STREAMS_PER_BATCH]
            heads = AuditStreamHead.objects.filter(stream__in=part).order_by("stream")
            yield {head.stream: head for head in heads}
        return
    after: str | None = None
    while True:
        query = AuditStreamHead.objects.order_by("stream")
        if after is not None:
            query = query.filter(stream__gt=after)
        batch = list(query[:STREAMS_PER_BATCH])
        if not batch:
            return
        yield {head.stream: head for head in batch}
        after = batch[-1].stream


def _headless[R: (AuditEvent, AuditTombstone)](
    rows: QuerySet[R], streams: list[str] | None, order: str
) -> R | None:
    """The first of `rows` (events or tombstones) whose stream has no head row."""
    headless = rows.filter(~Exists(AuditStreamHead.objects.filter(stream=OuterRef("stream"))))
    if streams is not None:
        headless = headless.filter(stream__in=streams)
    return headless.order_by("stream", order).first()
