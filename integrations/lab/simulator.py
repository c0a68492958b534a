"""What every vendor simulator shares: routing, recorded calls and injectable faults.

A simulator is a small WSGI application speaking a vendor's API subset with the vendor's
paths, bodies, status codes and quirks. It records every request it gets, so tests assert
on the exact calls, and it can be told to answer the next matching requests with a fault
(401, 404, 409, 429 with the vendor's rate-limit header, 5xx, a slow answer) instead.
Control endpoints under `/_lab/` do the same over HTTP, for other processes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Call:
    """One request as the simulator received it."""

    method: str
    path: str
    query: dict[str, str | list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str | list[str]]:
        return _flat(parse_qs(self.body.decode(), keep_blank_values=True))


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and `path` (a prefix) with this."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    method: str | None = None
    path: str = ""
    # Seconds to wait before answering (a slow vendor); with status 0 the real answer
    # follows the delay.
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and path.startswith(self.path)


def _flat(parsed: Mapping[str, list[str]]) -> dict[str, str | list[str]]:
    return {k: v[0] if len(v) == 1 else list(v) for k, v in parsed.items()}


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


class Simulator:
    """Base of the vendor simulators: subclasses declare `name` and their routes."""

    name = "simulator"
    # The part of the vendor's base URL after its host (Slack's Web API is under /api).
    base_path = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.url_map = Map(list(self.routes()), strict_slashes=False)

    # -- for subclasses ---------------------------------------------------------------
    def routes(self) -> Iterable[Rule]:
        """Rules whose endpoint names a method of the subclass: `handler(request, **args)`."""
        return []

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        """The vendor's error envelope."""
        return json_response({"error": message}, status, headers)

    def rate_limit_headers(self, retry_after: float) -> dict[str, str]:
        """The vendor's headers on a 429."""
        return {"Retry-After": str(int(retry_after))}

    def reset_state(self) -> None:
        """Forget every vendor object (hosts, tickets, jobs)."""

    # -- for tests and the lab ---------------------------------------------------------
    def inject(self, status: int, body: Any = None, *, headers: Mapping[str, str] | None = None,
               times: int = 1, method: str | None = None, path: str = "",
               delay: float = 0.0) -> Fault:  # fmt: skip
        fault = Fault(status, body, dict(headers or {}), times, method, path, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def rate_limited(self, retry_after: float = 2.0, *, times: int = 1, path: str = "",
                     method: str | None = None) -> Fault:  # fmt: skip
        """A 429 as the vendor sends it, with its own rate-limit header."""
        return self.inject(429, None, headers=self.rate_limit_headers(retry_after), times=times,
                           path=path, method=method)  # fmt: skip

    def requests(self, method: str | None = None, path: str | None = None) -> list[Call]:
        """Recorded calls, optionally only those with `method` and exactly `path`."""
        with self.lock:
            return [
                c for c in self.calls
                if (method is None or c.method == method) and (path is None or c.path == path)
            ]  # fmt: skip

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.reset_state()

    # -- WSGI -------------------------------------------------------------------------
    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/_lab/"):
            return self._control(request)(environ, start_response)
        body = request.get_data(cache=True)
        call = Call(
            method=request.method,
            path=request.path,
            query=_flat(request.args.to_dict(flat=False)),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            at=time.time(),
        )
        with self.lock:
            self.calls.append(call)
            fault = self._take_fault(call)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                return self._fault_response(fault)(environ, start_response)
        return self._dispatch(request)(environ, start_response)

    def _take_fault(self, call: Call) -> Fault | None:
        for fault in self.faults:
            if fault.matches(call.method, call.path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        if fault.body is None:
            return self.error(fault.status, f"injected HTTP {fault.status}", fault.headers)
        if isinstance(fault.body, str | bytes):
            return Response(fault.body, status=fault.status, headers=fault.headers)
        return json_response(fault.body, fault.status, fault.headers)

    def _dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return self.error(404, f"no such endpoint: {request.method} {request.path}")
        except MethodNotAllowed:
            return self.error(405, f"method {request.method} not allowed on {request.path}")
        except HTTPException as exc:  # a redirect for a missing trailing slash, say
            return exc.get_response(request.environ)
        handler = getattr(self, str(endpoint))
        response: Response = handler(request, **args)
        return response

    def _control(self, request: Request) -> Response:
        """`GET /_lab/calls`, `POST /_lab/faults` (a Fault as JSON), `POST /_lab/reset`."""
        action = request.path.removeprefix("/_lab/").strip("/")
        if action == "calls" and request.method == "GET":
            calls = [
                {"method": c.method, "path": c.path, "query": c.query, "headers": c.headers,
                 "body": c.body.decode(errors="replace"), "at": c.at}
                for c in self.requests()
            ]  # fmt: skip
            return json_response(calls)
        if action == "faults" and request.method == "POST":
            spec = request.get_json(force=True, silent=True)
            if not isinstance(spec, dict) or not isinstance(spec.get("status"), int):
                return json_response({"error": "a fault needs an integer `status`"}, 400)
            try:
                self.inject(**spec)
            except TypeError as exc:
                return json_response({"error": f"bad fault: {exc}"}, 400)
            return json_response({"ok": True}, 201)
        if action == "reset" and request.method == "POST":
            self.reset()
            return json_response({"ok": True})
        return json_response({"error": f"unknown lab control {request.method} {request.path}"}, 404)
