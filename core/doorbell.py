"""Idle workers wait for a doorbell instead of polling Redis.

dramatiq's Redis consumer has no blocking fetch: an idle worker polls the queue, backing
off up to its timeout. A short timeout keeps pickup latency low but costs CPU all the
time (two idle worker processes took about a third of a core here, polling every 10 ms);
a long one makes every message wait. So every enqueue also publishes on a Redis channel,
each worker process listens on it, and its consumer, finding the queue empty, waits for
that ring (or for one of its own messages to be acknowledged, which frees a prefetch
slot) rather than sleeping blindly. Nothing depends on the ring arriving: a consumer
still looks at the queue every IDLE_LOOK_SECONDS, so a lost ring costs latency only.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

log = logging.getLogger(__name__)

CHANNEL = "bulwark:doorbell"
# How long an idle consumer waits for a ring before looking at the queue anyway.
IDLE_LOOK_SECONDS = 0.5


class Doorbell(dramatiq.Middleware):
    """Rings after each enqueue; in worker processes, listens and wakes the consumers."""

    def __init__(self) -> None:
        self.ring = threading.Event()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    def after_enqueue(self, broker: Any, message: Any, delay: int) -> None:
        if delay:
            return  # not ready yet; dramatiq's own delay queue handles it
        try:
            broker.client.publish(CHANNEL, b"1")
        except redis.RedisError as exc:  # the message is queued; consumers will look anyway
            log.debug("doorbell: could not ring: %s", exc)

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self._stop.clear()
        self._listener = threading.Thread(
            target=self._listen, args=(broker.client,), name="bulwark-doorbell", daemon=True
        )
        self._listener.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()
        self.ring.set()

    def _listen(self, client: redis.Redis) -> None:
        while not self._stop.is_set():
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(CHANNEL)
                while not self._stop.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.ring.set()
            except redis.RedisError as exc:
                log.warning("doorbell: listening failed (%s); retrying in 1s", exc)
                self.ring.set()  # look at the queue meanwhile
                self._stop.wait(1.0)


class _WaitingConsumer:
    """dramatiq's Redis consumer, waiting for the doorbell when the queue is empty."""

    def __init__(self, inner: Any, ring: threading.Event) -> None:
        self._inner = inner
        self._ring = ring

    def __iter__(self) -> _WaitingConsumer:
        return self

    def __next__(self) -> Any:
        self._ring.clear()  # before fetching: a ring from here on means "look again"
        message = next(self._inner)
        if message is None:
            self._ring.wait(IDLE_LOOK_SECONDS)
        return message

    def ack(self, message: Any) -> None:
        self._inner.ack(message)
        self._ring.set()  # a prefetch slot is free: fetch more if there is a backlog

    def nack(self, message: Any) -> None:
        self._inner.nack(message)
        self._ring.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class DoorbellRedisBroker(RedisBroker):
    """The Redis broker whose consumers wait for the doorbell instead of polling."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.doorbell = Doorbell()
        self.add_middleware(self.doorbell)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        # The inner consumer only ever sleeps a millisecond; waiting is the doorbell's.
        inner = super().consume(queue_name, prefetch=prefetch, timeout=1)
        return _WaitingConsumer(inner, self.doorbell.ring)
