"""Versioned schema of the SQL journals.

Each migration is written once, with `{blob}`, `{real}` and `{bigint}` standing for the
column types that differ between SQLite and PostgreSQL, and `{without_rowid}` for SQLite's
clustered tables (one b-tree per table instead of two: fewer pages written per commit). A journal records the
version it is at in `kitaru_schema`; opening it applies the migrations after that
version in one transaction. Never edit a released migration: add a new one.
"""

from __future__ import annotations

from kitaru.journal._first_schema import FIRST_SCHEMA

MIGRATIONS: list[tuple[int, str]] = [
    (1, FIRST_SCHEMA),
    (
        2,
        # The server's API tokens (only a hash of each is kept) and its secrets (the key
        # that signs webhook URLs), in the journal so that every server replica sharing
        # it accepts the same tokens and signatures.
        """
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at {real} NOT NULL,
    revoked_at {real},
    last_used_at {real}
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at {real} NOT NULL
);
""",
    ),
    (
        3,
        # Stacks (where executions run) live in the journal, so every process that shares
        # the journal sees the same stacks; `settings` holds the active stack. An
        # execution submitted to a container records the project root it was started
        # from: inside the image the project sits elsewhere, and the flow's file and
        # import path are found again relative to that root.
        """
CREATE TABLE stacks (
    name TEXT PRIMARY KEY,
    orchestrator TEXT NOT NULL,
    artifact_store TEXT NOT NULL,
    journal TEXT,
    registry TEXT,
    builder TEXT,
    settings TEXT,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

ALTER TABLE executions ADD COLUMN project_root TEXT;
""",
    ),
    (
        4,
        # Deployments: immutable, numbered snapshots of a flow (its image by digest) and
        # the tags that route invocations to them, with every tag change kept in a
        # history. A deleted version keeps its row (`deleted_at`) so that its number is
        # never given out again. An execution records the deployment version it ran.
        """
CREATE TABLE deployments (
    flow TEXT NOT NULL,
    version INTEGER NOT NULL,
    image TEXT NOT NULL,
    digest TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    lock_hash TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    kitaru_version TEXT NOT NULL,
    signature TEXT NOT NULL,
    flow_ref TEXT NOT NULL,
    flow_file TEXT,
    import_path TEXT,
    project_root TEXT NOT NULL,
    stack TEXT NOT NULL,
    orchestrator TEXT NOT NULL,
    builder TEXT NOT NULL,
    reused INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at {real} NOT NULL,
    deleted_at {real},
    manifest TEXT,
    metadata TEXT,
    PRIMARY KEY (flow, version)
);

CREATE TABLE deployment_tags (
    flow TEXT NOT NULL,
    tag TEXT NOT NULL,
    version INTEGER NOT NULL,
    weight INTEGER NOT NULL,
    previous_version INTEGER,
    updated_by TEXT NOT NULL,
    updated_at {real} NOT NULL,
    PRIMARY KEY (flow, tag)
);

CREATE TABLE deployment_tag_history (
    flow TEXT NOT NULL,
    seq INTEGER NOT NULL,
    tag TEXT NOT NULL,
    action TEXT NOT NULL,
    version INTEGER,
    weight INTEGER,
    previous_version INTEGER,
    from_version INTEGER,
    from_weight INTEGER,
    from_previous INTEGER,
    by TEXT NOT NULL,
    at {real} NOT NULL,
    PRIMARY KEY (flow, seq)
);

ALTER TABLE executions ADD COLUMN deployment_version INTEGER;
ALTER TABLE executions ADD COLUMN invocation_id TEXT;
CREATE INDEX executions_invocation ON executions (invocation_id);
""",
    ),
    (
        5,
        # Checkpoint calls made in parallel: the branch a call was made in and its position
        # there (keys no longer follow arrival order), and a digest of its inputs that a
        # resume compares before handing the stored output back. Rows written before keep
        # NULLs: the flow body, at position `seq`, with no fingerprint to compare.
        """
ALTER TABLE calls ADD COLUMN branch TEXT;
ALTER TABLE calls ADD COLUMN pos INTEGER;
ALTER TABLE calls ADD COLUMN fingerprint TEXT;
""",
    ),
    (
        6,
        # Workers and queues: the queue an execution waits in (NULL: the `default` queue)
        # and its priority, the worker that claimed it last and when (the start rate
        # limit counts claims), each queue's limits, and the workers serving queues.
        """
ALTER TABLE executions ADD COLUMN queue TEXT;
ALTER TABLE executions ADD COLUMN priority INTEGER;
ALTER TABLE executions ADD COLUMN worker TEXT;
ALTER TABLE executions ADD COLUMN claimed_at {real};
CREATE INDEX executions_claimed ON executions (claimed_at);

CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate_per_minute INTEGER,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL
);

CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    flows TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    running INTEGER NOT NULL,
    started_at {real} NOT NULL,
    seen_at {real} NOT NULL,
    stopped_at {real}
);
""",
    ),
    (
        7,
        # The live feed of an execution (kitaru/_events.py): events a flow emits, calls as
        # they start and end, output as it is printed, waits. `seq` counts one
        # execution's entries in the order they were stored, so a reader that saw entry N
        # (an SSE client's Last-Event-ID) reads on from N + 1 and misses none.
        """
CREATE TABLE events (
    exec_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    run INTEGER NOT NULL,
    ts {real} NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    call_key TEXT,
    data TEXT,
    PRIMARY KEY (exec_id, seq)
){without_rowid};
""",
    ),
    (
        # 8 is another branch's (retention, idempotent starts); a journal may go 7 -> 9.
        9,
        # Caching across executions (kitaru/_cache.py): a row per completed call of a
        # checkpoint with `cache=True`, found by its function's source hash and its input
        # key. Schedules (kitaru/_schedules.py): each schedule and its next tick, and a row
        # per (schedule, tick) that the scheduler claims in the transaction that starts the
        # tick's execution, so two schedulers never start one tick twice.
        """
CREATE TABLE call_cache (
    source_hash TEXT NOT NULL,
    input_key TEXT NOT NULL,
    created_at {real} NOT NULL,
    exec_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (source_hash, input_key, created_at, exec_id, seq)
){without_rowid};

CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    target TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    args TEXT NOT NULL,
    catchup TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_tick {real} NOT NULL,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL
);

CREATE TABLE schedule_runs (
    schedule TEXT NOT NULL,
    tick {real} NOT NULL,
    status TEXT NOT NULL,
    exec_id TEXT,
    error TEXT,
    by TEXT,
    created_at {real} NOT NULL,
    PRIMARY KEY (schedule, tick)
);
CREATE INDEX schedule_runs_exec ON schedule_runs (exec_id);
""",
    ),
    (
        10,
        # What a worker's claim reads: the ready executions of one queue in the order they
        # are taken (kitaru/journal/_queues.py), so a claim reads the head of its queue
        # instead of every queued row (75-110 ms each with 100,000 queued).
        """
CREATE INDEX executions_ready ON executions
    ((COALESCE(queue, 'default')), (COALESCE(priority, 0)) DESC, updated_at, exec_id)
    WHERE status = 'queued' AND run_id IS NULL AND cancel_requested = 0 AND owner IS NULL;
""",
    ),
    (
        11,
        # Idempotent starts (kitaru/_idempotency.py): the key a start was given, unique per
        # flow, so that two starts with one key store one execution whatever the race. Key
        # first: a start looks a key up across flows (a key reused for another flow is
        # refused). Executions started without a key keep NULL, which the index leaves out.
        """
ALTER TABLE executions ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX executions_idempotency ON executions (idempotency_key, flow)
    WHERE idempotency_key IS NOT NULL;
""",
    ),
    (
        12,
        # Retention (kitaru/journal/_retention.py): deleting executions notes the artifact
        # objects their rows named in `deleted_bytes`, in the transaction that deletes the
        # rows; the objects go afterwards, each only once no row names it any more (a
        # replay's copied calls and inputs, a cache hit's call name their source's
        # objects). The two indexes answer "does any row still name this object?".
        """
CREATE TABLE deleted_bytes (
    uri TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    deleted_at {real} NOT NULL
);
CREATE INDEX calls_out_uri ON calls (out_uri) WHERE out_uri IS NOT NULL;
CREATE INDEX artifacts_uri ON artifacts (uri) WHERE uri IS NOT NULL;
""",
    ),
    (
        13,
        # A deployment's tick is `starting` from its claim until its invocation says how
        # it went; every scheduler pass looks for ticks left `starting` by a scheduler
        # that died (kitaru/_schedules.py), without reading the whole history.
        """
CREATE INDEX schedule_runs_starting ON schedule_runs (created_at) WHERE status = 'starting';
""",
    ),
    (
        14,
        # Every new execution wrote an entry in each of these indexes, though most
        # executions are no replay, no invocation and no queued claim: the column is NULL,
        # and nothing looks executions up by a NULL there (each lookup compares the
        # column, which the planner knows to mean NOT NULL). Partial, they cost a start
        # three index pages fewer per commit (an empty `flow.run` about 10% less).
        """
DROP INDEX executions_replayed_from;
CREATE INDEX executions_replayed_from ON executions (replayed_from)
    WHERE replayed_from IS NOT NULL;
DROP INDEX executions_invocation;
CREATE INDEX executions_invocation ON executions (invocation_id)
    WHERE invocation_id IS NOT NULL;
DROP INDEX executions_claimed;
CREATE INDEX executions_claimed ON executions (claimed_at) WHERE claimed_at IS NOT NULL;
""",
    ),
]

LATEST = MIGRATIONS[-1][0]


def statements(sql: str, types: dict[str, str]) -> list[str]:
    """Split a migration into statements with the dialect's column types filled in."""
    return [s.strip() for s in sql.format(**types).split(";") if s.strip()]
