"""The dispatcher seam: how a queued unit reaches a worker.

Production sends dramatiq messages (Redis, or dramatiq's in-process broker in standalone
mode); most tests use the inline dispatcher and drain it themselves. Either way the
message only wakes a worker: the database row decides whether there is work.

A wake-up names one unit (with its dispatch token), or, for a wide fan-out, a run: a
"drain" wake-up's worker claims the run's queued units one after another, so a hundred
queued units cost a few messages instead of a hundred (see core.drain).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

Message = tuple[int, int]  # (unit id, dispatch token)
# An approval request's announcement to send: (notice id, the fact that asked for it).
Announcement = tuple[int, str]


class Dispatcher(Protocol):
    def send(self, messages: Sequence[Message]) -> None: ...

    def send_drain(self, run_id: int, count: int) -> None:
        """`count` drain wake-ups for run `run_id`."""
        ...

    def backlog(self) -> int:
        """Messages waiting in the queue (not counting those a worker holds)."""
        ...

    def announce(self, announcements: Sequence[Announcement]) -> None:
        """Have approval requests announced in chat and e-mail (core.approvals.notify)."""
        ...


class BrokerDispatcher:
    """Sends one dramatiq message per unit on the `actions` queue."""

    def send(self, messages: Sequence[Message]) -> None:
        from core.tasks import execute_unit

        for unit_id, token in messages:
            execute_unit.send(unit_id, token)

    def send_drain(self, run_id: int, count: int) -> None:
        from core.tasks import drain_run

        for _ in range(count):
            drain_run.send(run_id)

    def announce(self, announcements: Sequence[Announcement]) -> None:
        from core.tasks import announce_approval

        for notice_id, occasion in announcements:
            announce_approval.send(notice_id, occasion)

    def backlog(self) -> int:
        import dramatiq

        from core.broker import QUEUE

        broker = dramatiq.get_broker()
        if hasattr(broker, "do_qsize"):  # Redis
            return int(broker.do_qsize(QUEUE))
        queue = getattr(broker, "queues", {}).get(QUEUE)  # the in-process broker
        return int(queue.qsize()) if queue is not None else 0


class InlineDispatcher:
    """Keeps messages in memory until `drain()` runs them in this thread (tests)."""

    def __init__(self) -> None:
        self.pending: deque[Message] = deque()
        self.sent: list[Message] = []
        self.pending_drains: deque[int] = deque()
        self.drains_sent: list[int] = []
        self.pending_announcements: deque[Announcement] = deque()
        self.announced: list[Announcement] = []

    def send(self, messages: Sequence[Message]) -> None:
        self.pending.extend(messages)
        self.sent.extend(messages)

    def send_drain(self, run_id: int, count: int) -> None:
        self.pending_drains.extend([run_id] * count)
        self.drains_sent.extend([run_id] * count)

    def announce(self, announcements: Sequence[Announcement]) -> None:
        self.pending_announcements.extend(announcements)
        self.announced.extend(announcements)

    def backlog(self) -> int:
        return len(self.pending) + len(self.pending_drains) + len(self.pending_announcements)

    def drain(self, limit: int = 10_000) -> int:
        """Execute pending wake-ups (and what they lead to); returns how many ran."""
        from core.approvals.notify import deliver_notice
        from core.drain import execute_drain_message
        from core.execution import execute_unit_message

        count = 0
        while (self.pending or self.pending_drains or self.pending_announcements) and count < limit:
            if self.pending:
                unit_id, token = self.pending.popleft()
                execute_unit_message(unit_id, token)
            elif self.pending_drains:
                execute_drain_message(self.pending_drains.popleft())
            else:
                deliver_notice(self.pending_announcements.popleft()[0])
            count += 1
        return count


_dispatcher: Dispatcher = BrokerDispatcher()


def get_dispatcher() -> Dispatcher:
    return _dispatcher


def set_dispatcher(dispatcher: Dispatcher) -> Dispatcher:
    """Install `dispatcher`; returns the previous one so tests can restore it."""
    global _dispatcher
    previous, _dispatcher = _dispatcher, dispatcher
    return previous
