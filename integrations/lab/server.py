"""The lab: every vendor simulator behind one HTTP server, each under `/<vendor>/`."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from integrations.lab.simulator import Simulator, StartResponse, WSGIEnviron
from integrations.mail.simulator import SMTPSimulator


def simulators() -> dict[str, Simulator]:
    """A fresh simulator of every vendor, by the path prefix it is served under."""
    from integrations.lab.catalogue import SIMULATORS

    return {name: factory() for name, factory in SIMULATORS.items()}


def _index(sims: Mapping[str, Simulator]) -> Any:
    def app(environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        names = ", ".join(f"/{name}/" for name in sims)
        return Response(f"Bulwark lab: {names}\n", status=404)(environ, start_response)

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Lab:
    """The simulators served over HTTP, in a background thread (tests) or in the
    foreground (`manage.py lab`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 sims: Mapping[str, Simulator] | None = None, *, quiet: bool = True,
                 smtp_port: int = 0, state_dir: Path | None = None) -> None:  # fmt: skip
        self.sims = dict(sims) if sims is not None else simulators()
        self.smtp = SMTPSimulator(host, smtp_port, directory=state_dir)
        app = DispatcherMiddleware(_index(self.sims), {f"/{n}": s for n, s in self.sims.items()})
        handler = _QuietHandler if quiet else WSGIRequestHandler
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True,
                                                  request_handler=handler)  # fmt: skip
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def base_url(self, vendor: str) -> str:
        """What a connection to this simulator sets as its base URL."""
        return f"{self.url}/{vendor}{self.sims[vendor].base_path}"

    def __getitem__(self, vendor: str) -> Simulator:
        return self.sims[vendor]

    def start(self) -> Lab:
        self.smtp.start()
        self.thread = threading.Thread(target=self.server.serve_forever, name="lab", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.smtp.start()
        try:
            self.server.serve_forever()
        finally:
            self.smtp.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.smtp.stop()

    def reset(self) -> None:
        for sim in self.sims.values():
            sim.reset()
        self.smtp.reset()

    def smtp_settings(self) -> tuple[str, str]:
        """The mail simulator's URL and the CA file that verifies its certificate."""
        return self.smtp.url, str(self.smtp.cert_file)
