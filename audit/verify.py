"""Verifying the audit chains: every hash, every link, no gaps, heads agree (SPEC §8)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import TypedDict

from django.db.models import Exists, OuterRef

from audit.hashing import ZERO_HASH
from audit.models import AuditEvent, AuditStreamHead

STREAMS_PER_BATCH = 500
EVENTS_PER_CHUNK = 2000


class ChainProblem(TypedDict):
    """Where a chain first fails to verify; `id` is None when the event is missing."""

    stream: str
    seq: int
    id: int | None
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of verify_chains."""

    ok: bool
    events_checked: int
    streams_checked: int
    first_problem: ChainProblem | None


def verify_chains(streams: Iterable[str] | None = None) -> VerifyResult:
    """Recompute every event's hash and link, stream by stream, in sequence order.

    Stops at the first problem: a hash that does not match the event's contents, a
    prev_hash that does not match the previous event, a gap in the sequence, a stream
    head that disagrees with the last event (a deleted tail), or events with no head.
    """
    wanted = None if streams is None else sorted(set(streams))
    events_checked = streams_checked = 0
    for heads in _head_batches(wanted):
        unseen = dict(heads)
        events = (
            AuditEvent.objects.filter(stream__in=list(heads))
            .order_by("stream", "seq")
            .iterator(chunk_size=EVENTS_PER_CHUNK)
        )
        for stream, chain in groupby(events, key=lambda event: event.stream):
            streams_checked += 1
            checked, problem = _verify_stream(stream, chain, unseen.pop(stream))
            events_checked += checked
            if problem is not None:
                return VerifyResult(False, events_checked, streams_checked, problem)
        for stream, head in sorted(unseen.items()):
            streams_checked += 1
            _, problem = _verify_stream(stream, iter(()), head)
            if problem is not None:
                return VerifyResult(False, events_checked, streams_checked, problem)
    orphan = _first_event_without_head(wanted)
    if orphan is not None:
        problem = ChainProblem(
            stream=orphan.stream,
            seq=orphan.seq,
            id=orphan.pk,
            reason="the stream has events but no head row (the head was deleted)",
        )
        return VerifyResult(False, events_checked, streams_checked + 1, problem)
    return VerifyResult(True, events_checked, streams_checked, None)


def _verify_stream(
    stream: str, chain: Iterator[AuditEvent], head: AuditStreamHead
) -> tuple[int, ChainProblem | None]:
    """Check one stream's events (in seq order) against each other and its head."""
    expected_seq, prev_hash, checked = 1, ZERO_HASH, 0
    for event in chain:
        checked += 1
        reason = None
        if event.seq != expected_seq:
            reason = f"sequence gap: expected seq {expected_seq}, found seq {event.seq}"
        elif event.compute_hash() != event.hash:
            reason = "hash does not match the event's contents (the event was altered)"
        elif event.prev_hash != prev_hash:
            reason = "prev_hash does not match the previous event's hash (the chain is broken)"
        if reason is not None:
            return checked, ChainProblem(stream=stream, seq=event.seq, id=event.pk, reason=reason)
        expected_seq, prev_hash = expected_seq + 1, event.hash
    last_seq = expected_seq - 1
    if head.seq != last_seq or head.hash != prev_hash:
        reason = (
            f"the stream head is at seq {head.seq} but the last event is seq {last_seq} "
            "(events at the end of the stream were deleted or the head was altered)"
        )
        return checked, ChainProblem(stream=stream, seq=last_seq + 1, id=None, reason=reason)
    return checked, None


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


def _first_event_without_head(streams: list[str] | None) -> AuditEvent | None:
    headless = AuditEvent.objects.filter(
        ~Exists(AuditStreamHead.objects.filter(stream=OuterRef("stream")))
    )
    if streams is not None:
        headless = headless.filter(stream__in=streams)
    return headless.order_by("stream", "seq").first()
