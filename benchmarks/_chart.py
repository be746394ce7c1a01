"""Draw the overhead-by-N chart from a results file. Runs in the chart environment
(matplotlib), not in Kitaru's: `python _chart.py results.json chart.png`."""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TITLES = {"small": "small output (100-character string)", "big": "1 MB output"}


def main() -> None:
    results = json.load(open(sys.argv[1]))
    overhead = results["summary"]["overhead"]
    labels = {s["key"]: s for s in results["systems"]}
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharey=False)
    # one colour per system, the same in both panels
    colours = {key: plt.cm.tab20(i % 20) for i, key in enumerate(overhead)}
    for ax, (kind, title) in zip(axes, TITLES.items()):
        for key, row in overhead.items():
            pts = sorted(
                (int(n), c["median_us"]) for n, c in row.get(kind, {}).items() if "median_us" in c
            )
            if not pts:
                continue
            system = labels[key]
            style = (
                "-"
                if system["product"] == "kitaru"
                else (":" if system["product"] == "floor" else "--")
            )
            width = 2.8 if system["product"] == "kitaru" else 1.4
            ax.plot(
                [p[0] for p in pts],
                [max(p[1], 0.1) for p in pts],
                style,
                marker="o",
                linewidth=width,
                color=colours[key],
                label=system["label"],
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("checkpoints per run (N)")
        ax.set_ylabel("overhead per checkpoint, µs (median)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(
        f"Per-checkpoint overhead by N ({results['machine']['cpu']}, {results['finished_at']})"
    )
    fig.tight_layout(rect=(0, 0.14, 1, 0.96))
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
