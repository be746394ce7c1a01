"""Deployments: immutable, numbered snapshots of a flow, and tags that route invocations.

`flow.deploy()` (or `kitaru deploy module.py:flow`) builds or reuses the locked image of
the flow's project on a stack and records version 1, 2, 3, ... of the flow; a tag
(`default`, `canary`, ...) points at a version, or splits invocations between two by
weight; `flow.invoke()` (or `kitaru deployments invoke FLOW`) runs the version its tag
picks, in that version's image, on its stack. Rolling back is moving a tag back.
"""

from __future__ import annotations

from kitaru.deployments._deploy import (
    DEFAULT_TAG,
    check_tag,
    deploy,
    local_changes,
    signature_of,
    tag_taken,
    who,
)
from kitaru.deployments._invoke import bind, invoke, live_deployment
from kitaru.deployments._routing import bucket, choose_version
from kitaru.deployments._target import load_target
from kitaru.deployments._views import deployment_view, event_view, pointing, tag_view
from kitaru.journal import DeploymentRecord, TagEvent, TagRecord

__all__ = [
    "DEFAULT_TAG",
    "DeploymentRecord",
    "TagEvent",
    "TagRecord",
    "bind",
    "bucket",
    "check_tag",
    "choose_version",
    "deploy",
    "deployment_view",
    "event_view",
    "invoke",
    "live_deployment",
    "load_target",
    "local_changes",
    "pointing",
    "signature_of",
    "tag_taken",
    "tag_view",
    "who",
]
