"""The systems the benchmark compares, how each is installed, and what each stores how.

A *product* (kitaru, dbos, langgraph, prefect, kitaru021) is installed once; a *system*
is one configuration of a product that gets its own row in the overhead table (for
example LangGraph with durability="sync" and with its default "async").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Exact versions: a result is only comparable with results of the same pins.
PINS: dict[str, list[str]] = {
    "dbos": ["dbos==3.4.0"],
    "langgraph": ["langgraph==1.2.24", "langgraph-checkpoint-sqlite==3.1.2"],
    "prefect": ["prefect==3.9.1"],
    "kitaru021": ["kitaru[local]==0.21.0"],
    "chart": ["matplotlib==3.11.2"],
}

# The distributions whose installed versions the report records.
VERSION_OF: dict[str, list[str]] = {
    "kitaru": ["kitaru"],
    "dbos": ["dbos", "sqlalchemy"],
    "langgraph": ["langgraph", "langgraph-checkpoint-sqlite", "langgraph-checkpoint"],
    "prefect": ["prefect"],
    "kitaru021": ["kitaru", "zenml"],
}

# `import` time: what a user's program imports to use each product.
IMPORTS: dict[str, str] = {
    "python": "pass",
    "kitaru": "import kitaru",
    "dbos": "from dbos import DBOS",
    "langgraph": (
        "from langgraph.graph import StateGraph; from langgraph.checkpoint.sqlite import SqliteSaver"
    ),
    "prefect": "from prefect import flow, task",
    "kitaru021": "import kitaru",
}

LABELS: dict[str, str] = {
    "kitaru": "Kitaru (this repo)",
    "dbos": "DBOS 3.4.0",
    "langgraph": "LangGraph 1.2 + SqliteSaver",
    "prefect": "Prefect 3.9",
    "kitaru021": "Kitaru 0.21 (ZenML)",
    "floor": "floor",
}


@dataclass(frozen=True)
class System:
    """One row of the overhead table."""

    key: str
    product: str
    label: str
    durability: str
    flushes: bool  # every step is flushed to disk before the next one starts
    default: bool  # the product's default configuration
    worker: str
    spec: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    slow: bool = False  # left out of quick mode, and of rounds past `max_rounds`
    max_rounds: int | None = None
    inner: dict[str, int] = field(default_factory=lambda: {"small": 3, "big": 1})
    max_n: dict[str, int] = field(default_factory=dict)  # largest N run, by payload
    budget_s: float | None = None  # longest predicted cell it may run; None = the default

    @property
    def is_kitaru(self) -> bool:
        return self.product == "kitaru"

    @property
    def is_floor(self) -> bool:
        return self.product == "floor"

    def pair(self) -> str:
        """The Kitaru configuration it is compared with like for like."""
        return "kitaru-fsync" if self.flushes else "kitaru"


SYSTEMS: list[System] = [
    System(
        "kitaru",
        "kitaru",
        "Kitaru (this repo), process",
        "SQLite WAL, synchronous=NORMAL; files >16 KB renamed into place, no fsync "
        "(survives a killed process)",
        flushes=False,
        default=True,
        worker="w_kitaru.py",
        env={"KITARU_DURABILITY": "process"},
        inner={"small": 3, "big": 1},
    ),
    System(
        "kitaru-fsync",
        "kitaru",
        "Kitaru (this repo), fsync",
        "SQLite WAL, synchronous=FULL; artifact files and their directory fsync'd "
        "(survives power loss)",
        flushes=True,
        default=False,
        worker="w_kitaru.py",
        env={"KITARU_DURABILITY": "fsync"},
        inner={"small": 3, "big": 1},
    ),
    System(
        "dbos",
        "dbos",
        "DBOS 3.4.0, SQLite",
        "SQLite rollback journal, synchronous=FULL (DBOS sets no journal mode)",
        flushes=True,
        default=True,
        worker="w_dbos.py",
    ),
    System(
        "langgraph-sync",
        "langgraph",
        'LangGraph, durability="sync"',
        "SqliteSaver: WAL, synchronous=FULL; checkpoint committed before the next step",
        flushes=True,
        default=False,
        worker="w_langgraph.py",
        spec={"durability": "sync"},
    ),
    System(
        "langgraph-async",
        "langgraph",
        'LangGraph, durability="async" (default)',
        "SqliteSaver: WAL, synchronous=FULL; checkpoint written while the next step runs",
        flushes=False,
        default=True,
        worker="w_langgraph.py",
        spec={"durability": "async"},
    ),
    System(
        "prefect-persist",
        "prefect",
        "Prefect 3, persist_result=True",
        "temporary API server: SQLite WAL, synchronous=NORMAL; result files, no fsync",
        flushes=False,
        default=False,
        worker="w_prefect.py",
        spec={"variant": "persist"},
        slow=True,
        max_rounds=2,
        inner={"small": 1, "big": 1},
    ),
    System(
        "prefect-default",
        "prefect",
        "Prefect 3, default task (default)",
        "temporary API server: SQLite WAL, synchronous=NORMAL; results not persisted",
        flushes=False,
        default=True,
        worker="w_prefect.py",
        spec={"variant": "default"},
        slow=True,
        max_rounds=1,
        inner={"small": 1, "big": 1},
    ),
    System(
        "kitaru021",
        "kitaru021",
        "Kitaru 0.21 (ZenML), local stack",
        "ZenML SQLite store: rollback journal, synchronous=FULL; local artifact files",
        flushes=True,
        default=True,
        worker="w_kitaru021.py",
        slow=True,
        max_rounds=1,
        inner={"small": 1, "big": 1},
        # about half a second per checkpoint: N=1000 would take 10 minutes per run;
        # N=100 takes a minute or two, and is worth one round
        max_n={"small": 100, "big": 10},
        budget_s=300,
    ),
    System(
        "floor-wal-normal",
        "floor",
        "floor: SQLite WAL insert+commit, NORMAL",
        "one INSERT + COMMIT of the step's JSON per step, WAL, synchronous=NORMAL",
        flushes=False,
        default=True,
        worker="w_floor.py",
        spec={"variant": "sqlite_wal_normal"},
        inner={"small": 3, "big": 1},
    ),
    System(
        "floor-wal-full",
        "floor",
        "floor: SQLite WAL insert+commit, FULL",
        "one INSERT + COMMIT of the step's JSON per step, WAL, synchronous=FULL",
        flushes=True,
        default=True,
        worker="w_floor.py",
        spec={"variant": "sqlite_wal_full"},
        inner={"small": 3, "big": 1},
    ),
    System(
        "floor-append-fsync",
        "floor",
        "floor: append + fsync",
        "append the step's JSON to one file and fsync it",
        flushes=True,
        default=True,
        worker="w_floor.py",
        spec={"variant": "append_fsync"},
        inner={"small": 3, "big": 1},
    ),
]

BY_KEY = {s.key: s for s in SYSTEMS}
PRODUCTS = ["kitaru", "dbos", "langgraph", "prefect", "kitaru021"]
SLOW_PRODUCTS = {"prefect", "kitaru021"}

# What each product can do of the other workloads, and how; None = measured.
CANNOT: dict[str, dict[str, str]] = {
    "prefect": {
        "wait": "a paused run needs its process alive polling the API, and a suspended run "
        "needs a deployment and a worker to resume; not comparable, not measured",
    },
    "kitaru021": {
        "wait": "not measured here; its wait polls for input every 5 s (see the reference "
        "numbers in benchmarks/README.md)",
    },
}


def select(names: list[str] | None, quick: bool) -> list[System]:
    """Systems picked by key or product name; quick mode leaves out the slow peers."""
    if not names:
        chosen = [s for s in SYSTEMS if not (quick and s.slow)]
    else:
        unknown = [
            n for n in names if n not in BY_KEY and n not in PRODUCTS and n not in ("floor",)
        ]
        if unknown:
            known = ", ".join([*PRODUCTS, "floor", *BY_KEY])
            raise SystemExit(f"error: unknown system(s) {', '.join(unknown)}; choose from {known}")
        chosen = [s for s in SYSTEMS if s.key in names or s.product in names]
    return chosen
