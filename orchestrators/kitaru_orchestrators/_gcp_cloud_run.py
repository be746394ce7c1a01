"""`gcp_cloud_run`: Cloud Run Jobs (`pip install "kitaru[gcp]"`).

One Cloud Run job per image (created once, its template holds the image, resources,
service account and Secret Manager references); each execution is a RunJob with
per-execution overrides: the arguments (`run-execution ID`) and plain environment.

What an execution's state means here (the Execution resource of the Admin API v2): its
`Completed` condition and counters say whether it ended, and how (`cancelledCount`,
`failedCount`, `executionReason`); a failed one names its cause in a failed condition
(`ResourcesAvailable` for an image that cannot be pulled, `Completed` for the task) and
its task's last attempt holds the exit code. Logs are read from Cloud Logging
(`entries:list`, filtered on the execution's name).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import run_v2
from google.protobuf import duration_pb2

from kitaru import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks import RunStatus, SubmitRequest
from kitaru_orchestrators._env import split_secrets

CONTAINER = "execution"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
LOGGING_ENDPOINT = "https://logging.googleapis.com"
# Enough for what an execution prints; more is in Cloud Logging itself.
LOG_PAGES = 20


def cloud_run_job_id(prefix: str, image: str, secrets: dict[str, str]) -> str:
    key = image + "".join(f"\n{k}={v}" for k, v in sorted(secrets.items()))
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"[:63]


def job_template(request: SubmitRequest, settings: Any) -> run_v2.Job:
    """The Cloud Run job for the request's image: what is the same for every execution."""
    _env, platform = split_secrets(request)
    env = [
        run_v2.EnvVar(
            name=name,
            value_source=run_v2.EnvVarSource(
                secret_key_ref=run_v2.SecretKeySelector(
                    secret=ref.name, version=ref.key or "latest"
                )
            ),
        )
        for name, ref in sorted(platform.items())
    ]
    container = run_v2.Container(
        name=CONTAINER,
        image=request.image,
        command=list(request.command[:3]),
        env=env,
        resources=run_v2.ResourceRequirements(
            limits={"cpu": settings.cpu, "memory": settings.memory}
        ),
    )
    task = run_v2.TaskTemplate(
        containers=[container],
        max_retries=settings.max_retries,
        timeout=duration_pb2.Duration(seconds=settings.timeout_seconds),
    )
    if settings.service_account:
        task.service_account = settings.service_account
    return run_v2.Job(
        labels={"managed-by": "kitaru"},
        template=run_v2.ExecutionTemplate(task_count=1, parallelism=1, template=task),
    )


def run_overrides(request: SubmitRequest) -> run_v2.RunJobRequest.Overrides:
    env, _platform = split_secrets(request)
    return run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                name=CONTAINER,
                args=list(request.command[3:]),
                env=[run_v2.EnvVar(name=k, value=v) for k, v in sorted(env.items())],
            )
        ],
        task_count=1,
    )


