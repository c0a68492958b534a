"""Keeping URL tokens out of the logs.

A hook whose sender can set no header carries its secret in the URL (`?token=…`), and
both web servers log request lines whole: Django's development server through the
`django.server` logger, gunicorn through its access log. The filter below sits on the
console handler (settings.LOGGING); RedactingGunicornLogger is gunicorn's logger class
(`manage.py serve`). Both replace the value of every `token` query parameter.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

# token=… in a query string (or starting one), up to the next parameter, space or quote.
_URL_TOKEN = re.compile(r"(?i)((?:^|[?&])token=)[^&\s\"']+")
REDACTED = "[redacted]"


def redact_url_tokens(text: str) -> str:
    return _URL_TOKEN.sub(rf"\g<1>{REDACTED}", text) if "token=" in text.lower() else text


class RedactUrlTokens(logging.Filter):
    """Rewrites a record whose message holds a URL token; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingGunicornLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types
    """Gunicorn's logger with the query string's tokens redacted in the access log."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        # The request line, the query string, the referer and any {…}e environ atom.
        return {k: redact_url_tokens(v) if isinstance(v, str) else v for k, v in atoms.items()}
