"""Caching across executions: `@checkpoint(cache=True)`.

Within an execution a completed call is found by its key. With `cache=True` a call that
its own execution has not made yet is also looked up across executions, in this order:

1. the function's source hash: a digest of its source text (its bytecode where there is
   no source), so any edit to the body misses the cache;
2. the input key: a digest of what `cache_key(*args, **kwargs)` returns, or of the
   arguments themselves (their JSON form, see kitaru/_fingerprint.py). An argument with
   no JSON form (a client object) makes the call uncachable unless `cache_key` is given:
   its type alone cannot tell two values apart;
3. the journal's newest completed call under both digests no older than `cache_ttl`
   (kitaru/journal/_cache.py). Found: the call is committed in this execution as a copy
   of that one (`reused_from` names the source execution, its timeline origin reads
   `cache (kx_...)`) and its body does not run. Not found: the body runs, and once the
   call completes it is remembered for later executions.

Off by default, per checkpoint; `KITARU_CACHE=0` turns it off everywhere (a call then
neither reads nor writes the cache). A checkpoint with `cache=False` pays one attribute
check for all of this. Failed calls are never remembered; pickled outputs are never
handed to another execution (pickle loads only from an execution's own checkpoints).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from hashlib import blake2b
from typing import Any

from kitaru import _runtime
from kitaru._errors import ArtifactCorruptedError, KitaruUsageError
from kitaru._fingerprint import _canonical
from kitaru._logs import LogBuffer
from kitaru.journal._records import given_call

_OFF = ("0", "false", "no", "off")


def enabled() -> bool:
    return os.environ.get("KITARU_CACHE", "").strip().lower() not in _OFF


def ttl_seconds(ttl: float | timedelta | None) -> float | None:
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    if seconds is not None and (isinstance(seconds, bool) or not seconds > 0):
        raise KitaruUsageError(f"cache_ttl must be a number of seconds above 0, not {ttl!r}")
    return seconds


def source_hash(fn: Callable[..., Any]) -> str:
    """A digest of the function's source (its code object's parts where there is none)."""
    import inspect

    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr((code.co_code, code.co_consts, code.co_names)) if code else repr(fn)
    return blake2b(text.encode(), digest_size=16).hexdigest()


def input_key(
    args: tuple[Any, ...], kwargs: dict[str, Any], cache_key: Callable[..., Any] | None
) -> str | None:
    """The digest of a call's inputs; None when they cannot be told apart by value."""
    value: Any = cache_key(*args, **kwargs) if cache_key is not None else [list(args), kwargs]
    text = _canonical(value)
    if cache_key is None and '"$type"' in text:
        return None
    return blake2b(text.encode(), digest_size=16).hexdigest()


class Lookup:
    """One cached call's keys, from its lookup to its remembering."""

    __slots__ = ("input_key", "source_hash")

    def __init__(self, source_hash: str, input_key: str) -> None:
        self.source_hash = source_hash
        self.input_key = input_key


def find(
    call: _runtime.CheckpointRun, spec: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Lookup | None, bool, Any]:
    """(keys to remember the call under, hit, output) for a call its execution has not
    made: on a hit the call is committed here as a copy of the cached one."""
    if not enabled():
        return None, False, None
    key = input_key(args, kwargs, spec.cache_key)
    if key is None:
        return None, False, None
    lookup = Lookup(spec.source_hash(), key)
    ctx = call.ctx
    since = time.time() - spec.cache_ttl if spec.cache_ttl is not None else 0.0
    done = ctx.journal.find_cached_call(lookup.source_hash, key, since=since)
    if done is None or done.output is None or done.output.serializer == "pickle":
        return lookup, False, None
    try:
        value = ctx.load_output(done, spec.return_hint())
    except ArtifactCorruptedError:
        # Its bytes are gone or damaged (retention deleted the source execution between
        # the lookup and this read): a cache is only a shortcut, so run the body.
        return lookup, False, None
    record = given_call(
        exec_id=ctx.exec_id,
        run=ctx.run,
        key=call.key,
        seq=call.seq,
        name=call.name,
        func=call.func,
        kind=spec.kind,
        branch=call.branch.path,
        pos=call.pos,
        fingerprint=call.fingerprint,
        output=done.output,
        metadata={"cache": done.exec_id},
        reused_from=done.exec_id,
        attempts=0,
    )
    ctx.commit(record, done.output, LogBuffer(ctx.exec_id, call.key, ctx.run))
    return None, True, value


def remember(call: _runtime.CheckpointRun, lookup: Lookup | None) -> None:
    """Offer the call, which has just completed, to later executions."""
    if lookup is not None:
        call.ctx.journal.remember_call(
            lookup.source_hash,
            lookup.input_key,
            exec_id=call.ctx.exec_id,
            seq=call.seq,
            now=time.time(),
        )
