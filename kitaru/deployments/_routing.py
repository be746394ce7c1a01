"""Which version a tag sends an invocation to.

A canary tag (`version` at `weight` percent, the rest on `previous_version`) puts each
invocation in one of 100 buckets by a hash of its invocation id, so the split needs no
shared state, and a retried invocation (same id) lands on the same version. The hash
covers the canary version as well: each new canary draws its own share of invocations
instead of the same unlucky ones every release.
"""

from __future__ import annotations

import hashlib

from kitaru.journal import TagRecord


def bucket(flow: str, tag: str, canary_version: int, invocation_id: str) -> int:
    """0-99, uniform over invocation ids."""
    key = f"{flow}\0{tag}\0{canary_version}\0{invocation_id}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 100


def choose_version(tag: TagRecord, invocation_id: str) -> int:
    if tag.weight >= 100 or tag.previous_version is None:
        return tag.version
    if bucket(tag.flow, tag.tag, tag.version, invocation_id) < tag.weight:
        return tag.version
    return tag.previous_version
