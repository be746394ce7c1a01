"""Deployments, tags and tag changes as plain JSON-ready dicts: what `--json`, the client
and the server show."""

from __future__ import annotations

from typing import Any

from kitaru._views import iso
from kitaru.journal import DeploymentRecord, TagEvent, TagRecord


def tag_view(t: TagRecord) -> dict[str, Any]:
    return {
        "flow": t.flow,
        "tag": t.tag,
        "version": t.version,
        "weight": t.weight,
        "rest_version": t.previous_version,
        "updated_by": t.updated_by,
        "updated_at": iso(t.updated_at),
    }


def serving(version: int, tags: list[TagRecord]) -> list[dict[str, Any]]:
    """The tags that send invocations to `version`, with the share each sends."""
    out = []
    for t in tags:
        if t.version == version:
            out.append({"tag": t.tag, "weight": t.weight})
        elif t.previous_version == version:
            out.append({"tag": t.tag, "weight": 100 - t.weight})
    return out


def deployment_view(
    d: DeploymentRecord, tags: list[TagRecord], *, detail: bool = False
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "flow": d.flow,
        "version": d.version,
        "image": d.image,
        "digest": d.digest,
        "reused": d.reused,
        "stack": d.stack,
        "orchestrator": d.orchestrator,
        "tags": serving(d.version, tags),
        "created_by": d.created_by,
        "created_at": iso(d.created_at),
        "deleted_at": iso(d.deleted_at),
    }
    if detail:
        view.update(
            content_hash=d.content_hash,
            lock_hash=d.lock_hash,
            source_hash=d.source_hash,
            kitaru_version=d.kitaru_version,
            builder=d.builder,
            flow_ref=d.flow_ref,
            flow_file=d.flow_file,
            project_root=d.project_root,
            signature=d.signature,
            files=len(d.manifest),
            metadata=d.metadata,
        )
    return view


def event_view(e: TagEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "tag": e.tag,
        "action": e.action,
        "version": e.version,
        "weight": e.weight,
        "rest_version": e.previous_version,
        "from_version": e.from_version,
        "from_weight": e.from_weight,
        "from_rest_version": e.from_previous,
        "by": e.by,
        "at": iso(e.at),
    }


def pointing(version: int | None, weight: int | None, rest: int | None) -> str:
    """`3`, or `3 at 10% (rest on 2)` for a canary, or `-` for no version."""
    if version is None:
        return "-"
    if weight is None or weight >= 100 or rest is None:
        return f"version {version}"
    return f"version {version} at {weight}% (rest on {rest})"
