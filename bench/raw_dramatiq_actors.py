"""The baseline: the same shapes as plain dramatiq actors on the same Redis.

Run by `dramatiq bench.raw_dramatiq_actors` with dramatiq's own defaults.
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

REDIS_URL = os.environ["BENCH_REDIS_URL"]
broker = RedisBroker(url=REDIS_URL, namespace="bench-raw")  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
client = redis.Redis.from_url(REDIS_URL)


@dramatiq.actor(queue_name="raw", max_retries=0)
def hop(run: str, remaining: int) -> None:
    """One link of a pipeline: send the next link, or report the end."""
    if remaining > 1:
        hop.send(run, remaining - 1)
    else:
        client.lpush(f"bench-raw:done:{run}", 1)


@dramatiq.actor(queue_name="raw", max_retries=0)
def member(run: str, size: int) -> None:
    """One member of a group; the last to finish sends the join."""
    if client.incr(f"bench-raw:count:{run}") == size:
        join.send(run)


@dramatiq.actor(queue_name="raw", max_retries=0)
def join(run: str) -> None:
    client.lpush(f"bench-raw:done:{run}", 1)
