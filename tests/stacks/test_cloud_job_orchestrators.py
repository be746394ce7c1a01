"""`gcp_cloud_run` and `azure_container_apps` through their official client libraries
(google-cloud-run over REST, azure-mgmt-appcontainers), pointed at a local HTTP endpoint
that records every request. These tests pin the exact API calls and payloads: a job per
image created once, an execution started with per-execution overrides or template,
status, cancel, secret references passed as platform references. What they do not
exercise: Google or Azure themselves (authentication, IAM, image pulls, the container
actually running) and log retrieval (Cloud Logging / Log Analytics are not called;
`logs()` prints the command that reads them)."""

from __future__ import annotations

from typing import Any

import pytest
from kitaru_orchestrators._azure_container_apps import ContainerAppsOrchestrator
from kitaru_orchestrators._gcp_cloud_run import CloudRunOrchestrator
from kitaru_stacks import AzureContainerAppsSettings, GcpCloudRunSettings

from kitaru._errors import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks import SecretRef, SubmitRequest
from tests.stacks._recorder import Call, Reply, recording

IMAGE = "registry.example/agents/agent@sha256:" + "a" * 64


def _request(monkeypatch: pytest.MonkeyPatch, exec_id: str = "kx_1") -> SubmitRequest:
    monkeypatch.setenv("LOCAL_TOKEN", "from-the-submitting-machine")
    return SubmitRequest(
        exec_id=exec_id,
        flow="agent",
        stack="cloud",
        image=IMAGE,
        command=("python", "-m", "kitaru", "run-execution", exec_id),
        environment={"KITARU_ARTIFACT_STORE": "gs://bucket/runs"},
        secrets={
            "PGPASSWORD": SecretRef.parse("secret:pg-password"),
            "LOCAL_TOKEN": SecretRef.parse("env:LOCAL_TOKEN"),
        },
    )


class FakeCloudRun:
    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}

    def __call__(self, c: Call) -> Reply | None:
        path = c.path.removeprefix("/v2/")
        if c.method == "GET" and path.endswith("/jobs"):
            return 200, {"jobs": list(self.jobs.values())}
        if c.method == "GET" and "/executions/" in path:
            return 200, {"name": path, "runningCount": 1}
        if c.method == "GET" and "/jobs/" in path:
            return (200, self.jobs[path]) if path in self.jobs else None
        if c.method == "POST" and path.endswith("/jobs"):
            name = f"{path}/{c.query['jobId'][0]}"
            self.jobs[name] = {**c.body, "name": name}
            return 200, {
                "name": "projects/p/locations/r/operations/create",
                "done": True,
                "response": {
                    "@type": "type.googleapis.com/google.cloud.run.v2.Job",
                    **self.jobs[name],
                },
            }
        if c.method == "POST" and path.endswith(":run"):
            execution = path.removesuffix(":run") + f"/executions/run-{len(c.body or {})}"
            return 200, {
                "name": "projects/p/locations/r/operations/run",
                "done": False,
                "metadata": {
                    "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
                    "name": execution,
                },
            }
        if c.method == "POST" and path.endswith(":cancel"):
            return 200, {"name": "projects/p/locations/r/operations/cancel", "done": True}
        return None


def test_cloud_run_job_per_image_run_with_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording(FakeCloudRun()) as api:
        settings = GcpCloudRunSettings.model_validate(
            {
                "project": "p",
                "region": "europe-west1",
                "api_endpoint": api.url,
                "service_account": "runner@p.iam.gserviceaccount.com",
                "memory": "4Gi",
            }
        )
        orch = CloudRunOrchestrator(StackRecord("cloud", "gcp_cloud_run", "gs://bucket"), settings)
        orch.check()
        run_id = orch.submit(_request(monkeypatch))
        orch.submit(_request(monkeypatch, "kx_2"))  # same image: the job is reused
        status = orch.status(run_id)
        orch.cancel(run_id)

    # A run id of one of its own jobs; not another project's or another job's.
    assert orch.is_run_of(run_id, "kx_1")
    assert not orch.is_run_of(
        "projects/x/locations/europe-west1/jobs/kitaru-1/executions/e", "kx_1"
    )
    assert not orch.is_run_of(run_id.replace("/jobs/kitaru-", "/jobs/billing-"), "kx_1")
    # Nothing that could leave the quotes of a Cloud Logging filter.
    assert not orch.is_run_of(run_id + '" OR logName:"x', "kx_1")
    parent = "/v2/projects/p/locations/europe-west1"
    job_path = run_id.rsplit("/executions/", 1)[0]
    job_id = job_path.rsplit("/", 1)[1]
    assert job_id.startswith("kitaru-")
    assert api.made() == [
        ("GET", f"{parent}/jobs"),
        ("GET", f"/v2/{job_path}"),
        ("POST", f"{parent}/jobs"),
        ("POST", f"/v2/{job_path}:run"),
        ("GET", f"/v2/{job_path}"),
        ("POST", f"/v2/{job_path}:run"),
        ("GET", f"/v2/{run_id}"),
        ("POST", f"/v2/{run_id}:cancel"),
    ]
    create = api.calls[2]
    assert create.query["jobId"] == [job_id]
    assert create.body == {
        "labels": {"managed-by": "kitaru"},
        "template": {
            "parallelism": 1,
            "taskCount": 1,
            "template": {
                "containers": [
                    {
                        "name": "execution",
                        "image": IMAGE,
                        "command": ["python", "-m", "kitaru"],
                        "env": [
                            {
                                "name": "PGPASSWORD",
                                "valueSource": {
                                    "secretKeyRef": {"secret": "pg-password", "version": "latest"}
                                },
                            }
                        ],
                        "resources": {"limits": {"cpu": "1", "memory": "4Gi"}},
                    }
                ],
                "maxRetries": 0,
                "timeout": "3600s",
                "serviceAccount": "runner@p.iam.gserviceaccount.com",
            },
        },
    }
    assert api.calls[3].body == {
        "overrides": {
            "containerOverrides": [
                {
                    "name": "execution",
                    "args": ["run-execution", "kx_1"],
                    "env": [
                        {"name": "KITARU_ARTIFACT_STORE", "value": "gs://bucket/runs"},
                        {"name": "LOCAL_TOKEN", "value": "from-the-submitting-machine"},
                    ],
                }
            ],
            "taskCount": 1,
        }
    }
    assert api.calls[5].body["overrides"]["containerOverrides"][0]["args"] == [
        "run-execution",
        "kx_2",
    ]
    assert status.state == "running"
    # Without Google credentials, the logs say how to get them, or how to read them.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
    with pytest.raises(ConfigurationError, match="gcloud logging read"):
        orch.logs(run_id)


