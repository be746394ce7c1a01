"""`aws_batch`: an AWS Batch job per execution (`pip install "kitaru[aws]"`).

One job definition per image (named after the image digest, registered once); each
execution is a SubmitJob to the stack's job queue with the command and environment
as container overrides. `secret:ARN` references become the job definition's `secrets`
(Secrets Manager or SSM Parameter Store, resolved by Batch with the execution role).
Logs are read from CloudWatch Logs.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

import boto3
import botocore.exceptions

from kitaru import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks import RunStatus, SubmitRequest
from kitaru_orchestrators._env import short_id, split_secrets

_STATES = {
    "SUBMITTED": "pending",
    "PENDING": "pending",
    "RUNNABLE": "pending",
    "STARTING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
}


def job_definition_name(image: str, secrets: dict[str, str], prefix: str = "kitaru-") -> str:
    key = image + "".join(f"\n{k}={v}" for k, v in sorted(secrets.items()))
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:24]


def job_definition(request: SubmitRequest, settings: Any) -> dict[str, Any]:
    """RegisterJobDefinition arguments for the request's image."""
    _env, platform = split_secrets(request)
    secrets = {name: ref.name for name, ref in platform.items()}
    props: dict[str, Any] = {
        "image": request.image,
        "command": ["python", "-m", "kitaru", "--help"],
        "resourceRequirements": [
            {"type": "VCPU", "value": settings.vcpus},
            {"type": "MEMORY", "value": str(settings.memory_mib)},
        ],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": settings.log_group},
        },
    }
    if settings.job_role_arn:
        props["jobRoleArn"] = settings.job_role_arn
    if settings.execution_role_arn:
        props["executionRoleArn"] = settings.execution_role_arn
    if secrets:
        props["secrets"] = [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())]
    if settings.platform == "FARGATE":
        props["networkConfiguration"] = {
            "assignPublicIp": "ENABLED" if settings.assign_public_ip else "DISABLED"
        }
    return {
        "jobDefinitionName": job_definition_name(
            str(request.image), secrets, settings.job_definition_prefix
        ),
        "type": "container",
        "platformCapabilities": [settings.platform],
        "containerProperties": props,
        # Retrying is kitaru's job (resume re-submits); a second attempt would run twice.
        "retryStrategy": {"attempts": 1},
        # No tags on job definitions or jobs: tagging at creation needs
        # batch:TagResource, which the provisioned orchestrator policy does not grant.
        # The job name and command carry the execution id instead.
    }


def submit_job_name(exec_id: str) -> str:
    return f"kitaru-{short_id(exec_id)}"[:128]


def submit_job(request: SubmitRequest, settings: Any, definition_arn: str) -> dict[str, Any]:
    env, _platform = split_secrets(request)
    return {
        "jobName": submit_job_name(request.exec_id),
        "jobQueue": settings.job_queue,
        "jobDefinition": definition_arn,
        "containerOverrides": {
            "command": list(request.command),
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        },
    }


def job_status(job: dict[str, Any]) -> RunStatus:
    """A DescribeJobs job as a run state. Why a job failed is spread over the job's
    `statusReason` (a cancel's or terminate's reason, `Essential container in task
    exited`), its container's `reason` (`CannotPullContainerError: ...`,
    `OutOfMemoryError: ...`) and its last attempt's (`Host EC2 (instance i-...)
    terminated.` when a Spot instance is reclaimed)."""
    container = job.get("container") or {}
    attempts = job.get("attempts") or [{}]
    last = attempts[-1] or {}
    reasons = [
        container.get("reason"),
        (last.get("container") or {}).get("reason"),
        last.get("statusReason"),
        job.get("statusReason"),
    ]
    detail = "; ".join(dict.fromkeys(str(r) for r in reasons if r))
    exit_code = container.get("exitCode", (last.get("container") or {}).get("exitCode"))
    return RunStatus(
        _STATES.get(job.get("status", ""), "unknown"),  # type: ignore[arg-type]
        detail,
        exit_code=exit_code,
    )


class AwsBatchOrchestrator:
    flavor = "aws_batch"

    def __init__(self, stack: StackRecord, settings: Any) -> None:
        self.stack = stack
        self.settings = settings
        endpoint = settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        kwargs: dict[str, Any] = {"region_name": settings.region}
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        self.batch = boto3.client("batch", **kwargs)
        self.logs_client = boto3.client("logs", **kwargs)

    def check(self) -> None:
        try:
            queues = self.batch.describe_job_queues(jobQueues=[self.settings.job_queue])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise ConfigurationError(
                f"setting 'job_queue': AWS Batch cannot be reached in {self.settings.region} "
                f"({exc}); check the region, the credentials and endpoint_url"
            ) from None
        if not queues.get("jobQueues"):
            raise ConfigurationError(
                f"setting 'job_queue': there is no job queue {self.settings.job_queue!r} in "
                f"{self.settings.region}; create it (kitaru stack provision) or fix "
                "--set job_queue=..."
            )

    def _definition(self, request: SubmitRequest) -> str:
        spec = job_definition(request, self.settings)
        found = self.batch.describe_job_definitions(
            jobDefinitionName=spec["jobDefinitionName"], status="ACTIVE"
        ).get("jobDefinitions", [])
        if found:
            return str(found[0]["jobDefinitionArn"])
        return str(self.batch.register_job_definition(**spec)["jobDefinitionArn"])

    def submit(self, request: SubmitRequest) -> str:
        if request.image is None:
            raise ConfigurationError("the aws_batch orchestrator needs an image")
        arn = self._definition(request)
        return str(self.batch.submit_job(**submit_job(request, self.settings, arn))["jobId"])

    def is_run_of(self, run_id: str, exec_id: str) -> bool:
        # A job id, of a job `submit` named after the execution.
        if not re.fullmatch(r"[0-9a-fA-F-]{36}(:[0-9]+)?", run_id):
            return False
        job = self._describe(run_id)
        return job is not None and job.get("jobName") == submit_job_name(exec_id)

    def _describe(self, run_id: str) -> dict[str, Any] | None:
        jobs = self.batch.describe_jobs(jobs=[run_id]).get("jobs", [])
        return jobs[0] if jobs else None

    def status(self, run_id: str) -> RunStatus:
        job = self._describe(run_id)
        if job is None:
            return RunStatus("missing", "AWS Batch no longer knows the job")
        return job_status(job)

    def logs(self, run_id: str) -> str:
        job = self._describe(run_id)
        stream = (job or {}).get("container", {}).get("logStreamName")
        if not stream:
            return ""
        lines: list[str] = []
        kwargs: dict[str, Any] = {
            "logGroupName": self.settings.log_group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        try:
            while True:
                page = self.logs_client.get_log_events(**kwargs)
                lines += [e["message"] for e in page.get("events", [])]
                token = page.get("nextForwardToken")
                if not page.get("events") or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
        except self.logs_client.exceptions.ResourceNotFoundException:
            return ""
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def cancel(self, run_id: str) -> None:
        self.batch.terminate_job(jobId=run_id, reason="cancelled with kitaru executions cancel")
