"""The `Journal` protocol over a Kitaru server's API (`KITARU_SERVER_URL`).

Each method is one `POST /api/v1/journal/<method>` with its arguments as JSON; the
server runs the same method on its own journal, under the token's scope. Flows, the
CLI and `KitaruClient` use this like any other journal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    DeploymentRecord,
    ExecutionRecord,
    LogRecord,
    StackRecord,
    TagEvent,
    TagRecord,
    WaitRecord,
)
from kitaru.remote._codec import decode, encode, signature
from kitaru.remote._connection import Connection, connect


class HttpJournal:
    def __init__(self, url: str, connection: Connection | None = None) -> None:
        self.url = url.rstrip("/")
        self._conn = connection or connect(self.url)
        # Fail on a wrong URL or token now, before a flow starts running.
        self._conn.info()

    def _call(self, method: str, **kwargs: Any) -> Any:
        response = self._conn.request(
            "POST", f"/journal/{method}", json={k: encode(v) for k, v in kwargs.items()}
        )
        _params, returns = signature(method)
        return decode(response.json()["result"], returns)

    # executions
    def create_execution(
        self, execution: ExecutionRecord, inputs: Sequence[ArtifactRecord]
    ) -> None:
        self._call("create_execution", execution=execution, inputs=list(inputs))

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        found: ExecutionRecord | None = self._call("get_execution", exec_id=exec_id)
        return found

    def list_executions(
        self,
        *,
        flow: str | None = None,
        status: str | None = None,
        replayed_from: str | None = None,
        limit: int = 100,
    ) -> list[ExecutionRecord]:
        found: list[ExecutionRecord] = self._call(
            "list_executions", flow=flow, status=status, replayed_from=replayed_from, limit=limit
        )
        return found

    def take_lease(
        self,
        exec_id: str,
        *,
        owner: str,
        expected_owner: str | None,
        statuses: Sequence[str],
        now: float,
        lease_until: float,
    ) -> bool:
        return bool(
            self._call(
                "take_lease",
                exec_id=exec_id,
                owner=owner,
                expected_owner=expected_owner,
                statuses=list(statuses),
                now=now,
                lease_until=lease_until,
            )
        )

    def heartbeat(self, exec_id: str, *, owner: str, now: float, lease_until: float) -> bool | None:
        found: bool | None = self._call(
            "heartbeat", exec_id=exec_id, owner=owner, now=now, lease_until=lease_until
        )
        return found

    def finish(
        self,
        exec_id: str,
        *,
        owner: str,
        status: str,
        now: float,
        error: str | None = None,
        result: ArtifactRecord | None = None,
    ) -> bool:
        return bool(
            self._call(
                "finish",
                exec_id=exec_id,
                owner=owner,
                status=status,
                now=now,
                error=error,
                result=result,
            )
        )

    def request_cancel(self, exec_id: str, *, now: float) -> None:
        self._call("request_cancel", exec_id=exec_id, now=now)

    def cancel_idle(self, exec_id: str, *, expected_owner: str | None, now: float) -> bool:
        return bool(
            self._call("cancel_idle", exec_id=exec_id, expected_owner=expected_owner, now=now)
        )

    def set_metadata(self, exec_id: str, metadata: dict[str, object]) -> None:
        self._call("set_metadata", exec_id=exec_id, metadata=metadata)

    def transition(
        self,
        exec_id: str,
        *,
        to: str,
        from_statuses: Sequence[str],
        expected_owner: str | None,
        now: float,
        error: str | None = None,
    ) -> bool:
        done: bool = self._call(
            "transition",
            exec_id=exec_id,
            to=to,
            from_statuses=list(from_statuses),
            expected_owner=expected_owner,
            now=now,
            error=error,
        )
        return done

    def set_run_id(self, exec_id: str, run_id: str, orchestrator: str) -> None:
        self._call("set_run_id", exec_id=exec_id, run_id=run_id, orchestrator=orchestrator)

    # checkpoint calls
    def calls(self, exec_id: str) -> list[CallRecord]:
        found: list[CallRecord] = self._call("calls", exec_id=exec_id)
        return found

    def commit_call(
        self,
        call: CallRecord,
        output: ArtifactRecord | None,
        logs: Sequence[LogRecord],
        *,
        owner: str,
    ) -> bool:
        # The output travels once, as `output`, not again inside the call.
        bare = dataclasses.replace(call, output=None) if call.output is not None else call
        return bool(
            self._call("commit_call", call=bare, output=output, logs=list(logs), owner=owner)
        )

    def copy_calls(self, source: str, target: str, *, before_seq: int) -> int:
        return int(self._call("copy_calls", source=source, target=target, before_seq=before_seq))

    # artifacts
    def put_artifact(self, artifact: ArtifactRecord) -> None:
        self._call("put_artifact", artifact=artifact)

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None:
        found: ArtifactRecord | None = self._call("get_artifact", artifact_id=artifact_id)
        return found

    def list_artifacts(self, exec_id: str, *, producer: str | None = None) -> list[ArtifactRecord]:
        found: list[ArtifactRecord] = self._call(
            "list_artifacts", exec_id=exec_id, producer=producer
        )
        return found

    def find_artifact(self, exec_id: str, name: str) -> ArtifactRecord | None:
        found: ArtifactRecord | None = self._call("find_artifact", exec_id=exec_id, name=name)
        return found

    # waits
    def create_wait(self, wait: WaitRecord, *, owner: str) -> bool:
        return bool(self._call("create_wait", wait=wait, owner=owner))

    def waits(self, exec_id: str) -> list[WaitRecord]:
        found: list[WaitRecord] = self._call("waits", exec_id=exec_id)
        return found

    def pending_waits(self) -> list[WaitRecord]:
        found: list[WaitRecord] = self._call("pending_waits")
        return found

    def answer_wait(self, exec_id: str, key: str, value: ArtifactRecord, *, now: float) -> bool:
        return bool(self._call("answer_wait", exec_id=exec_id, key=key, value=value, now=now))

    def copy_waits(self, source: str, target: str, *, before_seq: int) -> int:
        return int(self._call("copy_waits", source=source, target=target, before_seq=before_seq))

    # logs
    def append_logs(self, logs: Sequence[LogRecord]) -> None:
        self._call("append_logs", logs=list(logs))

    def logs(self, exec_id: str) -> list[LogRecord]:
        found: list[LogRecord] = self._call("logs", exec_id=exec_id)
        return found

    # stacks and settings
    def put_stack(self, stack: StackRecord, *, replace: bool = False) -> bool:
        stored: bool = self._call("put_stack", stack=stack, replace=replace)
        return stored

    def get_stack(self, name: str) -> StackRecord | None:
        found: StackRecord | None = self._call("get_stack", name=name)
        return found

    def list_stacks(self) -> list[StackRecord]:
        found: list[StackRecord] = self._call("list_stacks")
        return found

    def delete_stack(self, name: str) -> bool:
        deleted: bool = self._call("delete_stack", name=name)
        return deleted

    def get_setting(self, key: str) -> str | None:
        value: str | None = self._call("get_setting", key=key)
        return value

    def set_setting(self, key: str, value: str | None) -> None:
        self._call("set_setting", key=key, value=value)

    # deployments and tags
    def create_deployment(
        self, deployment: DeploymentRecord, *, tag: str | None = None
    ) -> DeploymentRecord:
        created: DeploymentRecord = self._call("create_deployment", deployment=deployment, tag=tag)
        return created

    def get_deployment(self, flow: str, version: int) -> DeploymentRecord | None:
        found: DeploymentRecord | None = self._call("get_deployment", flow=flow, version=version)
        return found

    def list_deployments(self, flow: str | None = None) -> list[DeploymentRecord]:
        found: list[DeploymentRecord] = self._call("list_deployments", flow=flow)
        return found

    def delete_deployment(self, flow: str, version: int, *, now: float) -> bool:
        return bool(self._call("delete_deployment", flow=flow, version=version, now=now))

    def set_tag(
        self,
        flow: str,
        tag: str,
        version: int,
        *,
        weight: int | None = None,
        by: str,
        now: float,
    ) -> TagRecord:
        moved: TagRecord = self._call(
            "set_tag", flow=flow, tag=tag, version=version, weight=weight, by=by, now=now
        )
        return moved

    def remove_tag(self, flow: str, tag: str, *, by: str, now: float) -> bool:
        return bool(self._call("remove_tag", flow=flow, tag=tag, by=by, now=now))

    def get_tag(self, flow: str, tag: str) -> TagRecord | None:
        found: TagRecord | None = self._call("get_tag", flow=flow, tag=tag)
        return found

    def list_tags(self, flow: str) -> list[TagRecord]:
        found: list[TagRecord] = self._call("list_tags", flow=flow)
        return found

    def tag_history(self, flow: str) -> list[TagEvent]:
        found: list[TagEvent] = self._call("tag_history", flow=flow)
        return found

    def close(self) -> None:
        """The connection is shared by every journal on this server in the process."""
