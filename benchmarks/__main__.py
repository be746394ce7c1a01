"""`python -m benchmarks`: Kitaru side by side with its peers, in one run.

    python -m benchmarks                  # everything (installs the peers once, ~20 min)
    python -m benchmarks --quick          # smoke run: fewer reps, N <= 100, no slow peers
    python -m benchmarks --systems kitaru,floor --quick --no-chart

Writes results.json, report.md and overhead.png to --out (benchmarks/results for a full
run, benchmarks/.work/quick-results for a quick one) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import _envs, _extras, _report, _workloads
from benchmarks._run import Workdir, progress
from benchmarks._systems import BY_KEY, CANNOT, PRODUCTS, System, select

HERE = Path(__file__).resolve().parent
WORKLOADS = ("overhead", "import", "recovery", "replay", "wait", "extras")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark Kitaru against DBOS, LangGraph, Prefect and Kitaru 0.21 on this machine.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="smoke run: 2 rounds, N up to 100, no slow peers (also BENCH_QUICK=1)",
    )
    p.add_argument(
        "--systems",
        default=os.environ.get("BENCH_SYSTEMS", ""),
        help="comma-separated products (kitaru, dbos, langgraph, prefect, kitaru021, floor) "
        "or system keys (kitaru-fsync, langgraph-sync, ...); default: all",
    )
    p.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help=f"comma-separated workloads to run: {', '.join(WORKLOADS)}; default: all",
    )
    p.add_argument("--rounds", type=int, default=None, help="rounds of the overhead workload")
    p.add_argument("--out", type=Path, default=None, help="where results go")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG chart (needs matplotlib)")
    p.add_argument(
        "--no-install", action="store_true", help="fail instead of installing a missing peer"
    )
    p.add_argument(
        "--report-only",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: summarize a saved results.json again and rewrite its report",
    )
    return p.parse_args(argv)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = 0.0
    try:
        with open("/proc/meminfo") as f:
            mem = int(next(ln for ln in f if ln.startswith("MemTotal")).split()[1]) / 1024**2
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.report_only is not None:
        return report_only(args.report_only, args.no_chart)
    started = time.time()
    settings = _workloads.Settings.make(args.quick, args.rounds)
    names = [n.strip() for n in args.systems.split(",") if n.strip()] or None
    systems = select(names, args.quick)
    only = {w.strip() for w in args.only.split(",") if w.strip()} or set(WORKLOADS)
    if unknown := only - set(WORKLOADS):
        raise SystemExit(f"error: unknown workload(s) {', '.join(sorted(unknown))}")
    products = [p for p in PRODUCTS if any(s.product == p for s in systems)]
    out_dir = args.out or (HERE / ".work" / "quick-results" if args.quick else HERE / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Workdir(Path(os.environ.get("BENCH_WORK", HERE / ".work" / "run")).resolve())

    # Extra suites see to their peers themselves (and report one that is missing).
    for product in products if only - {"extras"} else ():
        _envs.ensure(product, install=not args.no_install)
    chart_python = None
    if not args.no_chart:
        chart_python = _envs.ensure("chart", install=not args.no_install)
    versions = {p: _envs.versions(p) for p in products}

    loads: list[float] = [os.getloadavg()[0]]
    raw: dict[str, Any] = {}
    if "overhead" in only:
        raw["overhead"] = _workloads.overhead(systems, settings, work)
    loads.append(os.getloadavg()[0])
    if "import" in only:
        raw["imports"] = _workloads.imports(products, settings, work)
    if "recovery" in only:
        raw["recovery"] = _workloads.recovery(products, settings, work)
    loads.append(os.getloadavg()[0])
    if "replay" in only:
        raw["replay"] = _workloads.replay(products, settings, work)
    if "wait" in only:
        raw["wait"] = _workloads.wait(
            [p for p in products if "wait" not in CANNOT.get(p, {})], settings, work
        )
    loads.append(os.getloadavg()[0])
    extras = {}
    if "extras" in only:
        extras = _extras.run(
            args.quick, work.root / "extras", products=products, install=not args.no_install
        )

    overhead_loads = [s.get("load", -1) for v in raw.get("overhead", {}).values() for s in v]
    loads += [x for x in overhead_loads if x >= 0]
    command = "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
    results: dict[str, Any] = {
        "finished_at": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
        "duration_s": time.time() - started,
        "command": command.strip(),
        "machine": {**machine(), "load_min": min(loads), "load_max": max(loads)},
        "settings": asdict(settings),
        "versions": versions,
        "systems": [_system_dict(s) for s in systems],
        "products": products,
        "extras": extras,
        "raw": raw,
    }
    # The samples are on disk before anything is computed from them: a bug in the
    # report costs a `--report-only`, not another half hour of measuring.
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    report(results, systems, out_dir, chart_python)
    progress(f"results in {out_dir} ({(time.time() - started) / 60:.1f} min)")
    return 0


def report(
    results: dict[str, Any], systems: list[System], out_dir: Path, chart_python: str | None
) -> None:
    """Summarize the raw samples into results.json, write report.md and the chart, print."""
    raw = results["raw"]
    summary: dict[str, Any] = {
        "products": results["products"],
        "overhead": _report.summarize_overhead(raw.get("overhead", {})),
        "ratios": _report.paired_ratios(raw.get("overhead", {})),
        "imports": _report.summarize_imports(raw.get("imports", {})),
        "recovery": _report.summarize_recovery(raw.get("recovery", {})),
        "replay": _report.summarize_replay(raw.get("replay", {})),
        "wait": _report.summarize_wait(raw.get("wait", {})),
    }
    summary["targets"] = _report.targets(summary, systems)
    results["summary"] = summary
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = _report.markdown(results, systems)
    (out_dir / "report.md").write_text(text)
    if chart_python is not None and summary["overhead"]:
        done = subprocess.run(
            [
                chart_python,
                str(HERE / "_chart.py"),
                str(out_dir / "results.json"),
                str(out_dir / "overhead.png"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            progress(f"chart failed: {done.stderr.strip().splitlines()[-1:]}")
    print()
    print(text)


def report_only(path: Path, no_chart: bool) -> int:
    results = json.loads(path.read_text())
    systems = [BY_KEY[s["key"]] for s in results["systems"]]
    results.setdefault("products", results.get("summary", {}).get("products", []))
    chart_python = None if no_chart else _envs.ensure("chart")
    report(results, systems, path.parent, chart_python)
    return 0


def _system_dict(s: System) -> dict[str, Any]:
    d = asdict(s)
    d["pair"] = s.pair()
    return d


if __name__ == "__main__":
    sys.exit(main())
