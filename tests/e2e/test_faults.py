"""Fault tests with real worker and scheduler processes on PostgreSQL + Redis.

Each prints its recovery figures (run pytest with -s to see them).
"""

from __future__ import annotations

import os
import signal
import statistics
import time

import redis
from django.conf import settings

from core.models import Attempt, Run, StepRun
from core.runs import start_run
from core.tasks import execute_unit
from integrations.connections import create_connection
from playbooks.models import Playbook
from tests.core.factories import definition, echo, published_version
from tests.e2e.conftest import LEASE_SECONDS, Peer, Processes, wait_for


def _peer_playbook(peer: Peer, name: str) -> None:
    create_connection(
        integration="http",
        name="local-peer",
        base_url=peer.url,
        credentials={},
        allow_private_network=True,
        actor="system:test",
    )
    post = {"id": "effect", "action": "http.request", "connection": "local-peer",
            "with": {"method": "POST", "url": "/effect", "json": {"host": "{{ inputs.host }}"}},
            "retry": {"attempts": 3, "backoff": "100ms"}, "timeout": "30s"}  # fmt: skip
    published_version(
        definition(
            echo("before"),
            {**post, "needs": ["before"]},
            echo("after", "effect"),
            name=name,
            inputs={"host": {"type": "string", "required": True}},
        )
    )


def _status(run: Run) -> str:
    run.refresh_from_db()
    return run.status


def test_a_worker_killed_mid_step_does_not_stop_the_run_and_the_effect_has_one_key(
    processes: Processes, peer: Peer
) -> None:
    _peer_playbook(peer, "kill-mid-step")
    recoveries = []
    for round_ in range(3):
        peer.requests.clear()
        peer.applied.clear()
        peer.received.clear()
        peer.hold_first = 20.0
        run = start_run(
            playbook=Playbook.objects.get(name="kill-mid-step"),
            inputs={"host": f"h{round_}"},
            actor="system:test",
        )
        wait_for(peer.received.is_set, 30, "the peer to receive the step's request")
        running = StepRun.objects.get(run=run, step_id="effect", status="running", attempts=1)
        pid = int(running.lease_owner.split(":")[2])
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda run=run: _status(run) == "succeeded",
            60,
            f"run {run.pk} to succeed after the kill\n" + processes.log_text(),
        )
        unit = StepRun.objects.get(run=run, step_id="effect")
        recoveries.append(unit.finished_at.timestamp() - killed_at)
        assert unit.attempts == 2
        assert len(peer.requests) == 2
        assert len(peer.applied) == 1, peer.requests  # both deliveries carried one idempotency key
        assert Attempt.objects.get(unit=unit, number=1).outcome == "lost"
    print(
        f"\nrecovery after SIGKILL (lease {LEASE_SECONDS:g}s): p50 {statistics.median(recoveries):.2f}s, "
        f"max {max(recoveries):.2f}s over {len(recoveries)} kills"
    )


def test_flushing_redis_mid_run_loses_no_run(processes: Processes) -> None:
    # Twelve items: each fan-out goes out as drain wake-ups, which the flush loses too.
    fan = {"id": "fan", "action": "util.echo", "needs": ["nap"], "for_each": "{{ range(12) | list }}",
           "with": {"message": "{{ item }}"}}  # fmt: skip
    version = published_version(
        definition(
            {"id": "nap", "action": "util.sleep", "with": {"seconds": 0.3}},
            fan,
            echo("join", "fan"),
            name="flush-redis",
        )
    )
    runs = [start_run(playbook=version.playbook, actor="system:test") for _ in range(12)]
    client = redis.Redis.from_url(settings.REDIS_URL)
    started = time.monotonic()
    for _ in range(3):
        time.sleep(0.3)
        client.flushdb()
    took = wait_for(
        lambda: all(_status(r) == "succeeded" for r in runs),
        90,
        "every run to succeed after Redis was flushed\n" + processes.log_text(),
    )
    print(
        f"\n12 runs finished {time.monotonic() - started:.1f}s after start with Redis flushed 3 times "
        f"({took:.1f}s of waiting)"
    )


def test_a_wide_fan_out_drained_by_every_worker_thread_runs_each_item_once(
    processes: Processes, peer: Peer
) -> None:
    create_connection(integration="http", name="local-peer", base_url=peer.url, credentials={},
                      allow_private_network=True, actor="system:test")  # fmt: skip
    post = {"id": "effect", "action": "http.request", "connection": "local-peer",
            "for_each": "{{ range(40) | list }}",
            "with": {"method": "POST", "url": "/effect", "json": {"item": "{{ item }}"}}}  # fmt: skip
    version = published_version(definition(post, echo("join", "effect"), name="wide-effect"))
    run = start_run(playbook=version.playbook, actor="system:test")
    took = wait_for(lambda: _status(run) == "succeeded", 60,
                    "the wide run to succeed\n" + processes.log_text())  # fmt: skip
    assert len(peer.requests) == 40
    assert len(peer.applied) == 40  # forty distinct idempotency keys, each sent once
    items = StepRun.objects.filter(run=run, step_id="effect", item_index__gte=0)
    assert sorted(items.values_list("attempts", flat=True)) == [1] * 40
    assert Attempt.objects.filter(unit__run=run).count() == 40 + 1  # the items and the join
    workers = {a.worker for a in Attempt.objects.filter(unit__in=items)}
    print(f"\n40 items on {len(workers)} worker threads in {took:.2f}s")
    assert len(workers) > 1


def test_a_message_delivered_twice_executes_once(processes: Processes, peer: Peer) -> None:
    _peer_playbook(peer, "twice")
    run = start_run(
        playbook=Playbook.objects.get(name="twice"), inputs={"host": "h"}, actor="system:test"
    )
    wait_for(
        lambda: (
            StepRun.objects.filter(run=run, step_id="effect", status="queued").exists()
            or _status(run) == "succeeded"
        ),
        30,
        "the effect step to be queued",
    )
    unit = StepRun.objects.get(run=run, step_id="effect")
    for _ in range(3):  # the duplicate deliveries a crashed or slow consumer can produce
        execute_unit.send(unit.pk, unit.dispatch_token)
    wait_for(lambda: _status(run) == "succeeded", 30, "the run to succeed")
    time.sleep(1.0)  # let the duplicates arrive
    assert len(peer.requests) == 1
    assert Attempt.objects.filter(unit=unit).count() == 1


def test_a_step_that_kills_its_worker_every_time_needs_attention_and_the_pool_survives(
    processes: Processes,
) -> None:
    poison = published_version(
        definition(
            {"id": "poison", "action": "faults.kill_worker", "retry": {"attempts": 2}},
            name="poison",
        )
    )
    run = start_run(playbook=poison.playbook, actor="system:test")
    took = wait_for(
        lambda: _status(run) == "needs_attention",
        60,
        "the poison step to need attention\n" + processes.log_text(),
    )
    unit = StepRun.objects.get(run=run, step_id="poison")
    assert unit.attempts == 2
    assert unit.error["kind"] == "worker_lost"
    assert processes.procs["worker"].poll() is None  # the supervisor is still up
    healthy = published_version(definition(echo("a"), echo("b", "a"), name="after-poison"))
    later = start_run(playbook=healthy.playbook, actor="system:test")
    wait_for(lambda: _status(later) == "succeeded", 30, "a healthy run after the poison step")
    print(f"\npoison step reached needs_attention after {unit.attempts} attempts in {took:.1f}s")
