"""What deployments cost: routing an invocation, recording versions and tag moves, and,
with the test services, a deploy that reuses its image, one after a code change, and an
invocation run to completion in the deployed image.

    .venv/bin/python benchmarks/deployments.py [--runs 200] [--docker-runs 3]

- `route`: picking the version of a 10% canary tag for one invocation id.
- `journal record version` / `journal move tag`: `create_deployment` (with its tag) and
  `set_tag`, on SQLite and, with KITARU_TEST_POSTGRES_URL, on PostgreSQL.
- with DOCKER_HOST, KITARU_TEST_REGISTRY, KITARU_TEST_BASE_IMAGE and
  KITARU_TEST_POSTGRES_URL set (`make test`'s services, or source .test-services/*.env):
  `deploy unchanged` - the whole `flow.deploy()` when the image exists (uv lock, export,
  compile, hashes, registry lookup, journal); `deploy after a code change` - the same with
  one changed file (one image layer built and pushed); `invoke to completed` -
  `flow.invoke()` to `completed` in a new container.

Prints a table and writes JSON to benchmarks/results/deployments.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def bench_route(runs: int) -> dict[str, Any]:
    from kitaru.deployments import choose_version
    from kitaru.journal import TagRecord

    tag = TagRecord("agent", "default", 5, 10, 4, "me", 0.0)
    ids = [f"req-{i}" for i in range(runs * 100)]
    t0 = time.perf_counter()
    for i in ids:
        choose_version(tag, i)
    return {"route_us": round((time.perf_counter() - t0) / len(ids) * 1e6, 3)}


def _record(flow: str) -> Any:
    from kitaru.journal import DeploymentRecord

    return DeploymentRecord(
        flow, 0, "registry/repo@sha256:00", "sha256:00", "c", "l", "s", "1", [], "m:f",
        "f.py", ".", "/p", "box", "docker", "docker", True, "me", time.time(),
        manifest={f"file{i}.py": "ab" * 32 for i in range(20)},
    )  # fmt: skip


def bench_journal(url: str, runs: int) -> dict[str, Any]:
    from kitaru.journal import open_journal

    journal = open_journal(url)
    record_s, tag_s = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        version = journal.create_deployment(_record("bench"), tag="default").version
        record_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        journal.set_tag("bench", "canary", version, by="me", now=time.time())
        tag_s.append(time.perf_counter() - t0)
    return {"record_version_ms": _median_ms(record_s), "move_tag_ms": _median_ms(tag_s)}


def _fresh_postgres() -> str | None:
    base = os.environ.get("KITARU_TEST_POSTGRES_URL")
    if not base:
        return None
    import psycopg

    db = "kbd_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    return f"{base.rpartition('/')[0]}/{db}"


def bench_docker(runs: int) -> dict[str, Any] | None:
    names = ("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_BASE_IMAGE")
    journal_url = _fresh_postgres()
    if journal_url is None or not all(os.environ.get(n) for n in names):
        return None
    from kitaru import stacks
    from kitaru.journal import current_journal, reset_for_tests

    os.environ["KITARU_JOURNAL_URL"] = journal_url
    reset_for_tests()
    project = Path(tempfile.mkdtemp(prefix="kitaru-bench-deploy-"))
    for name in ("pyproject.toml", "agent.py"):
        shutil.copy(REPO / "examples" / "deploy_agent" / name, project / name)
    stacks.register(
        current_journal(),
        "bench-deploy",
        orchestrator="docker",
        artifact_store="file:///tmp/kitaru-bench-unused",  # inputs and outputs stay inline
        registry=f"{os.environ['KITARU_TEST_REGISTRY']}/kitaru",
        settings={
            "base_image": os.environ["KITARU_TEST_BASE_IMAGE"],
            "repository": "deploy-agent-bench",
            "remove_containers": True,
        },
        check=False,
    )
    sys.path.insert(0, str(project))
    import agent  # type: ignore[import-not-found]

    support = agent.support
    support.deploy(stack="bench-deploy")  # builds if the image is not there yet
    unchanged_s = []
    for _ in range(runs):
        t0 = time.perf_counter()
        assert support.deploy(stack="bench-deploy").reused
        unchanged_s.append(time.perf_counter() - t0)
    (project / "agent.py").write_text(
        (project / "agent.py").read_text() + f"\n# bench {uuid.uuid4().hex}\n"
    )
    t0 = time.perf_counter()
    changed = support.deploy(stack="bench-deploy", tag=None)
    changed_s = time.perf_counter() - t0
    assert not changed.reused
    invoke_s = []
    for i in range(runs):
        t0 = time.perf_counter()
        handle = support.invoke(f"order {i} is late")
        status = handle.wait(timeout=300)
        invoke_s.append(time.perf_counter() - t0)
        assert status == "completed", status
    return {
        "deploy_unchanged_ms": _median_ms(unchanged_s),
        "deploy_after_code_change_ms": round(changed_s * 1000, 3),
        "invoke_to_completed_ms": _median_ms(invoke_s),
    }


def run(runs: int = 200, docker_runs: int = 3) -> dict[str, Any]:
    os.environ.setdefault("KITARU_HOME", tempfile.mkdtemp(prefix="kitaru-bench-home-"))
    os.environ.pop("KITARU_STACK", None)
    sqlite = f"sqlite:///{tempfile.mkdtemp(prefix='kitaru-bench-journal-')}/journal.db"
    results: dict[str, Any] = {"routing": bench_route(runs)}
    results["sqlite journal"] = bench_journal(sqlite, runs)
    postgres = _fresh_postgres()
    results["postgres journal"] = bench_journal(postgres, runs) if postgres else None
    results["docker"] = bench_docker(docker_runs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--docker-runs", type=int, default=3)
    args = parser.parse_args()
    results = run(args.runs, args.docker_runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "deployments.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<42} median")
    for group, values in results.items():
        if values is None:
            print(f"{group:<42} skipped (its services are not running)")
            continue
        for key, value in values.items():
            print(f"{group + ' ' + key:<42} {value}")


if __name__ == "__main__":
    main()
