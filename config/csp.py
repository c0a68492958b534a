"""The Content Security Policy Django sends (SECURE_CSP), and the one page that differs."""

from __future__ import annotations

from typing import Final

from django.utils.csp import CSP

# Scripts and styles only from this origin: the UI has no inline code anywhere (data
# reaches scripts in data attributes), and nothing may frame it.
STRICT: Final[dict[str, list[str]]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Swagger UI's page (config.urls) carries a <style> block of its own; its script comes
# from a URL (drf-spectacular's split view).
API_DOCS: Final[dict[str, list[str]]] = {**STRICT, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]}
