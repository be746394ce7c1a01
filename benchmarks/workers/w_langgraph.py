"""LangGraph with `SqliteSaver` (langgraph-checkpoint-sqlite): WAL journal, SQLite's
default synchronous=FULL, so each checkpoint commit is flushed to disk.

One node that loops through a conditional edge: one super-step, so one checkpoint, per
step. Variant `sync` uses durability="sync" (the checkpoint is committed before the
next step starts: crash-safe like the others); `async` is LangGraph's default (the
checkpoint is written while the next step runs).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from typing import Any, TypedDict

T_START = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

T_IMPORTED = time.perf_counter()

RECOVERY_STEPS, CRASH_AT = 100, 90


class Steps(TypedDict, total=False):
    kind: str
    i: int
    n: int
    last: dict[str, Any]


class Approval(TypedDict, total=False):
    ready: int
    answer: bool


def saver() -> SqliteSaver:
    conn = sqlite3.connect(
        os.path.join(os.environ["BENCH_DATA"], "checkpoints.sqlite"), check_same_thread=False
    )
    return SqliteSaver(conn)


def steps_graph(on_step: Any = None) -> Any:
    def step(state: Steps) -> Steps:
        i = state["i"]
        if on_step is not None:
            on_step(i + 1)
        return {"i": i + 1, "last": _common.payload(state.get("kind", "small"), i)}

    def route(state: Steps) -> str:
        return "step" if state["i"] < state["n"] else END

    g = StateGraph(Steps)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", route, ["step", END])
    return g.compile(checkpointer=saver())


def approval_graph() -> Any:
    def before_wait(state: Approval) -> Approval:
        return {"ready": 1}

    def ask(state: Approval) -> Approval:
        answer = interrupt("go on?")
        _common.write_marker(os.environ["BENCH_MARKER"])
        return {"answer": bool(answer)}

    g = StateGraph(Approval)
    g.add_node("before_wait", before_wait)
    g.add_node("ask", ask)
    g.add_edge(START, "before_wait")
    g.add_edge("before_wait", "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=saver())


def config(thread: str, n: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "recursion_limit": n + 10}


def main() -> None:
    task, spec = _common.args()
    durability = spec.get("durability", "sync")
    if task == "overhead":
        graph = steps_graph()

        def run_one(kind: str, n: int, rid: str) -> None:
            out = graph.invoke(
                {"kind": kind, "i": 0, "n": n}, config(rid, n), durability=durability
            )
            assert out["i"] == n

        _common.result(_common.overhead(run_one, spec, os.environ["BENCH_DATA"]))
    elif task in ("crash", "resume"):
        log = _common.StepLog(os.environ["BENCH_STEPLOG"], os.environ["BENCH_PHASE"])

        def on_step(i: int) -> None:
            log.ran(i)
            if task == "crash" and i == CRASH_AT:
                os._exit(1)

        t0 = time.perf_counter()
        graph = steps_graph(on_step)
        cfg = config(spec["exec_id"], RECOVERY_STEPS)
        if task == "crash":
            graph.invoke({"i": 0, "n": RECOVERY_STEPS}, cfg, durability="sync")
            sys.exit(3)
        # No automatic recovery: the application invokes the thread again with no input.
        out = graph.invoke(None, cfg, durability="sync")
        done = time.perf_counter()
        assert out["i"] == RECOVERY_STEPS, out
        _common.result(
            {
                "import_s": T_IMPORTED - T_START,
                "launch_s": 0.0,
                "recover_to_done_s": done - t0,
                "process_to_done_s": done - T_START,
            }
        )
    elif task == "replay":
        graph = steps_graph()
        out_times: dict[str, list[float]] = {}
        for n in [*spec.get("warmup", []), *spec["ns"]]:
            source = f"replay-src-{n}-{time.time_ns()}"
            graph.invoke({"i": 0, "n": n}, config(source, n), durability="sync")
            times = []
            for _ in range(spec["inner"]):
                t1 = time.perf_counter()
                # The checkpoint taken before the last step: found through the history,
                # as an application would, then invoked from (a fork of the thread).
                target = next(
                    h
                    for h in graph.get_state_history(config(source, n))
                    if h.values.get("i") == n - 1 and h.next
                )
                out = graph.invoke(
                    None, {**target.config, "recursion_limit": n + 10}, durability="sync"
                )
                times.append(time.perf_counter() - t1)
                assert out["i"] == n
            out_times[str(n)] = times
        _common.result({"totals_s": out_times})
    elif task == "wait_start":
        graph = approval_graph()
        out = graph.invoke({}, config(spec["exec_id"], 10), durability="sync")
        assert out.get("__interrupt__"), out
        _common.result({"exec_id": spec["exec_id"]})
    elif task == "wait_answer":
        t0 = time.time()
        graph = approval_graph()
        out = graph.invoke(Command(resume=True), config(spec["exec_id"], 10), durability="sync")
        assert out["answer"] is True, out
        _common.result({"t0": t0, "import_s": T_IMPORTED - T_START})
    else:
        raise SystemExit(f"unknown task {task!r}")


if __name__ == "__main__":
    main()
