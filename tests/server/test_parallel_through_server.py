"""A fan-out through a server: calls in branches travel the runner API with their branch,
position and input fingerprint, and a resume after a crash in the fan-out hands every
call its own output."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_script
from tests.server.conftest import Client

FAN_OUT = """
import asyncio, json, os, random, sys
from kitaru import checkpoint, flow


@checkpoint
async def search(q: str) -> str:
    await asyncio.sleep(random.uniform(0, 0.05))
    if os.environ.get("DIE_AT") == q:
        os._exit(9)
    return f"results for {q}"


async def worker(q):
    await asyncio.sleep(random.uniform(0, 0.03))
    return await search(q)


@flow
async def research(n: int) -> dict:
    qs = [f"q{i}" for i in range(n)]
    gathered = await asyncio.gather(*[worker(q) for q in qs])
    mapped = await search.map([q + "!" for q in qs], concurrency=3)
    return {"gathered": dict(zip(qs, gathered)), "mapped": mapped}


if __name__ == "__main__":
    handle = research.run(int(sys.argv[1]))
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""


def test_a_fan_out_killed_through_a_server_resumes_with_each_call_its_own_output(
    client: Client, tmp_path: Path
) -> None:
    script = write_script(tmp_path / "research.py", FAN_OUT)
    crashed = client.python(script, "10", env={"DIE_AT": "q4!"})
    assert crashed.returncode == 9, crashed.stderr
    [execution] = client.cli_json("executions", "list")
    resumed = client.cli_json("executions", "resume", execution["exec_id"])
    assert resumed["status"] == "completed", resumed.get("error")
    result = resumed["result"]
    assert result["gathered"] == {f"q{i}": f"results for q{i}" for i in range(10)}
    assert result["mapped"] == [f"results for q{i}!" for i in range(10)]
    calls = resumed["checkpoints"]
    assert sorted(c["key"] for c in calls) == sorted(f"{i}/search" for i in range(1, 21))
    assert {c["branch"] for c in calls} == {str(i) for i in range(1, 21)}
    # The gather's calls were read back from the journal, not run again.
    gathered = [c for c in calls if int(c["branch"]) <= 10]
    assert {c["origin"] for c in gathered} == {"journal"}
    assert resumed["parallel_groups"]
