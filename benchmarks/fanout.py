"""Fan-out: 1,000 checkpoint calls through `step.map(..., concurrency=16)`.

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart

Reported per call, next to the same 1,000 calls made one after another in the same
process (the sequential per-checkpoint cost) and the same function on a bare thread pool
(what the threads alone cost). The calls do no work of their own, so this is the cost of
the fan-out machinery plus the journal commits, which SQLite serializes: a fan-out pays
off when the calls wait on something (a model, a network), not for empty calls.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmarks._run import call, product_env


def bench(quick: bool, workdir: Path) -> dict[str, Any]:
    spec = {"n": 100 if quick else 1000, "concurrency": 16, "reps": 2 if quick else 7}
    workdir.mkdir(parents=True, exist_ok=True)
    done = call("kitaru", "fanout", spec, product_env("kitaru", workdir), timeout=900)
    samples: dict[str, list[float]] = done.result()
    us = {name: statistics.median(xs) * 1e6 for name, xs in samples.items()}
    rows = [
        f"| `.map(concurrency=16)`, {spec['n']} calls | {us['map']:.1f} |",
        f"| the same calls one after another | {us['sequential']:.1f} |",
        f"| the same function on a bare 16-thread pool (no durability) | {us['bare_threads']:.1f} |",
    ]
    text = "\n".join(
        [
            "| what | µs per call (median) |",
            "|---|---|",
            *rows,
            "",
            f"`.map` / sequential: {us['map'] / us['sequential']:.2f}x.",
        ]
    )
    return {
        "title": f"fan-out: {spec['n']} calls through .map(concurrency=16), median of {spec['reps']}",
        "markdown": text,
        "data": {"spec": spec, "us_per_call": us, "samples_s": samples},
    }
