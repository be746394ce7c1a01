"""What stacks cost: choosing the stack on every run, and a run on the docker stack.

    .venv/bin/python benchmarks/stacks.py [--runs 200] [--docker-runs 3]

- `resolve`: finding the active stack (KITARU_STACK, `stack use`, default) for one run,
  with a registered stack active - the work every `flow.run()` adds.
- `local run`: a whole `flow.run()` of a one-checkpoint flow on the local stack.
- with DOCKER_HOST, KITARU_TEST_REGISTRY, KITARU_TEST_BASE_IMAGE and
  KITARU_TEST_POSTGRES_URL set (`make test`'s services, or source .test-services/*.env):
  `image reuse` - the builder deciding an unchanged project needs no build (uv lock,
  export, compile, hash, registry lookup); `docker run` - `flow.run()` to `completed` for
  the example agent in a new container, image reused.

Prints a table and writes JSON to benchmarks/results/stacks.json.
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


def bench_local(runs: int) -> dict[str, Any]:
    import kitaru.journal
    from kitaru import checkpoint, flow, stacks
    from kitaru.journal import current_journal
    from kitaru.stacks._resolve import resolve

    @checkpoint
    def step(i: int) -> int:
        return i + 1

    @flow
    def tiny(i: int) -> int:
        return step(i)

    journal = current_journal()
    stacks.register(journal, "bench", orchestrator="local", artifact_store=_tmp_uri("art"))
    stacks.use(journal, "bench")
    resolve_s = []
    for _ in range(runs):
        t0 = time.perf_counter()
        resolve(journal, None)
        resolve_s.append(time.perf_counter() - t0)
    run_s = []
    for i in range(runs):
        t0 = time.perf_counter()
        tiny.run(i)
        run_s.append(time.perf_counter() - t0)
    kitaru.journal.reset_for_tests()
    return {"resolve_ms": _median_ms(resolve_s), "local_run_ms": _median_ms(run_s)}


def _tmp_uri(name: str) -> str:
    return (Path(tempfile.mkdtemp(prefix=f"kitaru-bench-{name}-"))).as_uri()


def bench_docker(runs: int) -> dict[str, Any] | None:
    names = (
        "DOCKER_HOST",
        "KITARU_TEST_REGISTRY",
        "KITARU_TEST_BASE_IMAGE",
        "KITARU_TEST_POSTGRES_URL",
    )
    if not all(os.environ.get(n) for n in names):
        return None
    import psycopg

    from kitaru import stacks
    from kitaru.journal import current_journal, reset_for_tests
    from kitaru.stacks._contracts import BuildRequest
    from kitaru.stacks._submit import make_builder, runtime_extras

    base = os.environ["KITARU_TEST_POSTGRES_URL"]
    db = "kb_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    os.environ["KITARU_JOURNAL_URL"] = f"{base.rpartition('/')[0]}/{db}"
    reset_for_tests()
    journal = current_journal()
    project = Path(tempfile.mkdtemp(prefix="kitaru-bench-project-"))
    for name in ("pyproject.toml", "agent.py"):
        shutil.copy(REPO / "examples" / "stack_agent" / name, project / name)
    stack = stacks.register(
        journal,
        "bench-docker",
        orchestrator="docker",
        artifact_store="file:///tmp/kitaru-bench-unused",  # the agent's outputs stay inline
        registry=f"{os.environ['KITARU_TEST_REGISTRY']}/kitaru",
        settings={"base_image": os.environ["KITARU_TEST_BASE_IMAGE"]},
        check=False,
    )
    request = BuildRequest(project, f"{stack.registry}/stack-agent", runtime_extras(stack))
    first = make_builder(stack).build(request)  # builds if the image is not there yet
    reuse_s = []
    for _ in range(runs):
        t0 = time.perf_counter()
        built = make_builder(stack).build(request)
        reuse_s.append(time.perf_counter() - t0)
        assert built.reused
    sys.path.insert(0, str(project))
    import agent  # type: ignore[import-not-found]

    agent.agent.stack = "bench-docker"
    run_s = []
    for i in range(runs):
        t0 = time.perf_counter()
        handle = agent.agent.run(f"t{i}", approval=False)
        status = handle.wait(timeout=300)
        run_s.append(time.perf_counter() - t0)
        assert status == "completed", status
    return {
        "first_build_reused": first.reused,
        "image_reuse_check_ms": _median_ms(reuse_s),
        "docker_run_to_completed_ms": _median_ms(run_s),
    }


def run(runs: int = 200, docker_runs: int = 3) -> dict[str, Any]:
    os.environ.setdefault("KITARU_HOME", tempfile.mkdtemp(prefix="kitaru-bench-home-"))
    os.environ.pop("KITARU_STACK", None)
    results: dict[str, Any] = {"local": bench_local(runs)}
    results["docker"] = bench_docker(docker_runs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--docker-runs", type=int, default=3)
    args = parser.parse_args()
    results = run(args.runs, args.docker_runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stacks.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<34} median")
    for group, values in results.items():
        if values is None:
            print(f"{group:<34} skipped (its services are not running)")
            continue
        for key, value in values.items():
            print(f"{group + ' ' + key:<34} {value}")


if __name__ == "__main__":
    main()
