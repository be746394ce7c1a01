"""Stacks, settings, deployments and tags over a Kitaru server's API."""

from __future__ import annotations

import dataclasses

from kitaru._codec import from_wire, many, maybe, to_wire
from kitaru.journal._http_requests import HttpBase, _p
from kitaru.journal._records import DeploymentRecord, StackRecord, TagEvent, TagRecord


class DeploymentRequests(HttpBase):
    """Mixed into `HttpJournal`."""

    # stacks and settings
    def put_stack(self, stack: StackRecord, *, replace: bool = False) -> bool:
        body = {"stack": to_wire(stack), "replace": replace}
        return bool(self._put(f"/records/stacks/{_p(stack.name)}", body)["stored"])

    def get_stack(self, name: str) -> StackRecord | None:
        return maybe(StackRecord, self._get(f"/records/stacks/{_p(name)}"))

    def list_stacks(self) -> list[StackRecord]:
        return many(StackRecord, self._get("/records/stacks"))

    def delete_stack(self, name: str) -> bool:
        response = self._conn.request("DELETE", f"/records/stacks/{_p(name)}")
        return bool(response.json()["deleted"])

    def get_setting(self, key: str) -> str | None:
        value: str | None = self._get(f"/records/settings/{_p(key)}")
        return value

    def set_setting(self, key: str, value: str | None) -> None:
        self._put(f"/records/settings/{_p(key)}", {"value": value})

    # deployments and tags
    def create_deployment(
        self, deployment: DeploymentRecord, *, tag: str | None = None
    ) -> DeploymentRecord:
        body = {"deployment": to_wire(deployment), "tag": tag}
        created = self._post("/deployments", body, ok=(201,))
        # The server records who deployed as the token that asked.
        by = str(created.get("created_by") or deployment.created_by)
        return dataclasses.replace(deployment, version=int(created["version"]), created_by=by)

    def get_deployment(self, flow: str, version: int) -> DeploymentRecord | None:
        found = self._get(f"/records/deployments/{_p(flow)}/{_p(version)}")
        return maybe(DeploymentRecord, found)

    def list_deployments(self, flow: str | None = None) -> list[DeploymentRecord]:
        return many(DeploymentRecord, self._get("/records/deployments", {"flow": flow}))

    def delete_deployment(self, flow: str, version: int, *, now: float) -> bool:
        path = f"/records/deployments/{_p(flow)}/{_p(version)}/delete"
        return bool(self._post(path, {"now": now})["deleted"])

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
        body = {"version": version, "weight": weight, "by": by, "now": now}
        return from_wire(
            TagRecord, self._put(f"/records/deployments/{_p(flow)}/tags/{_p(tag)}", body)
        )

    def remove_tag(self, flow: str, tag: str, *, by: str, now: float) -> bool:
        path = f"/records/deployments/{_p(flow)}/tags/{_p(tag)}/remove"
        return bool(self._post(path, {"by": by, "now": now})["removed"])

    def get_tag(self, flow: str, tag: str) -> TagRecord | None:
        return maybe(TagRecord, self._get(f"/records/deployments/{_p(flow)}/tags/{_p(tag)}"))

    def list_tags(self, flow: str) -> list[TagRecord]:
        return many(TagRecord, self._get(f"/records/deployments/{_p(flow)}/tags"))

    def tag_history(self, flow: str) -> list[TagEvent]:
        return many(TagEvent, self._get(f"/records/deployments/{_p(flow)}/history"))
