"""From raw samples to medians, paired ratios, targets, and the markdown report."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks._systems import BY_KEY, CANNOT, LABELS, System

KINDS = {"small": "small output (dict with a 100-character string)", "big": "1 MB output"}


def _med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _ok(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in samples if "error" not in s and "unsupported" not in s]


# -- summaries ------------------------------------------------------------------------------


def summarize_overhead(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, samples in raw.items():
        good = _ok(samples)
        row: dict[str, Any] = {
            "rounds": len(good),
            "errors": [s["error"] for s in samples if "error" in s],
        }
        for kind in KINDS:
            cells: dict[str, Any] = {}
            ns = sorted({int(n) for s in good for n in s["cells"].get(kind, {})})
            for n in ns:
                per = [
                    c["per_step_us"]
                    for s in good
                    if "per_step_us" in (c := s["cells"].get(kind, {}).get(str(n), {}))
                ]
                skipped = [
                    c["skipped"]
                    for s in good
                    if "skipped" in (c := s["cells"].get(kind, {}).get(str(n), {}))
                ]
                if per:
                    cells[str(n)] = {
                        "median_us": statistics.median(per),
                        "min_us": min(per),
                        "samples": len(per),
                    }
                elif skipped:
                    cells[str(n)] = {"skipped": skipped[0]}
            row[kind] = cells
        row["bytes_per_checkpoint"] = {
            kind: _med(
                [s["bytes_per_checkpoint"][kind] for s in good if kind in s["bytes_per_checkpoint"]]
            )
            for kind in KINDS
        }
        row["peak_rss_mb"] = {
            kind: _med([s["peak_rss_mb"][kind] for s in good if kind in s["peak_rss_mb"]])
            for kind in KINDS
        }
        out[key] = row
    return out


def paired_ratios(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Kitaru ÷ peer per round (the same round ran both within minutes of each other),
    then the median of those ratios. Below 1 means Kitaru is faster."""
    out: dict[str, Any] = {}
    for key, samples in raw.items():
        system = BY_KEY[key]
        if system.is_kitaru:
            continue
        for pair in dict.fromkeys([system.pair(), "kitaru"]):
            mine = {s["round"]: s for s in _ok(raw.get(pair, []))}
            if not mine:
                continue
            res: dict[str, Any] = {}
            for kind in KINDS:
                by_n: dict[str, list[float]] = {}
                for s in _ok(samples):
                    k = mine.get(s["round"])
                    if k is None:
                        continue
                    for n, cell in s["cells"].get(kind, {}).items():
                        kc = k["cells"].get(kind, {}).get(n, {})
                        if (
                            "per_step_us" in cell
                            and "per_step_us" in kc
                            and cell["per_step_us"] > 0
                        ):
                            by_n.setdefault(n, []).append(kc["per_step_us"] / cell["per_step_us"])
                res[kind] = {
                    n: {
                        "median": statistics.median(v),
                        "min": min(v),
                        "max": max(v),
                        "pairs": len(v),
                    }
                    for n, v in sorted(by_n.items(), key=lambda kv: int(kv[0]))
                }
            out.setdefault(key, {})[pair] = res
    return out


