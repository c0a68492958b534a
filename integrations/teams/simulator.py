"""A Teams Workflows webhook simulator: accepts Adaptive Cards with the right `sig`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_WORKFLOW = "0b1d5a5e3c7f4e0c9a2d8b6f4e1c3a7d"
LAB_SIG = "lab-teams-sig-0000"


def lab_webhook_path() -> str:
    return (f"/workflows/{LAB_WORKFLOW}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={LAB_SIG}")  # fmt: skip


class TeamsSimulator(Simulator):
    name = "teams"

    def __init__(self) -> None:
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.cards: list[dict[str, Any]] = []

    def routes(self) -> Iterable[Rule]:
        return [
            Rule(
                "/workflows/<workflow>/triggers/manual/paths/invoke",
                methods=["POST"],
                endpoint="invoke",
            )
        ]

    def invoke(self, request: Request, workflow: str) -> Response:
        if workflow != LAB_WORKFLOW or request.args.get("sig") != LAB_SIG:
            return json_response({"error": {"code": "DirectApiAuthorizationRequired",
                                            "message": "The request must be authenticated"}}, 401)  # fmt: skip
        body = request.get_json(silent=True) or {}
        attachments = body.get("attachments") or []
        if (
            body.get("type") != "message"
            or not attachments
            or attachments[0].get("contentType") != "application/vnd.microsoft.card.adaptive"
        ):
            return json_response(
                {
                    "error": {
                        "code": "InvalidRequestContent",
                        "message": "not an adaptive card message",
                    }
                },
                400,
            )
        with self.lock:
            self.cards.append(attachments[0]["content"])
        return Response(status=202)
