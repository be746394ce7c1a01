"""Extra suites folded into the same report, each an optional module of this package.

A suite is a module `benchmarks.<name>` with

    def bench(quick: bool, workdir: pathlib.Path) -> dict[str, Any]

returning at least `title` and `markdown` (a section of the report) and optionally `data`
(anything JSON can hold, kept in the results file). A suite that is not there yet is
skipped; one that fails is reported as failed and does not stop the rest.
"""

from __future__ import annotations

import importlib
import importlib.util
import traceback
from pathlib import Path
from typing import Any

from benchmarks._run import progress

SUITES = ("storage_s3",)


def run(quick: bool, workdir: Path, only: list[str] | None = None) -> dict[str, Any]:
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
            out[name] = dict(module.bench(quick, section))
        except Exception as exc:
            progress(f"  {name} failed: {exc}")
            out[name] = {
                "title": f"{name} (failed)",
                "markdown": f"failed: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
    return out
