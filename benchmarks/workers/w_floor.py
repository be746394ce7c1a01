"""The floor: the least any durable step can cost on this disk, one durable write of the
same bytes per step and nothing else. Standard library only.

Variants: `sqlite_wal_normal` (what Kitaru's default mode commits with),
`sqlite_wal_full` (what its fsync mode commits with), `append_fsync` (append the bytes
to one file and fsync it).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable

import _common


def sqlite_runner(path: str, synchronous: str) -> Callable[[str, int, str], None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(
        "CREATE TABLE steps (run TEXT, step INTEGER, output BLOB, PRIMARY KEY (run, step))"
    )

    def run_one(kind: str, n: int, rid: str) -> None:
        for i in range(n):
            data = json.dumps(_common.payload(kind, i)).encode()
            conn.execute("BEGIN")
            conn.execute("INSERT INTO steps VALUES (?, ?, ?)", (rid, i, data))
            conn.execute("COMMIT")

    return run_one


def append_runner(path: str) -> Callable[[str, int, str], None]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def run_one(kind: str, n: int, rid: str) -> None:
        for i in range(n):
            os.write(fd, json.dumps(_common.payload(kind, i)).encode() + b"\n")
            os.fsync(fd)

    return run_one


def main() -> None:
    task, spec = _common.args()
    if task != "overhead":
        raise SystemExit(f"the floor only measures overhead, not {task!r}")
    data = os.environ["BENCH_DATA"]
    variant = spec["variant"]
    if variant == "sqlite_wal_normal":
        run_one = sqlite_runner(os.path.join(data, "floor.db"), "NORMAL")
    elif variant == "sqlite_wal_full":
        run_one = sqlite_runner(os.path.join(data, "floor.db"), "FULL")
    elif variant == "append_fsync":
        run_one = append_runner(os.path.join(data, "floor.log"))
    else:
        raise SystemExit(f"unknown floor variant {variant!r}")
    _common.result(_common.overhead(run_one, spec, data))


if __name__ == "__main__":
    main()
