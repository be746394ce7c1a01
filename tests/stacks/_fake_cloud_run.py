"""A stand-in for the Cloud Run Admin API v2 (jobs, executions, tasks) and the Cloud
Logging API (`entries:list`), served by tests/stacks/_recorder.py. It keeps state the
way the real APIs do, in their JSON shapes: an execution is created pending by `:run`,
`:cancel` cancels it (so a test reads the cancel back from the platform's state, not
from a call made), and the test moves executions through the states Cloud Run reports
(conditions with `executionReason`, the `*Count` counters, a task's
`lastAttemptResult`)."""

from __future__ import annotations

import re
from typing import Any

from tests.stacks._recorder import Call, Reply

PAGE = 3  # Cloud Logging returns at most `pageSize` entries a page, often fewer


def _error(code: int, status: str, message: str) -> Reply:
    return code, {"error": {"code": code, "status": status, "message": message}}


class FakeCloudRun:
    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, list[dict[str, Any]]] = {}
        self.entries: list[dict[str, Any]] = []
        self.refuse_listing = False
        self.refuse_logging = False

    # What a test does on the platform's side.

    def update(self, execution: str, **fields: Any) -> None:
        self.executions[execution].update(fields)

    def attempt(self, execution: str, result: dict[str, Any]) -> None:
        """The execution's task ended an attempt with `result` (a TaskAttemptResult)."""
        self.tasks[execution] = [{"name": f"{execution}/tasks/{execution.rsplit('/', 1)[1]}-0"}]
        self.tasks[execution][0]["lastAttemptResult"] = result

    def write_log(self, execution: str, text: str, *, as_json: bool = False) -> None:
        job = execution.split("/jobs/", 1)[1].split("/", 1)[0]
        entry: dict[str, Any] = {
            "logName": "projects/p/logs/run.googleapis.com%2Fstdout",
            "resource": {"type": "cloud_run_job", "labels": {"job_name": job}},
            "labels": {"run.googleapis.com/execution_name": execution.rsplit("/", 1)[1]},
            "timestamp": f"2026-01-01T00:00:{len(self.entries):02d}Z",
        }
        entry["jsonPayload" if as_json else "textPayload"] = (
            {"message": text, "severity": "INFO"} if as_json else text
        )
        self.entries.append(entry)

    # The APIs.

    def __call__(self, c: Call) -> Reply | None:
        if c.path == "/v2/":
            return 200, {}  # the registry probe of `stack register`
        if c.path == "/v2/entries:list":
            return self._entries(c.body)
        path = c.path.removeprefix("/v2/")
        if c.method == "GET" and path.endswith("/jobs"):
            if self.refuse_listing:
                return _error(403, "PERMISSION_DENIED", "Permission 'run.jobs.list' denied")
            return 200, {"jobs": list(self.jobs.values())}
        if c.method == "GET" and path.endswith("/tasks"):
            return 200, {"tasks": self.tasks.get(path.removesuffix("/tasks"), [])}
        if c.method == "GET" and "/executions/" in path:
            found = self.executions.get(path)
            return (200, found) if found else _error(404, "NOT_FOUND", f"{path} not found")
        if c.method == "GET" and "/jobs/" in path:
            return (200, self.jobs[path]) if path in self.jobs else None
        if c.method == "POST" and path.endswith("/jobs"):
            name = f"{path}/{c.query['jobId'][0]}"
            self.jobs[name] = {**c.body, "name": name}
            return 200, _operation("create", self.jobs[name], "Job", done=True)
        if c.method == "POST" and path.endswith(":run"):
            job = path.removesuffix(":run")
            name = f"{job}/executions/{job.rsplit('/', 1)[1]}-{len(self.executions):05d}"
            self.executions[name] = {
                "name": name,
                "job": job.rsplit("/", 1)[1],
                "taskCount": 1,
                "parallelism": 1,
                "reconciling": True,
                "conditions": [
                    {"type": "Completed", "state": "CONDITION_PENDING"},
                    {"type": "ResourcesAvailable", "state": "CONDITION_PENDING"},
                ],
            }
            return 200, _operation("run", self.executions[name], "Execution", done=False)
        if c.method == "POST" and path.endswith(":cancel"):
            name = path.removesuffix(":cancel")
            if name not in self.executions:
                return _error(404, "NOT_FOUND", f"{name} not found")
            execution = self.executions[name]
            execution.update(
                runningCount=0,
                cancelledCount=1,
                reconciling=False,
                conditions=[
                    {
                        "type": "Completed",
                        "state": "CONDITION_FAILED",
                        "executionReason": "CANCELLED",
                        "message": "The execution was cancelled.",
                    }
                ],
            )
            return 200, _operation("cancel", execution, "Execution", done=True)
        return None

    def _entries(self, body: dict[str, Any]) -> Reply:
        if self.refuse_logging:
            return _error(403, "PERMISSION_DENIED", "Permission 'logging.logEntries.list' denied")
        found = re.search(r'execution_name"="([^"]+)"', body.get("filter", ""))
        job = re.search(r'resource.labels.job_name="([^"]+)"', body.get("filter", ""))
        matching = [
            e
            for e in self.entries
            if found
            and job
            and e["labels"]["run.googleapis.com/execution_name"] == found.group(1)
            and e["resource"]["labels"]["job_name"] == job.group(1)
        ]
        start = int(body.get("pageToken") or 0)
        size = min(PAGE, int(body.get("pageSize") or PAGE))
        page: dict[str, Any] = {"entries": matching[start : start + size]}
        if start + size < len(matching):
            page["nextPageToken"] = str(start + size)
        return 200, page


def _operation(verb: str, resource: dict[str, Any], kind: str, *, done: bool) -> dict[str, Any]:
    typed = {"@type": f"type.googleapis.com/google.cloud.run.v2.{kind}", **resource}
    operation: dict[str, Any] = {"name": f"projects/p/locations/r/operations/{verb}"}
    if done:
        operation.update(done=True, response=typed)
    else:
        operation.update(done=False, metadata=typed)
    return operation
