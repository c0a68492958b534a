"""Keeping a vendor's file as evidence: the download streams into the artifact store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
from django.conf import settings

from artifacts.store import ArtifactTooLarge, describe, save_artifact
from integrations.context import ActionContext
from integrations.errors import PermanentError

Consumer = Callable[[httpx.Response, Iterator[bytes]], dict[str, Any]]


def keeper(ctx: ActionContext, *, action: str, filename: str, default_type: str, source: str,
           metadata: dict[str, Any]) -> Consumer:  # fmt: skip
    """A consumer for `http_client.download` that keeps the body as this step's artifact
    (hashed as it is written, a custody event recorded) and returns its description."""

    def keep(response: httpx.Response, chunks: Iterator[bytes]) -> dict[str, Any]:
        try:
            artifact = save_artifact(
                chunks=chunks, filename=filename, source=source, metadata=metadata,
                content_type=response.headers.get("content-type", default_type),
                actor=f"action:{action}:{ctx.idempotency_key}", run_id=ctx.run_id, step_id=ctx.step_id,
                item_index=-1 if ctx.item_index is None else ctx.item_index,
                max_bytes=settings.BULWARK_ARTIFACT_MAX_BYTES,
            )  # fmt: skip
        except ArtifactTooLarge as exc:
            raise PermanentError(str(exc), kind="artifact_too_large") from None
        return describe(artifact)

    return keep
