"""One JSON error shape for the API: {"error": message, "errors": [{"path", "message"}]}."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

log = logging.getLogger("bulwark.api")


def _is_problem(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"path", "message"}


def _flatten(detail: Any, path: str = "") -> list[dict[str, str]]:
    """DRF's nested error detail as a flat list of {path, message}; lists that already
    have that shape (raised by our views) pass through."""
    if isinstance(detail, list) and detail and all(_is_problem(v) for v in detail):
        return [{"path": str(v["path"]), "message": str(v["message"])} for v in detail]
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            sub = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            out.extend(_flatten(value, sub))
        return out
    if isinstance(detail, list):
        if all(not isinstance(v, (dict, list)) for v in detail):
            return [{"path": path, "message": str(v)} for v in detail]
        out = []
        for index, value in enumerate(detail):
            out.extend(_flatten(value, f"{path}[{index}]"))
        return out
    return [{"path": path, "message": str(detail)}]


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        # An unexpected error: logged in full, answered in JSON without its details (they
        # may hold anything, secrets included).
        log.error("unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return Response({"error": "internal error", "errors": []}, status=500)
    if isinstance(exc, ValidationError):
        errors = _flatten(response.data)
        first = errors[0] if errors else {"path": "", "message": "invalid request"}
        where = f"{first['path']}: " if first["path"] else ""
        response.data = {"error": f"{where}{first['message']}", "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"]), "errors": []}
    return response
