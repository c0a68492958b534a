"""Defender for Endpoint actions: isolate and release a machine, collect an investigation
package as evidence. Each looks up the machine's latest action first, so a repeated
attempt adopts the action already requested instead of firing a duplicate (a stuck
duplicate can re-apply isolation after a release: vendor-apis.md §1.2)."""

from __future__ import annotations

from typing import Any, Literal

from integrations import http_client
from integrations.context import ActionContext
from integrations.defender.client import FINAL, Defender, DefenderError
from integrations.errors import PermanentError
from integrations.evidence import keeper
from integrations.polling import DEFAULT_POLL_INTERVAL, DEFAULT_WAIT_TIMEOUT, wait
from integrations.probes import prober
from integrations.registry import action

ACTION_FIELDS = ("id", "type", "scope", "status", "machineId", "computerDnsName", "requestor",
                 "requestorComment", "creationDateTimeUtc", "lastUpdateDateTimeUtc")  # fmt: skip
PENDING = {"Pending", "InProgress"}


def _shown(machine_action: dict[str, Any]) -> dict[str, Any]:
    return {name: machine_action.get(name) for name in ACTION_FIELDS}


def _run_machine_action(defender: Defender, *, machine_id: str, kind: str, verb: str,
                        body: dict[str, Any], opposite: str | None, wait_done: bool,
                        poll_interval: float, wait_timeout: float) -> dict[str, Any]:  # fmt: skip
    """Request (or adopt) a machine action and wait for it to succeed; returns it."""
    ctx = defender.ctx
    progress = dict(ctx.progress or {})
    if "action_id" not in progress:
        kinds = (kind, opposite) if opposite else (kind,)
        latest = defender.latest_action(machine_id, kinds)
        if (
            latest
            and latest.get("type") == kind
            and (
                latest.get("status") in PENDING
                or (opposite and latest.get("status") == "Succeeded")
            )
        ):
            progress["action_id"], progress["adopted"] = latest["id"], True  # fmt: skip
        else:
            try:
                requested = defender.request_action(machine_id, verb, body)
            except DefenderError as exc:
                if exc.code != "ActiveRequestAlreadyExists":
                    raise
                existing = defender.latest_action(machine_id, (kind,))
                if existing is None:
                    raise
                requested = existing
            progress["action_id"], progress["adopted"] = requested["id"], False
    current = defender.machine_action(progress["action_id"])
    status = current.get("status")
    if status in FINAL - {"Succeeded"}:
        raise PermanentError(f"Defender's {kind} action {current.get('id')} on {machine_id} ended {status}",
                             kind="vendor_action_failed", details={"action": _shown(current)})  # fmt: skip
    if status != "Succeeded" and wait_done:
        raise wait(ctx, progress, poll_interval=poll_interval, wait_timeout=wait_timeout,
                   what=f"Defender {kind} on machine {machine_id} (it is {status})")  # fmt: skip
    return {**_shown(current), "adopted": bool(progress.get("adopted"))}


@action("defender.isolate_machine", plan='isolate machine {machine_id}', side_effect="destructive", idempotent=True,
        connection="defender", connection_required=True,
        output="the machine action: `id`, `type`, `status` (Succeeded), `machineId`, `computerDnsName`, `adopted`")  # fmt: skip
def isolate_machine(ctx: ActionContext, *, machine_id: str, comment: str,
                    isolation_type: Literal["Full", "Selective", "UnManagedDevice"] = "Full",
                    wait: bool = True, poll_interval: float = DEFAULT_POLL_INTERVAL,
                    wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> dict[str, Any]:  # fmt: skip
    """Isolate a machine from the network and wait until the isolation has succeeded."""
    with Defender(ctx) as defender:
        return _run_machine_action(
            defender, machine_id=machine_id, kind="Isolate", verb="isolate", opposite="Unisolate",
            body={"Comment": comment, "IsolationType": isolation_type}, wait_done=wait,
            poll_interval=poll_interval, wait_timeout=wait_timeout,
        )  # fmt: skip


@action("defender.unisolate_machine", plan='release machine {machine_id} from isolation', side_effect="write", idempotent=True,
        connection="defender", connection_required=True,
        output="the machine action: `id`, `type` (Unisolate), `status`, `machineId`, `adopted`")  # fmt: skip
def unisolate_machine(ctx: ActionContext, *, machine_id: str, comment: str, wait: bool = True,
                      poll_interval: float = DEFAULT_POLL_INTERVAL,
                      wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> dict[str, Any]:  # fmt: skip
    """Release a machine from isolation and wait until the release has succeeded."""
    with Defender(ctx) as defender:
        return _run_machine_action(
            defender, machine_id=machine_id, kind="Unisolate", verb="unisolate", opposite="Isolate",
            body={"Comment": comment}, wait_done=wait, poll_interval=poll_interval,
            wait_timeout=wait_timeout,
        )  # fmt: skip


@action("defender.collect_investigation_package", plan='collect an investigation package from machine {machine_id}', side_effect="write", idempotent=True,
        connection="defender", connection_required=True,
        output="the evidence artifact (`artifact_id`, `sha256`, `size`, `filename`, `url`) and the machine action")  # fmt: skip
def collect_investigation_package(ctx: ActionContext, *, machine_id: str, comment: str,
                                  poll_interval: float = 30.0,
                                  wait_timeout: float = 3600.0) -> dict[str, Any]:  # fmt: skip
    """Collect a forensic investigation package from a machine and keep it as evidence.

    Waits for the collection to succeed, asks for its short-lived download link (a call
    limited to 2 a minute, so only once), and downloads the package, without the bearer
    token, straight into the artifact store by SHA-256.
    """
    with Defender(ctx) as defender:
        done = _run_machine_action(
            defender, machine_id=machine_id, kind="CollectInvestigationPackage",
            verb="collectInvestigationPackage", opposite=None, body={"Comment": comment},
            wait_done=True, poll_interval=poll_interval, wait_timeout=wait_timeout,
        )  # fmt: skip
        uri = defender.package_uri(str(done["id"]))

        keep = keeper(
            ctx, action="defender.collect_investigation_package",
            filename=f"investigation-package-{machine_id}.zip", default_type="application/zip",
            source=f"defender.collect_investigation_package machine {machine_id} action {done['id']}",
            metadata={"machine_id": machine_id, "machine_action": done["id"],
                      "computer": done.get("computerDnsName")},
        )  # fmt: skip

        # The SAS link is its own credential: fetched without the API's bearer token.
        secrets = [*defender.secrets, uri.partition("?")[2]]
        kept = http_client.download(defender.client, ctx, uri, keep, secrets=secrets)
    return {**kept, "machine_action": done}


@prober("defender")
def check_connection(ctx: ActionContext) -> str:
    with Defender(ctx) as defender:
        defender.call("GET", "api/machines", params={"$top": 1})
    return "token issued; machines listed"
