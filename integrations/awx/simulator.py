"""An AWX simulator: job templates with their ask-on-launch flags, launches that drop
fields the template does not accept (`ignored_fields`), and jobs that run to an end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_TOKEN = "lab-awx-token-0000"  # noqa: S105 - the lab's own, not a secret


def _template(name: str, *, variables: bool, limit: bool) -> dict[str, Any]:
    return {"name": name, "ask_variables_on_launch": variables, "ask_limit_on_launch": limit,
            "ask_inventory_on_launch": False, "ask_tags_on_launch": False}  # fmt: skip


TEMPLATES = {
    7: _template("Snapshot host", variables=False, limit=True),
    9: _template("Restart web tier", variables=False, limit=False),
    42: _template("Patch hosts", variables=True, limit=True),
    43: _template("Restore host from snapshot", variables=False, limit=True),
    44: _template("Verify a CVE is fixed", variables=True, limit=True),
}
STAGES = ("pending", "waiting", "running")


class AWXSimulator(Simulator):
    name = "awx"
    stage_seconds = 0.3

    def __init__(self) -> None:
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.jobs: dict[int, dict[str, Any]] = {}
        self.fail_next = False

    def routes(self) -> Iterable[Rule]:
        return [
            Rule("/api/v2/job_templates/<int:template>/launch/", methods=["GET"], endpoint="launch_settings"),
            Rule("/api/v2/job_templates/<int:template>/launch/", methods=["POST"], endpoint="launch"),
            Rule("/api/v2/jobs/<int:job>/", methods=["GET"], endpoint="get_job"),
            Rule("/api/v2/jobs/<int:job>/cancel/", methods=["POST"], endpoint="cancel"),
            Rule("/api/v2/me/", methods=["GET"], endpoint="me"),
        ]  # fmt: skip

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return json_response({"detail": message}, status, headers)

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {LAB_TOKEN}"

    def me(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authentication credentials were not provided.")
        return json_response({"count": 1, "results": [{"id": 1, "username": "bulwark"}]})

    def launch_settings(self, request: Request, template: int) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authentication credentials were not provided.")
        if template not in TEMPLATES:
            return self.error(404, "Not found.")
        return json_response({**{k: v for k, v in TEMPLATES[template].items() if k != "name"},
                              "can_start_without_user_input": True, "passwords_needed_to_start": [],
                              "variables_needed_to_start": [], "survey_enabled": False})  # fmt: skip

    def launch(self, request: Request, template: int) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authentication credentials were not provided.")
        settings = TEMPLATES.get(template)
        if settings is None:
            return self.error(404, "Not found.")
        body = request.get_json(silent=True) or {}
        asks = {"extra_vars": "ask_variables_on_launch", "limit": "ask_limit_on_launch",
                "inventory": "ask_inventory_on_launch", "job_tags": "ask_tags_on_launch"}  # fmt: skip
        ignored = {k: v for k, v in body.items() if k in asks and not settings[asks[k]]}
        with self.lock:
            job_id = 100 + len(self.jobs) + 1
            job = {"id": job_id, "job": job_id, "type": "job", "url": f"/api/v2/jobs/{job_id}/",
                   "name": settings["name"], "job_template": template, "status": "pending", "failed": False,
                   "limit": "" if "limit" in ignored else body.get("limit", ""),
                   "extra_vars": json.dumps({} if "extra_vars" in ignored else body.get("extra_vars", {})),
                   "started": None, "finished": None, "elapsed": 0.0,
                   "launched_at": time.time(), "will_fail": self.fail_next}  # fmt: skip
            self.fail_next = False
            self.jobs[job_id] = job
        shown = {k: v for k, v in job.items() if k not in ("launched_at", "will_fail")}
        return json_response(
            {**shown, "ignored_fields": ignored}, 201, {"Location": f"/api/v2/jobs/{job_id}/"}
        )

    def _advance(self, job: dict[str, Any]) -> None:
        if job["status"] not in STAGES:
            return
        stage = int((time.time() - job["launched_at"]) / self.stage_seconds)
        if stage >= len(STAGES):
            job["status"] = "failed" if job["will_fail"] else "successful"
            job["failed"] = bool(job["will_fail"])
            job["finished"] = datetime.now(UTC).isoformat()
            job["elapsed"] = round(time.time() - job["launched_at"], 3)
        else:
            job["status"] = STAGES[stage]
            if job["status"] == "running" and not job["started"]:
                job["started"] = datetime.now(UTC).isoformat()

    def get_job(self, request: Request, job: int) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authentication credentials were not provided.")
        with self.lock:
            found = self.jobs.get(job)
            if found is None:
                return self.error(404, "Not found.")
            self._advance(found)
            return json_response(
                {k: v for k, v in found.items() if k not in ("launched_at", "will_fail")}
            )

    def cancel(self, request: Request, job: int) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authentication credentials were not provided.")
        with self.lock:
            found = self.jobs.get(job)
            if found is None:
                return self.error(404, "Not found.")
            if found["status"] in STAGES:
                found["status"] = "canceled"
        return Response(status=202)