ENV_ID = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env"
IDENTITY = (
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/kitaru"
)


class FakeArm:
    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}

    def __call__(self, c: Call) -> Reply | None:
        path = c.path
        if c.method == "GET" and "managedEnvironments" in path:
            return 200, {"name": "env", "location": "westeurope", "properties": {}}
        if c.method == "GET" and "/executions/" in path:
            return 200, {"name": path.rsplit("/", 1)[1], "properties": {"status": "Succeeded"}}
        if c.method == "GET" and "/jobs/" in path:
            if path in self.jobs:
                return 200, self.jobs[path]
            return 404, {"error": {"code": "ResourceNotFound", "message": "no such job"}}
        if c.method == "PUT":
            body = dict(c.body)
            body["properties"] = {**body["properties"], "provisioningState": "Succeeded"}
            self.jobs[path] = {**body, "id": path, "name": path.rsplit("/", 1)[1]}
            return 200, self.jobs[path]
        if c.method == "POST" and path.endswith("/start"):
            name = f"exec-{len(self.jobs)}"
            return 200, {"name": name, "id": path.removesuffix("/start") + f"/executions/{name}"}
        if c.method == "POST" and path.endswith("/stop"):
            return 200, {}
        return None


def test_container_apps_job_per_image_started_with_a_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with recording(FakeArm()) as api:
        settings = AzureContainerAppsSettings.model_validate(
            {
                "subscription_id": "sub",
                "resource_group": "rg",
                "environment_id": ENV_ID,
                "location": "westeurope",
                "identity": IDENTITY,
                "base_url": api.url,
            }
        )
        stack = StackRecord(
            "cloud", "azure_container_apps", "az://bucket", registry="kitaru.azurecr.io/agents"
        )
        orch = ContainerAppsOrchestrator(stack, settings)
        orch.check()
        request = _request(monkeypatch)
        request.secrets["PGPASSWORD"] = SecretRef.parse(
            "secret:https://kv.vault.azure.net/secrets/pg"
        )
        run_id = orch.submit(request)
        orch.submit(_request(monkeypatch, "kx_2"))
        status = orch.status(run_id)
        orch.cancel(run_id)

    assert orch.is_run_of(run_id, "kx_1")
    assert not orch.is_run_of("billing-nightly/exec-1", "kx_1")
    assert not orch.is_run_of(run_id.partition("/")[0], "kx_1")
    job, _, execution = run_id.partition("/")
    base = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.App"
    assert api.made() == [
        ("GET", f"{base}/managedEnvironments/env"),
        ("GET", f"{base}/jobs/{job}"),
        ("PUT", f"{base}/jobs/{job}"),
        ("POST", f"{base}/jobs/{job}/start"),
        # the second execution has the same image but another secret: its own job
        ("GET", api.made()[4][1]),
        ("PUT", api.made()[4][1]),
        ("POST", api.made()[4][1] + "/start"),
        ("GET", f"{base}/jobs/{job}/executions/{execution}"),
        ("POST", f"{base}/jobs/{job}/executions/{execution}/stop"),
    ]
    assert all(c.query["api-version"] for c in api.calls)
    put = api.calls[2].body
    assert put["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    assert put["properties"]["environmentId"] == ENV_ID
    assert put["properties"]["configuration"] == {
        "triggerType": "Manual",
        "replicaTimeout": 3600,
        "replicaRetryLimit": 0,
        "manualTriggerConfig": {"parallelism": 1, "replicaCompletionCount": 1},
        "secrets": [
            {
                "name": "pgpassword",
                "keyVaultUrl": "https://kv.vault.azure.net/secrets/pg",
                "identity": IDENTITY,
            }
        ],
        "registries": [{"server": "kitaru.azurecr.io", "identity": IDENTITY}],
    }
    assert api.calls[3].body == {
        "containers": [
            {
                "name": "execution",
                "image": IMAGE,
                "command": ["python", "-m", "kitaru"],
                "args": ["run-execution", "kx_1"],
                "env": [
                    {"name": "KITARU_ARTIFACT_STORE", "value": "gs://bucket/runs"},
                    {"name": "LOCAL_TOKEN", "value": "from-the-submitting-machine"},
                    {"name": "PGPASSWORD", "secretRef": "pgpassword"},
                ],
                "resources": {"cpu": 0.5, "memory": "1Gi"},
            }
        ]
    }
    assert status.state == "succeeded"
    assert "az containerapp job logs show" in orch.logs(run_id)
