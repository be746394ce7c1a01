"""Extra suites folded into the same report, each an optional module of this package.

A suite is a module `benchmarks.<name>` with

    def bench(quick: bool, workdir: pathlib.Path) -> dict[str, Any]

returning at least `title` and `markdown` (a section of the report) and optionally `data`
(anything JSON can hold, kept in the results file); a `bench` that also takes `peers`
and `install` is given the products of the run and whether it may install their venvs.
Or, like `storage_s3`, a
`run(size_mb=..., rounds=...)` that returns `throughput_mb_s` and `ratios`, which is
turned into a section here. A suite that is not there is skipped; one that fails is
reported as failed and does not stop the rest.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._run import progress

SUITES = (
    "storage_s3", "fanout", "adapters", "queues", "claims", "otel", "feed", "cohort", "gc", "speed",
)  # fmt: skip


def run(
    quick: bool,
    workdir: Path,
    only: list[str] | None = None,
    *,
    products: Sequence[str] = (),
    install: bool = True,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SUITES:
        if only is not None and name not in only:
            continue
        module_name = f"benchmarks.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        progress(f"extra suite: {name}")
        try:
            module = importlib.import_module(module_name)
            section = workdir / name
            section.mkdir(parents=True, exist_ok=True)
            if hasattr(module, "bench"):
                takes = inspect.signature(module.bench).parameters
                peers = {"peers": products, "install": install} if "peers" in takes else {}
                out[name] = dict(module.bench(quick, section, **peers))
            else:
                data = module.run(size_mb=10 if quick else 100, rounds=1 if quick else 3)
                out[name] = {"title": _title(name, data), "markdown": _markdown(data), "data": data}
        except Exception as exc:
            progress(f"  {name} failed: {exc}")
            out[name] = {
                "title": f"{name} (failed)",
                "markdown": f"failed: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
    return out


def _title(name: str, data: dict[str, Any]) -> str:
    size = f", {data['size_mb']} MB" if "size_mb" in data else ""
    rounds = f", median of {data['rounds']} rounds" if "rounds" in data else ""
    server = f", {data['server']}" if "server" in data else ""
    return f"{name}: throughput{size}{rounds}{server}"


def _markdown(data: dict[str, Any]) -> str:
    rows = [f"| {k} | {v:,.1f} |" for k, v in data.get("throughput_mb_s", {}).items()]
    parts = ["| method | MB/s |", "|---|---|", *rows]
    ratios = data.get("ratios", {})
    if ratios:
        parts += ["", "| ratio | value |", "|---|---|"]
        parts += [f"| {k} | {v:.0%} |" for k, v in ratios.items()]
    if "meets_target" in data:
        verdict = "meets" if data["meets_target"] else "misses"
        parts += ["", f"Kitaru's store vs boto3 {verdict} the {data.get('target', 0):.0%} target."]
    return "\n".join(parts)
