"""teams.post_card against the lab's Workflows webhook simulator."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.teams import actions
from integrations.teams.simulator import LAB_SIG, lab_webhook_path
from tests.integrations.conftest import lab_connection, make_ctx

pytestmark = pytest.mark.django_db


def ctx_for(lab: Any, url: str | None = None) -> Any:
    return make_ctx(
        lab_connection(
            lab, "teams", {"webhook_url": url or lab.base_url("teams") + lab_webhook_path()}
        )
    )


def test_a_card_goes_to_the_workflow_url_as_an_adaptive_card(lab: Any) -> None:
    output = actions.post_card(ctx_for(lab), title="Host contained", text="WS-FIN-042 is isolated.",
                               facts={"Run": "7"}, link_url="https://bulwark.example/runs/7")  # fmt: skip
    assert output == {"status_code": 202, "accepted": True}
    (call,) = lab["teams"].requests("POST")
    assert call.query["sig"] == LAB_SIG
    body = call.json
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = attachment["content"]
    assert (content["type"], content["version"]) == ("AdaptiveCard", "1.4")
    assert content["body"][0]["text"] == "Host contained"
    assert content["body"][2] == {"type": "FactSet", "facts": [{"title": "Run", "value": "7"}]}
    assert content["actions"] == [{"type": "Action.OpenUrl", "title": "Open in Bulwark",
                                   "url": "https://bulwark.example/runs/7"}]  # fmt: skip


def test_a_wrong_sig_fails_permanently_without_showing_it(lab: Any) -> None:
    url = lab.base_url("teams") + lab_webhook_path().replace(LAB_SIG, "forged-sig-123")
    with pytest.raises(PermanentError) as failed:
        actions.post_card(ctx_for(lab, url), title="t", text="x")
    assert "401" in failed.value.message
    assert "forged-sig-123" not in failed.value.message


def test_a_webhook_on_another_host_is_refused(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.post_card(
            ctx_for(lab, "https://evil.example/workflows/x?sig=1"), title="t", text="x"
        )
    assert failed.value.kind == "connection"


def test_throttling_is_transient(lab: Any) -> None:
    lab["teams"].rate_limited(3)
    with pytest.raises(TransientError):
        actions.post_card(ctx_for(lab), title="t", text="x")
