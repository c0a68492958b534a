"""A Jira Cloud simulator: issues with labels, JQL search by label, comments."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_EMAIL = "bulwark@lab.example"
LAB_API_TOKEN = "lab-jira-api-token"  # noqa: S105 - the lab's own, not a secret
PROJECTS = {"SEC": "Security", "OPS": "Operations"}
ISSUE_TYPES = {"Task", "Bug", "Incident"}


class JiraSimulator(Simulator):
    name = "jira"

    def __init__(self) -> None:
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.issues: dict[str, dict[str, Any]] = {}
        self.next_id = 10000

    def routes(self) -> Iterable[Rule]:
        return [
            Rule("/rest/api/3/issue", methods=["POST"], endpoint="create_issue"),
            Rule("/rest/api/3/search/jql", methods=["GET"], endpoint="search"),
            Rule("/rest/api/3/issue/<key>/comment", methods=["POST"], endpoint="add_comment"),
            Rule("/rest/api/3/issue/<key>", methods=["GET"], endpoint="get_issue"),
            Rule("/rest/api/3/myself", methods=["GET"], endpoint="myself"),
        ]

    def myself(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("Unauthorized", status=401)
        return json_response({"accountId": "lab-bulwark", "emailAddress": LAB_EMAIL,
                              "displayName": "Bulwark (lab)", "active": True})  # fmt: skip

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return json_response({"errorMessages": [message], "errors": {}}, status, headers)

    def rate_limit_headers(self, retry_after: float) -> dict[str, str]:
        return {"Retry-After": str(int(retry_after)), "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0", "RateLimit-Reason": "jira-burst-based"}  # fmt: skip

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{LAB_EMAIL}:{LAB_API_TOKEN}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _url(self, request: Request, issue_id: str) -> str:
        return f"{request.host_url.rstrip('/')}{request.script_root}/rest/api/3/issue/{issue_id}"

    def create_issue(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("Unauthorized", status=401)
        fields = (request.get_json(silent=True) or {}).get("fields") or {}
        errors: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if project not in PROJECTS:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
            errors["issuetype"] = "valid issue type is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        description = fields.get("description")
        if description is not None and not (
            isinstance(description, dict) and description.get("type") == "doc"
        ):
            errors["description"] = "Operation value must be an Atlassian Document"
        if errors:
            return json_response({"errorMessages": [], "errors": errors}, 400)
        with self.lock:
            self.next_id += 1
            issue_id = str(self.next_id)
            key = f"{project}-{sum(1 for i in self.issues.values() if i['project'] == project) + 1}"
            self.issues[key] = {"id": issue_id, "key": key, "project": project, "fields": fields,
                                "comments": []}  # fmt: skip
        return json_response(
            {"id": issue_id, "key": key, "self": self._url(request, issue_id)}, 201
        )

    def search(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("Unauthorized", status=401)
        jql = request.args.get("jql", "")
        match = re.fullmatch(r'\s*labels\s*=\s*"([^"]+)"\s*', jql)
        if match is None:
            return json_response({"errorMessages": [f"the lab only searches by label: {jql}"]}, 400)
        with self.lock:
            found = [
                i for i in self.issues.values() if match.group(1) in i["fields"].get("labels", [])
            ]
        issues = [{"id": i["id"], "key": i["key"], "self": self._url(request, i["id"]),
                   "fields": {"summary": i["fields"].get("summary"), "labels": i["fields"].get("labels")}}
                  for i in found]  # fmt: skip
        return json_response({"issues": issues, "isLast": True})

    def _find(self, key: str) -> dict[str, Any] | None:
        return self.issues.get(key) or next(
            (i for i in self.issues.values() if i["id"] == key), None
        )

    def get_issue(self, request: Request, key: str) -> Response:
        if not self._authorized(request):
            return Response("Unauthorized", status=401)
        issue = self._find(key)
        if issue is None:
            return self.error(404, "Issue does not exist or you do not have permission to see it.")
        return json_response({"id": issue["id"], "key": issue["key"], "fields": issue["fields"]})

    def add_comment(self, request: Request, key: str) -> Response:
        if not self._authorized(request):
            return Response("Unauthorized", status=401)
        issue = self._find(key)
        if issue is None:
            return self.error(404, "Issue does not exist or you do not have permission to see it.")
        body = (request.get_json(silent=True) or {}).get("body")
        if not (isinstance(body, dict) and body.get("type") == "doc"):
            return json_response(
                {"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}}, 400
            )
        now = datetime.now(UTC).isoformat()
        with self.lock:
            comment = {"id": str(10000 + len(issue["comments"]) + 1), "body": body, "created": now,
                       "updated": now, "author": {"emailAddress": LAB_EMAIL}}  # fmt: skip
            issue["comments"].append(comment)
        return json_response(
            {**comment, "self": f"{self._url(request, issue['id'])}/comment/{comment['id']}"}, 201
        )
