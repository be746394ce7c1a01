"""The journal's first schema (migration 1): the tables every later migration builds on.

Written once, like every migration (kitaru/journal/_migrations.py): never edit it, add a
new migration instead.
"""

from __future__ import annotations

FIRST_SCHEMA = """
CREATE TABLE executions (
    exec_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    ended_at {real},
    flow_ref TEXT NOT NULL,
    flow_file TEXT,
    import_path TEXT,
    python TEXT,
    stack TEXT NOT NULL,
    orchestrator TEXT NOT NULL,
    run_id TEXT,
    owner TEXT,
    heartbeat_at {real},
    lease_until {real},
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    replayed_from TEXT,
    replay_point TEXT,
    error TEXT,
    result_artifact TEXT,
    artifact_store TEXT,
    metadata TEXT,
    argv TEXT
);
CREATE INDEX executions_created ON executions (created_at);
CREATE INDEX executions_flow ON executions (flow, created_at);
CREATE INDEX executions_status ON executions (status);
CREATE INDEX executions_replayed_from ON executions (replayed_from);

CREATE TABLE artifacts (
    artifact_id TEXT PRIMARY KEY,
    exec_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    producer TEXT NOT NULL,
    producer_key TEXT,
    type_ref TEXT NOT NULL,
    serializer TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size {bigint} NOT NULL,
    uri TEXT,
    inline {blob},
    created_at {real} NOT NULL,
    metadata TEXT
);
CREATE INDEX artifacts_exec ON artifacts (exec_id, name, version);

CREATE TABLE calls (
    exec_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    func TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at {real} NOT NULL,
    ended_at {real} NOT NULL,
    run INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    output_artifact TEXT,
    error TEXT,
    traceback TEXT,
    reused_from TEXT,
    metadata TEXT,
    out_type_ref TEXT,
    out_serializer TEXT,
    out_hash TEXT,
    out_size {bigint},
    out_uri TEXT,
    out_inline {blob},
    out_producer TEXT,
    PRIMARY KEY (exec_id, seq)
){without_rowid};

CREATE TABLE waits (
    exec_id TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    question TEXT,
    schema TEXT NOT NULL,
    created_at {real} NOT NULL,
    status TEXT NOT NULL,
    timeout_at {real},
    default_value TEXT,
    has_default INTEGER NOT NULL,
    call_site TEXT,
    answered_at {real},
    value_artifact TEXT,
    metadata TEXT,
    PRIMARY KEY (exec_id, key)
){without_rowid};
CREATE INDEX waits_status ON waits (status);

CREATE TABLE logs (
    exec_id TEXT NOT NULL,
    call_key TEXT,
    run INTEGER NOT NULL,
    ts {real} NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX logs_exec ON logs (exec_id, ts);
"""
