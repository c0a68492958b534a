"""Idle consumers wake on the doorbell, not on a poll timer (needs Redis)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from django.conf import settings

from core import doorbell
from core.doorbell import DoorbellRedisBroker

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")

QUEUE = "doorbell-test"


@pytest.fixture
def broker() -> Iterator[DoorbellRedisBroker]:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    broker = DoorbellRedisBroker(url=settings.REDIS_URL, namespace="bulwark-doorbell-test")
    broker.declare_queue(QUEUE)
    broker.doorbell.after_worker_boot(broker, None)  # the listener a worker process runs
    time.sleep(0.3)  # let it subscribe
    yield broker
    broker.doorbell.before_worker_shutdown(broker, None)
    broker.close()


def _message() -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=QUEUE, actor_name="noop", args=(), kwargs={}, options={})


def _time_to_receive(broker: DoorbellRedisBroker) -> float:
    """Seconds from enqueueing a message to an idle consumer's receiving it."""
    consumer = broker.consume(QUEUE, prefetch=1)
    received: list[float] = []

    def consume() -> None:
        for message in consumer:
            if message is not None:
                received.append(time.monotonic())
                consumer.ack(message)
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.3)  # the consumer has found the queue empty and waits
    sent = time.monotonic()
    broker.enqueue(_message())
    thread.join(timeout=10)
    consumer.close()
    assert received, "the message never arrived"
    return received[0] - sent


def test_an_idle_consumer_takes_a_new_message_at_once(
    broker: DoorbellRedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doorbell, "IDLE_LOOK_SECONDS", 5.0)
    assert _time_to_receive(broker) < 1.0


def test_without_a_ring_the_consumer_still_looks_after_its_idle_wait(
    broker: DoorbellRedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doorbell, "IDLE_LOOK_SECONDS", 1.5)
    monkeypatch.setattr(doorbell.Doorbell, "after_enqueue", lambda *args: None)  # rings lost
    took = _time_to_receive(broker)
    assert 0.5 < took < 3.0


def test_acknowledging_a_message_rings_so_a_backlog_is_fetched_at_once(
    broker: DoorbellRedisBroker,
) -> None:
    consumer = broker.consume(QUEUE, prefetch=1)
    broker.enqueue(_message())
    message = None
    while message is None:
        message = next(consumer)
    broker.doorbell.ring.clear()
    consumer.ack(message)
    assert broker.doorbell.ring.is_set()
    consumer.close()
