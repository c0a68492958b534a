"""Load for bench/intake.py, run as its own process: N client threads POST for D seconds.

    python bench/intake_load.py URL CONCURRENCY SECONDS [TOKEN]

Prints one JSON line: requests, accepted (2xx), per second, p50 and p99 latency in ms."""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import uuid

import httpx


def main() -> None:
    url, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    token = sys.argv[4] if len(sys.argv) > 4 else ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=10, headers=headers) as http:
            while time.monotonic() < deadline:
                # Distinct alerts: every delivery is a new alert, the costly path.
                body = {"title": "Ransomware on WS-FIN-042", "severity": "critical",
                        "external_id": uuid.uuid4().hex, "observables": [{"type": "host", "value": "WS-FIN-042"}]}  # fmt: skip
                started = time.perf_counter()
                try:
                    status = http.post(url, json=body).status_code
                except httpx.HTTPError:
                    status = 0
                took = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(took)
                    statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    accepted = sum(1 for s in statuses if 200 <= s < 300)
    ordered = sorted(latencies) or [0.0]
    print(json.dumps({
        "requests": len(statuses), "accepted": accepted, "per_second": accepted / elapsed,
        "p50_ms": statistics.median(ordered), "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "errors": sorted({s for s in statuses if not 200 <= s < 300}),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
