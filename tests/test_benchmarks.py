"""The benchmark harness keeps working: its Kitaru side runs end to end in quick mode
(no peers installed), and every workload produces the numbers the report is built from.
This checks that the harness runs and counts correctly, not how fast anything is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def test_kitaru_side_of_the_benchmark_runs_in_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--systems",
            "kitaru",
            "--rounds",
            "1",
            "--only",
            "overhead,import,recovery,replay,wait",
            "--no-chart",
            "--no-install",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env={**_env(), "BENCH_WORK": str(tmp_path / "work")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    results = json.loads((out / "results.json").read_text())
    summary = results["summary"]

    for key in ("kitaru", "kitaru-fsync"):
        row = summary["overhead"][key]
        assert row["errors"] == []
        assert set(row["small"]) == {"10", "100"}
        assert all(cell["median_us"] > 0 for cell in row["small"].values())
        assert row["big"]["10"]["median_us"] > 0
        # a 1 MB output is stored once, not copied around
        assert 1_000_000 <= row["bytes_per_checkpoint"]["big"] < 1_100_000

    for mode in ("kitaru:cli", "kitaru:client"):
        recovery = summary["recovery"][mode]
        assert recovery["steps_rerun"] == [11], recovery  # steps 90..100, nothing before
        assert recovery["first_rerun"] == [90]
        assert recovery["wall_s"] > 0

    assert summary["replay"]["kitaru"]["ns"] == [10, 100]
    assert "per_reused_step_us" in summary["replay"]["kitaru"]
    assert summary["wait"]["kitaru:cli"]["whole_process_s"] > 0
    assert summary["wait"]["kitaru:client"]["in_process_s"] > 0
    assert summary["imports"]["kitaru"]["import_ms"] > 0
    assert {t["target"].split(",")[0] for t in summary["targets"]} >= {
        "per-checkpoint overhead",
        "`import kitaru` (fresh process)",
    }

    report = (out / "report.md").read_text()
    assert "#### Targets" in report
    assert "Kitaru (this repo), fsync" in report
    assert "#### Targets" in done.stdout  # the tables are printed too


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}


def test_fan_out_suite_measures_map_next_to_sequential_calls(tmp_path: Path) -> None:
    from benchmarks import fanout

    section = fanout.bench(quick=True, workdir=tmp_path)
    us = section["data"]["us_per_call"]
    assert set(us) == {"map", "sequential", "bare_threads"}
    assert all(v > 0 for v in us.values())
    assert "`.map(concurrency=16)`" in section["markdown"]


def test_queue_suite_measures_throughput_and_answer_latency_on_both_journals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import queues

    # DBOS asked for, but no venv and no installing: Kitaru's rows all the same.
    monkeypatch.setenv("BENCH_VENVS", str(tmp_path / "no-venvs"))
    section = queues.bench(quick=True, workdir=tmp_path, peers=("dbos",), install=False)
    assert section["data"]["dbos"] == {}
    assert "DBOS: not measured" in section["markdown"]
    journals = section["data"]["journals"]
    assert set(journals) == {"sqlite", "postgres"}  # make test runs PostgreSQL
    for got in journals.values():
        assert got["empty"]["executions_per_s"] > 0 and got["ten"]["executions_per_s"] > 0
        answer = got["answer"]
        assert len(answer["to_claim_s"]) == section["data"]["spec"]["answers"]
        # claimed after the answer, and its next checkpoint after the claim
        assert all(0 < c <= s for c, s in zip(answer["to_claim_s"], answer["to_next_checkpoint_s"]))
    assert "| sqlite |" in section["markdown"] and "| postgres |" in section["markdown"]


def test_otel_suite_measures_every_set_up_against_today(tmp_path: Path) -> None:
    from benchmarks import otel

    section = otel.bench(quick=True, workdir=tmp_path)
    ratios = section["data"]["ratio_to_today"]
    assert set(ratios) == set(otel.SETUPS)
    assert all(r["cpu"] > 0 and r["wall"] > 0 for r in ratios.values())
    assert ratios["today"] == {"cpu": 1.0, "wall": 1.0}
    assert "exporting every span costs" in section["markdown"]


def test_claims_suite_times_a_claim_at_both_depths_on_both_journals(tmp_path: Path) -> None:
    from benchmarks import claims

    section = claims.bench(quick=True, workdir=tmp_path)
    journals = section["data"]["journals"]
    assert set(journals) == {"sqlite", "postgres"}  # make test runs PostgreSQL
    for got in journals.values():
        assert got["shallow_ms"] > 0 and got["deep_ms"] > 0
    assert "| sqlite |" in section["markdown"] and "8,000 queued" in section["markdown"]


def test_feed_suite_times_both_ways_of_telling_the_feed_about_calls(tmp_path: Path) -> None:
    from benchmarks import feed

    section = feed.bench(quick=True, workdir=tmp_path)
    ways = section["data"]["ways"]
    assert set(ways) == {"folded", "an entry per call"}
    for got in ways.values():
        assert got["call_us"] > 0 and got["writer_us"] > 0
    assert section["data"]["ratio"]["call"] > 0
    assert "| folded |" in section["markdown"]


def test_cohort_suite_times_a_replayed_execution(tmp_path: Path) -> None:
    from benchmarks import cohort

    section = cohort.bench(quick=True, workdir=tmp_path)
    data = section["data"]
    assert data["executions"] == 50 and data["same"] == 50
    assert data["replay_ms"] > 0 and data["run_ms"] > 0


@pytest.mark.services
def test_gc_suite_measures_deletions_per_second_on_both_journals(tmp_path: Path) -> None:
    from benchmarks import gc

    section = gc.bench(quick=True, workdir=tmp_path)
    journals = section["data"]["journals"]
    assert set(journals) == {"sqlite", "postgres"}  # make test runs PostgreSQL
    for got in journals.values():
        assert got["deleted"] > 1000 and got["objects"] > 0 and got["executions_per_s"] > 0
    assert "| sqlite |" in section["markdown"] and "2,000 executions" in section["markdown"]


def test_speed_suite_marks_every_goal_met_missed_or_not_measured(tmp_path: Path) -> None:
    from benchmarks import speed

    section = speed.bench(quick=True, workdir=tmp_path, only=["empty", "list"])
    data = section["data"]
    assert data["empty"]["commits"] >= 1 and data["empty"]["ratio"] > 0
    assert data["list"]["whole_s"] > data["list"]["bare_s"] > 0
    goals = {g["target"]: g for g in data["targets"]}
    assert len(goals) == 8
    assert goals["empty execution, in process"]["met"] in (True, False)
    assert goals["replay, per reused step"]["met"] is None  # not run here
    for g in goals.values():
        assert g["met"] is None or g["met"] or g["gap"], g  # a miss says by how much
    assert "| goal | target | measured | met |" in section["markdown"]
