"""A step output over the size limit is kept as an artifact and referenced (SPEC §4)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from artifacts.models import Artifact
from artifacts.store import read_verified
from audit.models import AuditEvent
from core.dispatch import InlineDispatcher
from core.models import StepRun
from core.runs import start_run
from tests.core.factories import definition, published_version

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_large_output_becomes_an_artifact_that_later_steps_can_name(
    inline_dispatch: InlineDispatcher, settings: Any, tmp_path: Path
) -> None:
    settings.BULWARK_ARTIFACT_DIR = tmp_path
    settings.BULWARK_MAX_OUTPUT_BYTES = 1000
    big = {"id": "big", "action": "util.echo", "with": {"message": "x" * 5000}}
    after = {"id": "after", "action": "util.echo", "needs": ["big"],
             "with": {"message": "{{ steps.big.output.artifact.sha256 }}"}}  # fmt: skip
    version = published_version(definition(big, after))
    run = start_run(playbook=version.playbook, inputs={}, actor="user:bob")
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    output = StepRun.objects.get(run=run, step_id="big").output
    assert output["output_too_large"] is True
    artifact = Artifact.objects.get(pk=output["artifact"]["artifact_id"])
    stored = read_verified(artifact)
    assert json.loads(stored) == {"message": "x" * 5000, "data": {}}
    assert output["size"] == len(stored)
    assert output["artifact"]["sha256"] == hashlib.sha256(stored).hexdigest()
    assert StepRun.objects.get(run=run, step_id="after").output["message"] == artifact.sha256
    assert AuditEvent.objects.filter(run_id=run.pk, kind="artifact.collected").count() == 1


def test_an_output_within_the_limit_stays_on_the_step(
    inline_dispatch: InlineDispatcher, settings: Any
) -> None:
    settings.BULWARK_MAX_OUTPUT_BYTES = 1000
    version = published_version(definition({"id": "small", "action": "util.echo",
                                            "with": {"message": "x" * 500}}))  # fmt: skip
    run = start_run(playbook=version.playbook, inputs={}, actor="user:bob")
    inline_dispatch.drain()
    assert StepRun.objects.get(run=run, step_id="small").output["message"] == "x" * 500
    assert not Artifact.objects.exists()


def test_a_large_output_that_cannot_be_kept_fails_the_attempt_retryably(
    inline_dispatch: InlineDispatcher, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.execution

    def full_disk(**kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.execution, "save_artifact", full_disk)
    settings.BULWARK_MAX_OUTPUT_BYTES = 100
    step = {"id": "big", "action": "util.echo", "with": {"message": "x" * 500},
            "retry": {"attempts": 2, "backoff": "10s"}}  # fmt: skip
    run = start_run(
        playbook=published_version(definition(step)).playbook, inputs={}, actor="user:bob"
    )
    inline_dispatch.drain()
    unit = StepRun.objects.get(run=run, step_id="big")
    assert unit.status == "retry_wait"  # recorded and retried, not stranded as running
    assert unit.error["kind"] == "artifact_storage"
