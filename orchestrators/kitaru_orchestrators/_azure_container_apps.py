"""`azure_container_apps`: Azure Container Apps jobs (`pip install "kitaru[azure]"`).

One manually triggered job per image (its configuration holds the registry identity and
the Key Vault secret references); each execution starts the job with its own template:
the command, plain environment and the secret-backed variables.

A job execution says only its `properties.status` (Running, Processing, Succeeded,
Failed, Stopped, Degraded, Unknown); why one failed (an image that cannot be pulled, a
replica killed) is in the environment's system logs. With `log_analytics_workspace_id`
set, status details and `logs()` come from the Log Analytics query API (the
`ContainerAppSystemLogs_CL` and `ContainerAppConsoleLogs_CL` tables); without it,
`logs()` says how to read them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.appcontainers import models as m

from kitaru import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks import RunStatus, SubmitRequest
from kitaru_orchestrators._env import split_secrets

CONTAINER = "execution"
LOG_ANALYTICS_ENDPOINT = "https://api.loganalytics.io"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_STATES = {
    "Running": "running",
    "Processing": "pending",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Stopped": "cancelled",
    "Degraded": "failed",
}


def secret_name(var: str) -> str:
    """Container Apps secret names: lowercase letters, digits and '-'."""
    return var.lower().replace("_", "-")


def container_apps_job_name(prefix: str, image: str, secrets: dict[str, str]) -> str:
    key = image + "".join(f"\n{k}={v}" for k, v in sorted(secrets.items()))
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"[:32]


def _env(request: SubmitRequest) -> list[m.EnvironmentVar]:
    env, platform = split_secrets(request)
    out = [m.EnvironmentVar(name=k, value=v) for k, v in sorted(env.items())]
    out += [m.EnvironmentVar(name=k, secret_ref=secret_name(k)) for k in sorted(platform)]
    return out


def job_resource(request: SubmitRequest, settings: Any, registry: str | None) -> m.Job:
    _plain, platform = split_secrets(request)
    identity = settings.identity
    configuration = m.JobConfiguration(
        trigger_type="Manual",
        replica_timeout=settings.replica_timeout_seconds,
        # Retrying is kitaru's job (resume re-submits); a retried replica would run twice.
        replica_retry_limit=0,
        manual_trigger_config=m.JobConfigurationManualTriggerConfig(
            parallelism=1, replica_completion_count=1
        ),
        secrets=[
            m.Secret(name=secret_name(k), key_vault_url=ref.name, identity=identity or "system")
            for k, ref in sorted(platform.items())
        ]
        or None,
        registries=[m.RegistryCredentials(server=registry, identity=identity)]
        if registry and identity
        else None,
    )
    return m.Job(
        location=settings.location,
        tags={"managed-by": "kitaru"},
        identity=m.ManagedServiceIdentity(
            type="UserAssigned", user_assigned_identities={identity: m.UserAssignedIdentity()}
        )
        if identity
        else None,
        properties=m.JobProperties(
            environment_id=settings.environment_id,
            configuration=configuration,
            template=m.JobTemplate(
                containers=[
                    m.Container(
                        name=CONTAINER,
                        image=request.image,
                        command=list(request.command[:3]),
                        resources=m.ContainerResources(cpu=settings.cpu, memory=settings.memory),
                    )
                ]
            ),
        ),
    )


def execution_template(request: SubmitRequest, settings: Any) -> m.JobExecutionTemplate:
    return m.JobExecutionTemplate(
        containers=[
            m.JobExecutionContainer(
                name=CONTAINER,
                image=request.image,
                command=list(request.command[:3]),
                args=list(request.command[3:]),
                env=_env(request),
                resources=m.ContainerResources(cpu=settings.cpu, memory=settings.memory),
            )
        ]
    )


class ContainerAppsOrchestrator:
    flavor = "azure_container_apps"

    def __init__(self, stack: StackRecord, settings: Any) -> None:
        self.stack = stack
        self.settings = settings
        kwargs: dict[str, Any] = {}
        if settings.base_url:
            kwargs["base_url"] = settings.base_url
        if settings.base_url and settings.base_url.startswith("http://"):
            # A local emulator: no Azure token is sent over plain HTTP.
            from azure.core.pipeline.policies import SansIOHTTPPolicy

            kwargs["authentication_policy"] = SansIOHTTPPolicy()
            credential: Any = object()
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self.credential = credential
        self.client = ContainerAppsAPIClient(credential, settings.subscription_id, **kwargs)

    def check(self) -> None:
        env_name = self.settings.environment_id.rstrip("/").rsplit("/", 1)[-1]
        try:
            self.client.managed_environments.get(self.settings.resource_group, env_name)
        except AzureError as exc:
            raise ConfigurationError(
                f"setting 'environment_id': the Container Apps environment {env_name!r} "
                f"cannot be read in resource group {self.settings.resource_group!r} "
                f"({type(exc).__name__}); check the ids and the credentials (az login)"
            ) from None

    def _ensure_job(self, request: SubmitRequest) -> str:
        _plain, platform = split_secrets(request)
        name = container_apps_job_name(
            self.settings.job_prefix, str(request.image), {k: str(v) for k, v in platform.items()}
        )
        try:
            self.client.jobs.get(self.settings.resource_group, name)
        except ResourceNotFoundError:
            registry = self.stack.registry.split("/", 1)[0] if self.stack.registry else None
            self.client.jobs.begin_create_or_update(
                self.settings.resource_group,
                name,
                job_resource(request, self.settings, registry),
            ).result()
        return name

    def submit(self, request: SubmitRequest) -> str:
        if request.image is None:
            raise ConfigurationError("the azure_container_apps orchestrator needs an image")
        job = self._ensure_job(request)
        started = self.client.jobs.begin_start(
            self.settings.resource_group,
            job,
            template=execution_template(request, self.settings),
        ).result()
        return f"{job}/{started.name}"

    def is_run_of(self, run_id: str, exec_id: str) -> bool:
        # An execution of one of this stack's jobs (`submit` makes them per image);
        # plain names only, as they are quoted into Log Analytics queries.
        job, sep, execution = run_id.partition("/")
        return bool(sep and _NAME.fullmatch(job) and _NAME.fullmatch(execution)) and job.startswith(
            f"{self.settings.job_prefix}-"
        )

    def status(self, run_id: str) -> RunStatus:
        job, _, execution = run_id.partition("/")
        try:
            found = self.client.job_execution(self.settings.resource_group, job, execution)
        except ResourceNotFoundError:
            return RunStatus("missing", "Container Apps no longer knows the execution")
        status = str(getattr(found.status, "value", found.status))
        state = _STATES.get(status, "unknown")
        if state == "cancelled":
            return RunStatus("cancelled", "stopped on Container Apps")
        if state != "failed":
            return RunStatus(state)  # type: ignore[arg-type]
        reasons = self._system_reasons(job, execution)
        return RunStatus("failed", "; ".join([f"the execution is {status}", *reasons]))

    def _system_reasons(self, job: str, execution: str) -> list[str]:
        """The environment's warnings about the execution (image pulls, kills)."""
        if not self.settings.log_analytics_workspace_id:
            return []
        if not (_NAME.fullmatch(job) and _NAME.fullmatch(execution)):
            return []
        try:
            rows = self._query(
                "ContainerAppSystemLogs_CL"
                f" | where JobName_s == '{job}' and ExecutionName_s == '{execution}'"
                " and Type_s == 'Warning' | order by TimeGenerated asc | project Reason_s, Log_s"
            )
        except ConfigurationError:
            return []
        return list(dict.fromkeys(f"{reason}: {text}" for reason, text in rows))

    def _query(self, kql: str) -> list[list[Any]]:
        workspace = self.settings.log_analytics_workspace_id
        endpoint = (self.settings.log_analytics_endpoint or LOG_ANALYTICS_ENDPOINT).rstrip("/")
        import requests

        headers = {}
        if not endpoint.startswith("http://"):  # a local emulator gets no token
            token = self.credential.get_token("https://api.loganalytics.io/.default")
            headers["Authorization"] = f"Bearer {token.token}"
        try:
            reply = requests.post(
                f"{endpoint}/v1/workspaces/{workspace}/query",
                json={"query": kql},
                headers=headers,
                timeout=30,
            )
        except requests.RequestException as exc:
            raise ConfigurationError(f"Log Analytics cannot be reached ({exc})") from None
        if reply.status_code >= 400:
            raise ConfigurationError(
                f"setting 'log_analytics_workspace_id': querying workspace {workspace} failed "
                f"(HTTP {reply.status_code}: {reply.text[:200]}); the identity needs the Log "
                "Analytics Reader role on it"
            )
        tables = reply.json().get("tables") or [{}]
        return list(tables[0].get("rows") or [])

    def logs(self, run_id: str) -> str:
        job, _, execution = run_id.partition("/")
        if not self.settings.log_analytics_workspace_id:
            return (
                "Container Apps jobs write their output to the environment's Log Analytics "
                "workspace (--set log_analytics_workspace_id=... reads it from here); read "
                "it with:\n"
                f"  az containerapp job logs show --name {job} --resource-group "
                f"{self.settings.resource_group} --execution {execution} --container "
                f"{CONTAINER}\n"
            )
        if not (_NAME.fullmatch(job) and _NAME.fullmatch(execution)):
            return ""
        rows = self._query(
            "ContainerAppConsoleLogs_CL"
            f" | where ContainerAppName_s == '{job}' and ContainerGroupName_s startswith "
            f"'{execution}-' and ContainerName_s == '{CONTAINER}'"
            " | order by TimeGenerated asc | project Log_s"
        )
        lines = [str(row[0]) for row in rows]
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def cancel(self, run_id: str) -> None:
        job, _, execution = run_id.partition("/")
        try:
            self.client.jobs.begin_stop_execution(
                self.settings.resource_group, job, execution
            ).result()
        except ResourceNotFoundError:
            pass
