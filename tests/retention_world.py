"""A journal and store full of executions for the retention tests and benchmark.

`build` writes, in a few bulk transactions, the rows a month of flows leaves: ended and
live executions, old and young, with calls, waits and their answers, logs, feed events,
cache entries, schedule runs and run tokens, and objects in the artifact store; some
executions are replays or cache hits that reuse an older one's objects. `check` lists
the store and reads every table: no row names a missing execution, artifact or object,
and no object is named by no row.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from kitaru._ids import new_id
from kitaru.artifacts import ArtifactStore

DAY = 86400.0
LIVE = ("queued", "running", "waiting")

_EXEC = (
    "exec_id, flow, status, created_at, updated_at, ended_at, flow_ref, stack, orchestrator, "
    "cancel_requested, runs, replayed_from, artifact_store"
)
_CALL = (
    "exec_id, seq, key, name, func, kind, status, started_at, ended_at, run, attempts, "
    "output_artifact, reused_from, out_type_ref, out_serializer, out_hash, out_size, out_uri, "
    "out_inline, out_producer"
)
_ART = (
    "artifact_id, exec_id, name, version, producer, type_ref, serializer, content_hash, size, "
    "uri, inline, created_at"
)
_WAIT = "exec_id, key, name, seq, schema, created_at, status, has_default, value_artifact"


@dataclass
class World:
    old: set[str] = field(default_factory=set)  # ended a month ago: gc takes them
    keep: set[str] = field(default_factory=set)  # young, live, or sources of live replays
    by_flow: dict[str, set[str]] = field(default_factory=dict)
    objects: int = 0


def _marks(cols: str) -> str:
    return ", ".join("?" for _ in cols.split(","))


def build(journal: Any, store: ArtifactStore, n: int, *, every_object: int = 5) -> World:
    """`n` executions; one in `every_object` has a call output in the store, another a
    saved value. About one in 20 is young and one in 25 live; every 25th (from 10)
    replays the one 5 before it (a live replay keeps its source; a young one makes the
    source's objects and answer outlive it), every 40th is a young cache hit of an old
    execution's stored output."""
    now = time.time()
    world = World()
    execs: list[tuple[Any, ...]] = []
    calls: list[tuple[Any, ...]] = []
    arts: list[tuple[Any, ...]] = []
    waits: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    cache: list[tuple[Any, ...]] = []
    runs: list[tuple[Any, ...]] = []
    tokens: list[tuple[Any, ...]] = []
    # Ids carry the time they were made at, as real ones do (orphan sweeps read it).
    ids = [_id_at(_ended(now, i) - 60 + i / 1000) for i in range(n)]
    uris = _write_objects(store, ids, every_object)
    stored: dict[str, str] = {}  # exec_id -> the URI of its call output
    answers: dict[str, str] = {}  # exec_id -> the artifact id of its answer
    for i, eid in enumerate(ids):
        flow = ("review", "summarize", "triage")[i % 3]
        if i % 50 in (7, 35):
            status = LIVE[i % 3]
        else:
            status = ("completed", "completed", "failed", "cancelled")[i % 4]
        young = _young(i)
        ended = _ended(now, i)
        created = ended - 60 + i / 1000
        source = ids[i - 5] if i % 25 == 10 else None
        live = status in LIVE
        execs.append(
            (eid, flow, status, created, ended, None if live else ended, "m:f", "local",
             "local", 0, 1, source, store.uri)
        )  # fmt: skip
        if live or young:
            world.keep.add(eid)
        else:
            world.old.add(eid)
        world.by_flow.setdefault(flow, set()).add(eid)
        uri = None
        if i % every_object == 0 and source is None:
            uri = uris[f"{eid}/ka_{eid[3:]}_2"]
            stored[eid] = uri
        calls.append(_call(eid, 1, "plan", ended, inline=b'"plan"'))
        calls.append(_call(eid, 2, "draft", ended, uri=uri, inline=None if uri else b'"d"'))
        arts.append(
            (new_id("ka"), eid, "topic", 1, "input", "builtins:str", "json", "h", 7, None,
             b'"topic"', created)
        )  # fmt: skip
        if i % every_object == 1:
            aid = f"ka_{eid[3:]}_save"
            uri = uris[f"{eid}/{aid}"]
            arts.append(
                (aid, eid, "notes", 1, "save", "builtins:str", "json", "h", 25000, uri,
                 None, ended)
            )  # fmt: skip
        answer = new_id("ka")
        answers[eid] = answer
        arts.append(
            (answer, eid, "approve", 1, "wait", "builtins:bool", "json", "h", 4, None,
             b"true", ended)
        )  # fmt: skip
        waits.append((eid, "approve", "approve", 3, "{}", ended, "answered", 0, answer))
        logs += [(eid, "plan", 1, ended, "stdout", "planning"), (eid, None, 1, ended, "o", "x")]
        events += [
            (eid, 1, 1, ended, "call", "plan", "plan", None),
            (eid, 2, 1, ended, "e", "x", None, "{}"),
        ]
        cache.append(("src", f"in{i}", ended, eid, 2))
        if i % 50 == 0:
            runs.append(("nightly", float(i), "started", eid, None, "test", ended))
        if i % 30 == 0:
            tokens.append((new_id("tk"), f"run-{eid}", "run", "hash" + eid, created, None, None))
        if source is not None:
            # The replay reuses its source's calls (and objects) and its answer.
            calls[-2] = _call(eid, 1, "plan", ended, inline=b'"plan"', reused_from=source)
            src_uri = stored.get(source)
            calls[-1] = _call(
                eid, 2, "draft", ended, uri=src_uri, inline=None if src_uri else b'"d"',
                reused_from=source,
            )  # fmt: skip
            waits[-1] = (eid, "approve", "approve", 3, "{}", ended, "answered", 0, answers[source])
            if live and source in world.old:
                world.old.discard(source)
                world.keep.add(source)
        if i % 40 == 23:
            # A young cache hit of an old execution's stored output.
            donor = ids[(i // 5) * 5 - 5] if i >= 5 else None
            if donor is not None and donor in stored:
                calls.append(_call(eid, 3, "cached", ended, uri=stored[donor], reused_from=donor))
    world.objects = len(uris)
    with journal._tx() as conn:
        for sql, rows in (
            (f"INSERT INTO executions ({_EXEC}) VALUES ({_marks(_EXEC)})", execs),
            (f"INSERT INTO calls ({_CALL}) VALUES ({_marks(_CALL)})", calls),
            (f"INSERT INTO artifacts ({_ART}) VALUES ({_marks(_ART)})", arts),
            (f"INSERT INTO waits ({_WAIT}) VALUES ({_marks(_WAIT)})", waits),
            ("INSERT INTO logs (exec_id, call_key, run, ts, stream, text) "
             "VALUES (?, ?, ?, ?, ?, ?)", logs),
            ("INSERT INTO events (exec_id, seq, run, ts, kind, name, call_key, data) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", events),
            ("INSERT INTO call_cache (source_hash, input_key, created_at, exec_id, seq) "
             "VALUES (?, ?, ?, ?, ?)", cache),
            ("INSERT INTO schedule_runs (schedule, tick, status, exec_id, error, by, "
             "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", runs),
            ("INSERT INTO api_tokens (token_id, name, scope, token_hash, created_at, "
             "revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)", tokens),
        ):  # fmt: skip
            if rows:
                journal._many(conn, journal._sql(sql), rows)
    return world


def _young(i: int) -> bool:
    return i % 20 == 3 or i % 100 == 60


def _ended(now: float, i: int) -> float:
    return now - (DAY if _young(i) else 40 * DAY)


def _id_at(at: float) -> str:
    return f"kx_{int(at * 1000):012x}{new_id('kx')[-16:]}"


def _write_objects(store: ArtifactStore, ids: list[str], every: int) -> dict[str, str]:
    """The objects `build` names, written 16 at a time: key -> URI."""
    from concurrent.futures import ThreadPoolExecutor

    keys = []
    for i, eid in enumerate(ids):
        if i % every == 0 and i % 25 != 10:  # a replay reuses its source's output
            keys.append((f"{eid}/ka_{eid[3:]}_2", f"output of {eid}".encode() * 2000))
        if i % every == 1:
            keys.append((f"{eid}/ka_{eid[3:]}_save", b"saved" * 5000))
    with ThreadPoolExecutor(16) as pool:
        written = pool.map(lambda kv: store.write(*kv), keys)
        return {key: uri for (key, _data), uri in zip(keys, written, strict=True)}


def _call(
    eid: str,
    seq: int,
    key: str,
    at: float,
    *,
    uri: str | None = None,
    inline: bytes | None = None,
    reused_from: str | None = None,
) -> tuple[Any, ...]:
    owner = reused_from or eid
    size = 8000 * 2 if uri else len(inline or b"")
    return (
        eid, seq, key, key, "m:" + key, "checkpoint", "completed", at, at, 1, 1,
        f"ka_{owner[3:]}_{seq}", reused_from, "builtins:str", "json", "h", size, uri, inline,
        "checkpoint",
    )  # fmt: skip


def ids_in(journal: Any, table: str, column: str = "exec_id") -> set[str]:
    rows = journal._x(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")
    return {str(r[0]) for r in rows.fetchall()}


def check(journal: Any, store: ArtifactStore) -> set[str]:
    """Fail on a dangling record or an orphan object; return the executions left."""
    executions = ids_in(journal, "executions")
    for table in ("calls", "waits", "logs", "events", "artifacts", "call_cache", "schedule_runs"):
        dangling = ids_in(journal, table) - executions
        assert not dangling, f"{table} rows of deleted executions: {sorted(dangling)[:5]}"
    named = ids_in(journal, "calls", "out_uri") | ids_in(journal, "artifacts", "uri")
    keys = set(store.list())
    objects = {store.key_of(u) for u in named}
    missing = objects - keys
    assert not missing, f"rows name missing objects: {sorted(missing)[:5]}"
    orphans = keys - objects
    assert not orphans, f"objects no row names: {sorted(orphans)[:5]}"
    answers = ids_in(journal, "waits", "value_artifact")
    artifacts = ids_in(journal, "artifacts", "artifact_id")
    assert answers <= artifacts, f"answers of missing artifacts: {sorted(answers - artifacts)}"
    # Notes stay only for objects a row still names (looked at again by later sweeps).
    notes = ids_in(journal, "deleted_bytes", "uri")
    assert notes <= named, f"notes of objects no row names: {sorted(notes - named)[:5]}"
    live_runs = journal._x(
        "SELECT name FROM api_tokens WHERE revoked_at IS NULL AND name LIKE 'run-%'"
    ).fetchall()
    assert {r[0][4:] for r in live_runs} <= executions, "run tokens of deleted executions"
    if store.uri.startswith("file://"):
        root = store.uri.removeprefix("file://")
        empty = [d for d, sub, files in os.walk(root) if d != root and not sub and not files]
        assert not empty, f"empty directories left: {empty[:3]}"
    return executions
