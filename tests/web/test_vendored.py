"""The front-end libraries are served from the app, unchanged from the packages named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

VENDOR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor"


def test_each_vendored_file_is_the_one_recorded() -> None:
    recorded = json.loads((VENDOR / "VENDORED.json").read_text())["files"]
    for name, about in recorded.items():
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == about["sha256"], name
        assert (VENDOR / name).parent.joinpath("LICENSE").exists(), name
    on_disk = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*.js")}
    assert on_disk == set(recorded)


@pytest.mark.parametrize("name", ["vendor/htmx-2.0.11/htmx.min.js", "web/graph.js", "web/app.css"])
def test_static_files_are_found_and_served(name: str, client: object, db: None) -> None:
    from django.test import Client

    assert finders.find(name)
    response = Client().get(f"/static/{name}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])
