"""URL tokens never reach the logs: the console handler's filter and gunicorn's access log."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from common.log_redaction import RedactingGunicornLogger, RedactUrlTokens, redact_url_tokens

TOKEN = "splunk-url-token-0123456789"


@pytest.mark.parametrize(("text", "expected"), [
    (f"POST /api/v1/hooks/splunk/?token={TOKEN} HTTP/1.1", "POST /api/v1/hooks/splunk/?token=[redacted] HTTP/1.1"),
    (f"/h/?a=1&Token={TOKEN}&b=2", "/h/?a=1&Token=[redacted]&b=2"),
    (f'"/h/?token={TOKEN}" 202', '"/h/?token=[redacted]" 202'),
    ("/api/v1/runs/?status=failed", "/api/v1/runs/?status=failed"),
    ("a csrftoken=abc cookie is not a query", "a csrftoken=abc cookie is not a query"),
])  # fmt: skip
def test_token_values_in_query_strings_are_redacted(text: str, expected: str) -> None:
    assert redact_url_tokens(text) == expected


@pytest.mark.parametrize("name", ["django.server", "django.request", "alerts.intake"])
def test_what_a_logger_writes_has_no_url_token(name: str) -> None:
    """As a web server logs a request line: every handler the record reaches redacts it."""
    logger, streams = logging.getLogger(name), []
    handlers = []
    while logger is not None:
        handlers += [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
        logger = logger.parent if logger.propagate else None  # type: ignore[assignment]
    assert handlers
    originals = [h.stream for h in handlers]  # (setStream would flush them, maybe closed)
    for handler in handlers:
        handler.stream = io.StringIO()
    try:
        logging.getLogger(name).warning(
            '"%s" %s %s', f"POST /api/v1/hooks/splunk/?token={TOKEN} HTTP/1.1", 202, 40
        )
        streams = [h.stream.getvalue() for h in handlers]
    finally:
        for handler, original in zip(handlers, originals, strict=True):
            handler.stream = original
    assert all("?token=[redacted] HTTP/1.1" in text for text in streams)
    assert not any(TOKEN in text for text in streams)


def test_the_console_handler_redacts_what_any_logger_passes_it() -> None:
    (console,) = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)
                  and any(isinstance(f, RedactUrlTokens) for f in h.filters)]  # fmt: skip
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s',
                               (f"POST /api/v1/hooks/splunk/?token={TOKEN} HTTP/1.1", 202, 40), None)  # fmt: skip
    assert console.filter(record)
    assert TOKEN not in console.format(record)
    assert "?token=[redacted] HTTP/1.1" in record.getMessage()


def test_gunicorn_s_access_log_atoms_are_redacted() -> None:
    logger = RedactingGunicornLogger(Config())
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": f"/api/v1/hooks/splunk/?token={TOKEN}",
               "PATH_INFO": "/api/v1/hooks/splunk/", "QUERY_STRING": f"token={TOKEN}",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}  # fmt: skip
    request = SimpleNamespace(headers=[], method="POST", path="/api/v1/hooks/splunk/",
                              query=f"token={TOKEN}", uri=environ["RAW_URI"], version=(1, 1))  # fmt: skip
    response = SimpleNamespace(status="202 Accepted", headers=[], sent=40, response_length=40)
    atoms = logger.atoms(response, request, environ, __import__("datetime").timedelta(0.01))
    assert TOKEN not in repr(atoms)
    assert "token=[redacted]" in atoms["r"]