def summarize_imports(raw: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    return {
        p: {
            "import_ms": statistics.median(s["import_s"] for s in v) * 1e3,
            "import_ms_min": min(s["import_s"] for s in v) * 1e3,
            "process_ms": statistics.median(s["wall_s"] for s in v) * 1e3,
            "samples": len(v),
        }
        for p, v in raw.items()
        if v
    }


def summarize_recovery(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, samples in raw.items():
        good = _ok(samples)
        row: dict[str, Any] = {"samples": len(good)}
        unsupported = [s["unsupported"] for s in samples if "unsupported" in s]
        if unsupported:
            row["unsupported"] = unsupported[0]
        errors = [s["error"] for s in samples if "error" in s]
        if errors:
            row["errors"] = errors
        for field in ("wall_s", "recover_to_done_s", "process_to_done_s", "import_s"):
            vals = [s[field] for s in good if field in s]
            if vals:
                row[field] = statistics.median(vals)
                row[field + "_min"] = min(vals)
        row["steps_rerun"] = sorted({s["steps_rerun"] for s in good})
        row["first_rerun"] = sorted({s["first_rerun"] for s in good if s["first_rerun"]})
        out[key] = row
    return out


def summarize_replay(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for product, samples in raw.items():
        good = _ok(samples)
        if not good:
            out[product] = {"errors": [s.get("error") for s in samples]}
            continue
        slopes, totals = [], []
        ns = sorted(int(n) for n in good[0]["totals_s"])
        lo, hi = str(ns[0]), str(ns[-1])
        for s in good:
            t_lo = statistics.median(s["totals_s"][lo])
            t_hi = statistics.median(s["totals_s"][hi])
            slopes.append((t_hi - t_lo) / (int(hi) - int(lo)) * 1e6)
            totals.append(t_hi)
        out[product] = {
            "ns": ns,
            "per_reused_step_us": statistics.median(slopes),
            "per_reused_step_us_min": min(slopes),
            "replay_total_s": statistics.median(totals),
            "samples": len(good),
        }
    return out


def summarize_wait(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, samples in raw.items():
        good = _ok(samples)
        row: dict[str, Any] = {"samples": len(good)}
        for field in ("whole_process_s", "in_process_s", "command_wall_s"):
            vals = [s[field] for s in good if field in s]
            if vals:
                row[field] = statistics.median(vals)
                row[field + "_min"] = min(vals)
        errors = [s["error"] for s in samples if "error" in s]
        if errors:
            row["errors"] = errors
        out[key] = row
    return out


def _cell(summary: dict[str, Any], key: str, kind: str, n: str) -> float | None:
    cell = summary.get("overhead", {}).get(key, {}).get(kind, {}).get(n, {})
    value = cell.get("median_us")
    return float(value) if value is not None else None


def target_row(
    name: str,
    goal: str,
    value: float | None,
    limit: float,
    unit: str,
    *,
    lower: bool = True,
    digits: int = 1,
) -> dict[str, Any]:
    """One goal against what a run measured: met or not, and a miss says by how much
    (`lower`: the goal is a ceiling, else a floor)."""
    if value is None:
        return {"target": name, "goal": goal, "measured": "not measured", "met": None}
    met = value <= limit if lower else value >= limit
    gap = (
        ""
        if met
        else (
            f"{value / limit:.{digits}f}x over" if lower else f"{limit / value:.{digits}f}x short"
        )
    )
    return {
        "target": name,
        "goal": goal,
        "measured": f"{value:,.{digits}f} {unit}",
        "met": met,
        "gap": gap,
    }


def targets(summary: dict[str, Any], systems: list[System]) -> list[dict[str, Any]]:
    """The issue's targets against what this run measured; a missed one says by how much."""
    rows: list[dict[str, Any]] = []

    def add(
        name: str, goal: str, value: float | None, limit: float, unit: str, lower: bool = True
    ) -> None:
        rows.append(target_row(name, goal, value, limit, unit, lower=lower, digits=1))

    n = str(
        max(
            (int(k) for k in summary.get("overhead", {}).get("kitaru", {}).get("small", {})),
            default=0,
        )
    )
    ours = _cell(summary, "kitaru", "small", n)
    add(f"per-checkpoint overhead, N={n}, default durability", "<= 50 µs", ours, 50, "µs")
    peers = [
        s for s in systems if not s.is_kitaru and not s.is_floor and s.key != "prefect-default"
    ]
    best = min(
        ((v, s) for s in peers if (v := _cell(summary, s.key, "small", n)) is not None),
        default=None,
        key=lambda vs: vs[0],
    )
    if best is not None and ours:
        add(
            f"better than the best peer at N={n} ({best[1].label}, {best[0]:,.0f} µs)",
            ">= 10x",
            best[0] / ours,
            10,
            "x",
            lower=False,
        )
    fsync_ours = _cell(summary, "kitaru-fsync", "small", n)
    best_flush = min(
        (
            (v, s)
            for s in peers
            if s.flushes and (v := _cell(summary, s.key, "small", n)) is not None
        ),
        default=None,
        key=lambda vs: vs[0],
    )
    if best_flush is not None and fsync_ours:
        add(
            f"like for like, fsync: better than the best flushing peer ({best_flush[1].label})",
            ">= 10x",
            best_flush[0] / fsync_ours,
            10,
            "x",
            lower=False,
        )
    imp = summary.get("imports", {}).get("kitaru", {}).get("import_ms")
    add("`import kitaru` (fresh process)", "<= 100 ms", imp, 100, "ms")
    rec = summary.get("recovery", {}).get("kitaru:cli", {}).get("wall_s")
    add(
        "recovery, 100 steps killed in 90, whole process (CLI resume)",
        "<= 0.3 s",
        rec,
        0.3,
        "s",
    )
    rep = summary.get("replay", {}).get("kitaru", {}).get("per_reused_step_us")
    add("replay: cost per reused step", "<= 10 µs", rep, 10, "µs")
    w = summary.get("wait", {}).get("kitaru:cli", {}).get("whole_process_s")
    add("wait -> `executions input` -> running again (CLI)", "<= 0.5 s", w, 0.5, "s")
    return rows


# -- rendering ------------------------------------------------------------------------------


def _us(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def overhead_tables(summary: dict[str, Any], systems: list[System]) -> str:
    parts = []
    for kind, title in KINDS.items():
        ns = sorted(
            {int(n) for s in systems for n in summary["overhead"].get(s.key, {}).get(kind, {})}
        )
        rows = []
        for s in systems:
            row = summary["overhead"].get(s.key)
            if row is None:
                continue
            cells = []
            for n in ns:
                c = row.get(kind, {}).get(str(n))
                if c is None:
                    cells.append("-")
                elif "skipped" in c:
                    cells.append("skipped")
                else:
                    cells.append(f"{_us(c['median_us'])} ({_us(c['min_us'])})")
            rows.append([s.label, "yes" if s.flushes else "no", *cells, str(row["rounds"])])
        parts.append(
            f"#### Per-checkpoint overhead, {title}: median µs per step (min)\n\n"
            + _table(["system", "flushed per step", *[f"N={n}" for n in ns], "runs"], rows)
        )
    return "\n\n".join(parts)


def ratio_table(summary: dict[str, Any], systems: list[System]) -> str:
    rows = []
    for s in systems:
        pairs = summary["ratios"].get(s.key, {})
        for pair, res in pairs.items():
            cells = []
            for kind in KINDS:
                for n, r in res.get(kind, {}).items():
                    cells.append(f"{kind} N={n}: {r['median']:.3g}")
            if cells:
                rows.append([s.label, BY_KEY[pair].label, "; ".join(cells)])
    return (
        "#### Kitaru ÷ peer, per-checkpoint overhead, paired run by run (median; < 1 = Kitaru faster)\n\n"
        + _table(["peer", "compared with", "ratio"], rows)
    )


def storage_table(summary: dict[str, Any], systems: list[System]) -> str:
    rows = []
    for s in systems:
        row = summary["overhead"].get(s.key)
        if row is None:
            continue
        b, m = row["bytes_per_checkpoint"], row["peak_rss_mb"]
        rows.append(
            [
                s.label,
                f"{b['small']:,.0f}" if b.get("small") is not None else "-",
                f"{b['big']:,.0f}" if b.get("big") is not None else "-",
                f"{m['small']:.0f}" if m.get("small") is not None else "-",
                f"{m['big']:.0f}" if m.get("big") is not None else "-",
            ]
        )
    return (
        "#### Bytes stored per checkpoint, and peak RSS (MB, process and its helpers)\n\n"
        + _table(
            [
                "system",
                "bytes/ckpt small",
                "bytes/ckpt 1 MB",
                "peak RSS small",
                "peak RSS after 1 MB",
            ],
            rows,
        )
    )


def other_tables(summary: dict[str, Any]) -> str:
    parts = []
    imps = summary.get("imports", {})
    if imps:
        parts.append(
            "#### `import` time, fresh process (median of in-process import; min; whole process)\n\n"
            + _table(
                ["product", "import ms", "min ms", "process ms"],
                [
                    [
                        LABELS.get(p, p),
                        f"{v['import_ms']:.0f}",
                        f"{v['import_ms_min']:.0f}",
                        f"{v['process_ms']:.0f}",
                    ]
                    for p, v in imps.items()
                ],
            )
        )
    rec = summary.get("recovery", {})
    if rec:
        rows = []
        for key, v in rec.items():
            product, mode = key.split(":")
            if "unsupported" in v:
                rows.append(
                    [LABELS[product], mode, "unsupported: " + v["unsupported"][:200], "-", "-"]
                )
                continue
            if "wall_s" not in v:
                rows.append([LABELS[product], mode, "failed", "-", "-"])
                continue
            rows.append(
                [
                    LABELS[product],
                    mode,
                    f"{v['wall_s']:.2f} (min {v['wall_s_min']:.2f})",
                    f"{v['recover_to_done_s']:.3f}" if "recover_to_done_s" in v else "-",
                    f"{v['steps_rerun']} from step {v['first_rerun']}",
                ]
            )
        parts.append(
            "#### Recovery: 100-step run killed with os._exit in step 90 (seconds)\n\n"
            + _table(["product", "how", "whole process s", "in-process s", "steps re-run"], rows)
        )
    rep = summary.get("replay", {})
    if rep:
        rows = []
        for p, v in rep.items():
            if "per_reused_step_us" not in v:
                rows.append([LABELS[p], "failed", "-", "-"])
                continue
            per_step = (
                f"{_us(v['per_reused_step_us'])} (min {_us(v['per_reused_step_us_min'])})"
                if v["per_reused_step_us"] > 0
                # a replay's fixed cost varies more than N reused steps cost in total
                else f"not resolvable: fixed cost dominates ({_us(v['per_reused_step_us'])})"
            )
            rows.append(
                [
                    LABELS[p],
                    per_step,
                    f"{v['replay_total_s']:.3f}",
                    f"{v['ns'][0]} -> {v['ns'][-1]}",
                ]
            )
        parts.append(
            "#### Replay from the last step: cost per reused step (slope between two N)\n\n"
            + _table(["product", "µs per reused step", "replay total s at largest N", "N"], rows)
        )
    wt = summary.get("wait", {})
    if wt:
        rows = []
        for key, v in wt.items():
            product, mode = key.split(":")
            rows.append(
                [
                    LABELS[product],
                    mode,
                    f"{v['whole_process_s']:.3f}" if "whole_process_s" in v else "failed",
                    f"{v['in_process_s']:.3f}" if "in_process_s" in v else "-",
                ]
            )
        for product, why in CANNOT.items():
            if "wait" in why and product in summary.get("products", []):
                rows.append([LABELS[product], "-", why["wait"], "-"])
        parts.append(
            "#### Wait -> input -> running again (seconds, median)\n\n"
            + _table(["product", "how", "from sending (new process)", "from the send call"], rows)
        )
    return "\n\n".join(parts)


def target_table(rows: list[dict[str, Any]]) -> str:
    return "#### Targets\n\n" + _table(
        ["target", "goal", "measured", "met"],
        [
            [
                r["target"],
                r["goal"],
                r["measured"],
                "n/a" if r["met"] is None else ("yes" if r["met"] else f"**no** ({r['gap']})"),
            ]
            for r in rows
        ],
    )


def durability_table(systems: list[System]) -> str:
    return "#### Systems and durability settings\n\n" + _table(
        ["system", "stores with", "flushed per step", "product default"],
        [
            [s.label, s.durability, "yes" if s.flushes else "no", "yes" if s.default else "no"]
            for s in systems
        ],
    )


def markdown(results: dict[str, Any], systems: list[System]) -> str:
    s = results["summary"]
    m = results["machine"]
    head = [
        f"### Benchmark results ({'quick' if results['settings']['quick'] else 'full'} run, {results['finished_at']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']:.0f} GB, {m['os']}, Python {m['python']}. "
        f"Load average during the run: {m['load_min']:.1f} to {m['load_max']:.1f}. "
        f"Command: `{results['command']}` ({results['duration_s'] / 60:.1f} min).",
        "",
        "Versions: "
        + "; ".join(
            f"{p}: " + ", ".join(f"{d} {v}" for d, v in vs.items())
            for p, vs in results["versions"].items()
        ),
    ]
    body = [
        target_table(s["targets"]),
        overhead_tables(s, systems),
        ratio_table(s, systems),
        storage_table(s, systems),
        other_tables(s),
        durability_table(systems),
    ]
    for name, extra in results.get("extras", {}).items():
        body.append(f"#### {extra.get('title', name)}\n\n{extra.get('markdown', '')}")
    notes = [
        f"- {BY_KEY[k].label}: {e}" for k, row in s["overhead"].items() for e in row["errors"][:1]
    ]
    if notes:
        body.append("#### Failures\n\n" + "\n".join(n.splitlines()[0] for n in notes))
    return "\n".join(head) + "\n\n" + "\n\n".join(body) + "\n"
