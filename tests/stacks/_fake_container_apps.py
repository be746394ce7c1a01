"""A stand-in for Azure Resource Manager's Container Apps jobs (Microsoft.App) and the
Log Analytics query API, served by tests/stacks/_recorder.py. It keeps state as the
real APIs do, in their JSON shapes: `start` creates an execution `Processing`, `stop`
stops it (`Stopped`), a test moves executions through the `properties.status` values
Container Apps reports (Running, Processing, Succeeded, Failed, Stopped, Degraded) and
writes the environment's log tables (`ContainerAppConsoleLogs_CL`,
`ContainerAppSystemLogs_CL`), which queries read back filtered as KQL would."""

from __future__ import annotations

import re
from typing import Any

from tests.stacks._recorder import Call, Reply

WORKSPACE = "7f5d0a3c-0000-4000-8000-00000000c0de"


def _not_found(what: str) -> Reply:
    return 404, {"error": {"code": "ResourceNotFound", "message": f"{what} was not found"}}


class FakeContainerApps:
    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}
        self.executions: dict[str, dict[str, Any]] = {}  # "job/execution" -> resource
        self.console: list[dict[str, str]] = []
        self.system: list[dict[str, str]] = []
        self.environment_found = True
        self.refuse_queries = False

    # What a test does on the platform's side.

    def set_status(self, run_id: str, status: str) -> None:
        self.executions[run_id]["properties"]["status"] = status

    def write_log(self, run_id: str, text: str) -> None:
        job, _, execution = run_id.partition("/")
        self.console.append(
            {
                "ContainerAppName_s": job,
                "ContainerGroupName_s": f"{execution}-x7k2p",
                "ContainerName_s": "execution",
                "Log_s": text,
            }
        )

    def system_event(self, run_id: str, kind: str, reason: str, text: str) -> None:
        job, _, execution = run_id.partition("/")
        self.system.append(
            {
                "JobName_s": job,
                "ExecutionName_s": execution,
                "Type_s": kind,
                "Reason_s": reason,
                "Log_s": text,
            }
        )

    # The APIs.

    def __call__(self, c: Call) -> Reply | None:
        if c.path == "/v2/":
            return 200, {}  # the registry probe of `stack register`
        if c.path.startswith("/v1/workspaces/"):
            return self._query(c)
        path = c.path
        if c.method == "GET" and "managedEnvironments" in path:
            if not self.environment_found:
                return _not_found("managed environment 'env'")
            return 200, {"name": "env", "location": "westeurope", "properties": {}}
        found = re.search(r"/jobs/([^/]+)/executions/([^/]+)(/stop)?$", path)
        if found:
            run_id = f"{found.group(1)}/{found.group(2)}"
            if run_id not in self.executions:
                return _not_found(f"job execution {run_id}")
            if c.method == "POST" and found.group(3):
                self.set_status(run_id, "Stopped")
                return 200, {}
            return 200, self.executions[run_id]
        if c.method == "GET" and "/jobs/" in path:
            return (200, self.jobs[path]) if path in self.jobs else _not_found("job")
        if c.method == "PUT" and "/jobs/" in path:
            body = dict(c.body)
            body["properties"] = {**body["properties"], "provisioningState": "Succeeded"}
            self.jobs[path] = {**body, "id": path, "name": path.rsplit("/", 1)[1]}
            return 200, self.jobs[path]
        if c.method == "POST" and path.endswith("/start"):
            job = path.removesuffix("/start").rsplit("/", 1)[1]
            name = f"{job}-{len(self.executions):07d}"
            resource = {
                "name": name,
                "id": path.removesuffix("/start") + f"/executions/{name}",
                "type": "Microsoft.App/jobs/executions",
                "properties": {
                    "status": "Processing",
                    "startTime": "2026-01-01T00:00:00Z",
                    "template": c.body,
                },
            }
            self.executions[f"{job}/{name}"] = resource
            return 200, {"name": name, "id": resource["id"]}
        return None

    def _query(self, c: Call) -> Reply:
        if self.refuse_queries:
            return 403, {"error": {"code": "InsufficientAccessError", "message": "denied"}}
        if c.path != f"/v1/workspaces/{WORKSPACE}/query":
            return 404, {"error": {"code": "WorkspaceNotFoundError", "message": "no workspace"}}
        kql: str = c.body["query"]
        table = kql.split("|", 1)[0].strip()
        equals = dict(re.findall(r"(\w+) == '([^']*)'", kql))
        prefixes = dict(re.findall(r"(\w+) startswith '([^']*)'", kql))
        rows = self.console if table == "ContainerAppConsoleLogs_CL" else self.system
        matching = [
            r
            for r in rows
            if all(r.get(k) == v for k, v in equals.items())
            and all(r.get(k, "").startswith(v) for k, v in prefixes.items())
        ]
        columns = re.search(r"project (.+)$", kql)
        names = [n.strip() for n in columns.group(1).split(",")] if columns else ["Log_s"]
        return 200, {
            "tables": [
                {
                    "name": "PrimaryResult",
                    "columns": [{"name": n, "type": "string"} for n in names],
                    "rows": [[r.get(n, "") for n in names] for r in matching],
                }
            ]
        }