class CloudRunOrchestrator:
    flavor = "gcp_cloud_run"

    def __init__(self, stack: StackRecord, settings: Any) -> None:
        self.stack = stack
        self.settings = settings
        self.parent = f"projects/{settings.project}/locations/{settings.region}"
        options: dict[str, Any] = {"transport": "rest"}
        if settings.api_endpoint:
            options["client_options"] = {"api_endpoint": settings.api_endpoint}
            if settings.api_endpoint.startswith("http://"):
                # A local emulator: no Google credentials are sent over plain HTTP.
                from google.auth.credentials import AnonymousCredentials

                options["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]
        self.jobs = run_v2.JobsClient(**options)
        self.executions = run_v2.ExecutionsClient(**options)
        self.tasks = run_v2.TasksClient(**options)

    def check(self) -> None:
        try:
            self.jobs.list_jobs(request=run_v2.ListJobsRequest(parent=self.parent, page_size=1))
        except gexc.GoogleAPIError as exc:
            raise ConfigurationError(
                f"setting 'project'/'region': listing Cloud Run jobs in {self.parent} failed "
                f"({exc}); check the project, the region, that the Cloud Run API is enabled "
                "and the credentials (gcloud auth application-default login)"
            ) from None

    def _ensure_job(self, request: SubmitRequest) -> str:
        _env, platform = split_secrets(request)
        job_id = cloud_run_job_id(
            self.settings.job_prefix, str(request.image), {k: str(v) for k, v in platform.items()}
        )
        name = f"{self.parent}/jobs/{job_id}"
        try:
            self.jobs.get_job(name=name)
        except gexc.NotFound:
            operation = self.jobs.create_job(
                parent=self.parent, job=job_template(request, self.settings), job_id=job_id
            )
            operation.result()  # type: ignore[no-untyped-call]
        return name

    def submit(self, request: SubmitRequest) -> str:
        if request.image is None:
            raise ConfigurationError("the gcp_cloud_run orchestrator needs an image")
        job = self._ensure_job(request)
        operation = self.jobs.run_job(
            request=run_v2.RunJobRequest(name=job, overrides=run_overrides(request))
        )
        return str(operation.metadata.name)

    def is_run_of(self, run_id: str, exec_id: str) -> bool:
        # An execution of one of this stack's jobs (`submit` runs them per image, the
        # execution id travels in its arguments, which Cloud Run does not show cheaply).
        # Plain names only: they are quoted into Cloud Logging filters.
        job, sep, execution = run_id.rpartition("/executions/")
        prefix = f"{self.parent}/jobs/"
        return (
            bool(sep)
            and _NAME.fullmatch(execution) is not None
            and job.startswith(f"{prefix}{self.settings.job_prefix}-")
            and _NAME.fullmatch(job.removeprefix(prefix)) is not None
        )

    def status(self, run_id: str) -> RunStatus:
        try:
            execution = self.executions.get_execution(name=run_id)
        except gexc.NotFound:
            return RunStatus("missing", "Cloud Run no longer knows the execution")
        completed = _condition(execution, "Completed")
        reason = completed.execution_reason.name if completed is not None else ""
        if execution.cancelled_count or reason in ("CANCELLED", "CANCELLING"):
            return RunStatus("cancelled", "cancelled on Cloud Run")
        failed = completed is not None and completed.state.name == "CONDITION_FAILED"
        if execution.failed_count or failed:
            exit_code, task_message = self._last_attempt(run_id)
            causes = [
                c.message
                for c in execution.conditions
                if c.state.name == "CONDITION_FAILED" and c.message
            ]
            detail = "; ".join(dict.fromkeys([*causes, task_message] if task_message else causes))
            return RunStatus("failed", detail, exit_code=exit_code)
        if execution.succeeded_count:
            return RunStatus("succeeded")
        if execution.running_count:
            return RunStatus("running")
        waiting = [
            c.message
            for c in execution.conditions
            if c.state.name in ("CONDITION_PENDING", "CONDITION_RECONCILING") and c.message
        ]
        return RunStatus("pending", "; ".join(waiting))

    def _last_attempt(self, run_id: str) -> tuple[int | None, str]:
        """The exit code and message of the execution's task's last attempt."""
        try:
            tasks = list(self.tasks.list_tasks(parent=run_id))
        except gexc.GoogleAPIError:
            return None, ""
        for task in tasks:
            if "last_attempt_result" in task:
                result = task.last_attempt_result
                code = result.exit_code if "exit_code" in result else None
                return code, result.status.message
        return None, ""

    def logs(self, run_id: str) -> str:
        job, _, execution = run_id.partition("/executions/")
        query = (
            f'resource.type="cloud_run_job" AND resource.labels.job_name="{job.rsplit("/", 1)[-1]}"'
            f' AND labels."run.googleapis.com/execution_name"="{execution}"'
        )
        body: dict[str, Any] = {
            "resourceNames": [f"projects/{self.settings.project}"],
            "filter": query,
            "orderBy": "timestamp asc",
            "pageSize": 1000,
        }
        endpoint = (self.settings.logging_endpoint or LOGGING_ENDPOINT).rstrip("/")
        read_it = f"gcloud logging read '{query}' --project {self.settings.project}"
        session = self._logging_session(read_it)
        lines: list[str] = []
        for _ in range(LOG_PAGES):
            reply = session.post(f"{endpoint}/v2/entries:list", json=body, timeout=30)
            if reply.status_code >= 400:
                raise ConfigurationError(
                    f"reading the logs of {run_id} from Cloud Logging failed (HTTP "
                    f"{reply.status_code}: {reply.text[:200]}); the identity needs "
                    f"roles/logging.viewer on the project, or read them with: {read_it}"
                )
            page = reply.json()
            lines += [_entry_text(e) for e in page.get("entries", [])]
            if not page.get("nextPageToken"):
                break
            body["pageToken"] = page["nextPageToken"]
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def _logging_session(self, read_it: str) -> Any:
        endpoint = self.settings.logging_endpoint or LOGGING_ENDPOINT
        if endpoint.startswith("http://"):
            import requests

            return requests.Session()  # a local emulator: no credentials over plain HTTP
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.auth.transport.requests import AuthorizedSession

        try:
            credentials, _project = google.auth.default(
                scopes=["https://www.googleapis.com/auth/logging.read"]
            )
        except DefaultCredentialsError:
            raise ConfigurationError(
                "reading Cloud Logging needs Google credentials (gcloud auth "
                f"application-default login); or read the logs with: {read_it}"
            ) from None
        return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]

    def cancel(self, run_id: str) -> None:
        try:
            self.executions.cancel_execution(name=run_id)
        except (gexc.NotFound, gexc.FailedPrecondition):
            pass


def _condition(execution: run_v2.Execution, kind: str) -> run_v2.Condition | None:
    for condition in execution.conditions:
        if condition.type_ == kind:
            return condition
    return None


def _entry_text(entry: dict[str, Any]) -> str:
    if "textPayload" in entry:
        return str(entry["textPayload"])
    payload = entry.get("jsonPayload") or {}
    return str(payload.get("message", payload))
