"""Ansible AWX / Automation Controller (vendor-apis.md §4.1): launch a job template and
wait for the job. A launch is not idempotent (every POST is a new job), so the template's
launch settings are checked first: fields AWX would silently drop (`ignored_fields`) fail
the step before anything runs."""

from __future__ import annotations

from typing import Any

from integrations.context import ActionContext
from integrations.errors import ActionError, PermanentError
from integrations.polling import wait
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import VendorAPI, credential, json_body

RUNNING = {"new", "pending", "waiting", "running"}
JOB_FIELDS = (
    "id",
    "name",
    "status",
    "failed",
    "started",
    "finished",
    "elapsed",
    "limit",
    "job_template",
)
# Which launch-time permission each field needs on the template.
ASK = {"extra_vars": "ask_variables_on_launch", "limit": "ask_limit_on_launch",
       "inventory": "ask_inventory_on_launch", "job_tags": "ask_tags_on_launch"}  # fmt: skip


class AWX(VendorAPI):
    integration = "awx"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential(self.connection, 'token')}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, expect_status=(400, 403, 404, 405), **kwargs)
        body = json_body(response) if response.content else {}
        if response.status_code >= 400:
            raise PermanentError(f"AWX {method} {path}: HTTP {response.status_code}: {body}",
                                 kind={403: "forbidden", 404: "not_found"}.get(response.status_code, "validation"))  # fmt: skip
        return body


def _job(body: dict[str, Any]) -> dict[str, Any]:
    return {name: body.get(name) for name in JOB_FIELDS}


@action("awx.launch_job", plan='launch AWX job template {job_template} limited to {limit}', side_effect="destructive", connection="awx", connection_required=True,
        output="the job: `id`, `status` (successful), `failed`, `started`, `finished`, `elapsed`, `limit`")  # fmt: skip
def launch_job(ctx: ActionContext, *, job_template: int, extra_vars: dict[str, Any] | None = None,
               limit: str | None = None, inventory: int | None = None, job_tags: str | None = None,
               wait: bool = True, poll_interval: float = 10.0,
               wait_timeout: float = 3600.0) -> dict[str, Any]:  # fmt: skip
    """Launch an AWX job template and (unless `wait: false`) wait until the job ends; a job
    that ends failed, errored or canceled fails the step."""
    progress = dict(ctx.progress or {})
    with AWX(ctx) as awx:
        if "job" not in progress:
            wanted = {k: v for k, v in {"extra_vars": extra_vars, "limit": limit, "inventory": inventory,
                                        "job_tags": job_tags}.items() if v}  # fmt: skip
            settings = awx.call("GET", f"api/v2/job_templates/{job_template}/launch/")
            refused = sorted(name for name in wanted if not settings.get(ASK[name]))
            if refused:
                raise PermanentError(
                    f"job template {job_template} does not accept {', '.join(refused)} at launch "
                    f"(AWX would ignore them); enable {', '.join(ASK[n] for n in refused)} on the template",
                    kind="validation",
                )  # fmt: skip
            if settings.get("passwords_needed_to_start") or settings.get(
                "variables_needed_to_start"
            ):
                raise PermanentError(f"job template {job_template} needs input to start: "
                                     f"{settings.get('variables_needed_to_start') or settings.get('passwords_needed_to_start')}",
                                     kind="validation")  # fmt: skip
            launched = awx.call("POST", f"api/v2/job_templates/{job_template}/launch/", json=wanted)
            job_id = launched.get("job") or launched.get("id")
            if launched.get("ignored_fields"):
                try:
                    awx.call("POST", f"api/v2/jobs/{job_id}/cancel/")
                    fate = "was canceled"
                except ActionError as exc:
                    fate = f"could not be canceled ({exc.message}): cancel it by hand"
                raise PermanentError(f"AWX ignored {launched['ignored_fields']}; job {job_id} {fate}",
                                     kind="validation", details={"job": job_id})  # fmt: skip
            progress["job"] = job_id
            if not wait:
                return _job(launched)
            # Kept at once: from here on, every attempt polls this job and launches nothing.
            raise ctx.poll_again(poll_interval, progress, f"AWX job {job_id} launched")
        job = awx.call("GET", f"api/v2/jobs/{progress['job']}/")
    if job.get("status") in RUNNING:
        raise _wait(ctx, progress, poll_interval, wait_timeout, job)
    if job.get("status") != "successful":
        raise PermanentError(f"AWX job {job.get('id')} ended {job.get('status')}", kind="vendor_action_failed",
                             details={"job": _job(job)})  # fmt: skip
    return _job(job)


def _wait(ctx: ActionContext, progress: dict[str, Any], poll_interval: float, wait_timeout: float,
          job: dict[str, Any]) -> Exception:  # fmt: skip
    return wait(ctx, progress, poll_interval=poll_interval, wait_timeout=wait_timeout,
                what=f"AWX job {job.get('id')} to finish (it is {job.get('status')})")  # fmt: skip


@prober("awx")
def check_connection(ctx: ActionContext) -> str:
    with AWX(ctx) as awx:
        me = awx.call("GET", "api/v2/me/")
    users = me.get("results") or [{}]
    return f"authenticated as {users[0].get('username')}"
