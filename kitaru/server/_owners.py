"""Lease owners as the server shows them: a capability nobody can read off an answer.

An owner token (`host:pid:start:nonce`, kitaru/_lease.py) is what a running process
presents to commit its calls, beat and finish. The server never hands one out: every
execution it returns carries the owner with its nonce replaced by a keyed digest
(`host:pid:start:~<digest>`), which still tells where and whether it runs, and which a
resumer may present as the `expected_owner` of a compare-and-swap (take the lease,
queue, cancel) but never as an `owner`: committing needs the real token, which only
the process that made it knows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from kitaru.journal import ExecutionRecord

MARK = "~"


def mask(secret: bytes, owner: str | None) -> str | None:
    if owner is None:
        return None
    digest = hmac.new(secret, f"owner\n{owner}".encode(), hashlib.sha256).hexdigest()[:16]
    head, sep, _nonce = owner.rpartition(":")
    return f"{head}{sep}{MARK}{digest}"


def masked(secret: bytes, record: ExecutionRecord) -> ExecutionRecord:
    if record.owner is None:
        return record
    return dataclasses.replace(record, owner=mask(secret, record.owner))


def expected(secret: bytes, given: str | None, current: str | None) -> str | None:
    """The real owner a compare-and-swap should expect: `current` when `given` is its
    masked form (or itself), else `given` (which will not match)."""
    if given is not None and current is not None and given == mask(secret, current):
        return current
    return given
