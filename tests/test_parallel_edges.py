"""Parallel steps at the edges: the shapes a review found that mixed outputs, re-ran or
lost calls, or failed an unchanged flow on resume. Each kills a real process and resumes
it with the CLI, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kitaru import KitaruClient, checkpoint, flow
from tests.conftest import kitaru_cli, run_python, write_script


def crash_and_resume(tmp_path: Path, source: str, *args: str, **env: str) -> dict[str, Any]:
    """Run a flow script that dies (os._exit) partway, resume it, return the execution."""
    script = write_script(tmp_path / "flow.py", source)
    crashed = run_python(script, *args, env=env)
    assert crashed.returncode == 9, crashed
    [execution] = KitaruClient().executions.list()
    resumed = kitaru_cli("executions", "resume", execution.exec_id, "--json")
    assert resumed.returncode == 0, resumed
    view: dict[str, Any] = resumed.json()
    assert view["status"] == "completed", view.get("error")
    return view


def test_as_completed_keys_follow_the_callers_order_not_a_sets(tmp_path: Path) -> None:
    view = crash_and_resume(
        tmp_path,
        """
        import asyncio, os, sys
        from kitaru import checkpoint, flow

        class Doc:  # no JSON form: only the key can tell two calls apart
            def __init__(self, name): self.name = name

        @checkpoint
        async def summarize(doc: Doc) -> str:
            if doc.name == "d7" and os.environ.get("DIE"):
                await asyncio.sleep(0.3)  # the others commit first
                os._exit(9)
            return f"summary of {doc.name}"

        async def work(doc):
            return doc.name, await summarize(doc)

        @flow
        async def digest() -> dict:
            out = {}
            for fut in asyncio.as_completed([work(Doc(f"d{i}")) for i in range(8)]):
                name, summary = await fut
                out[name] = summary
            return out

        if __name__ == "__main__":
            digest.run()
        """,
        DIE="1",
    )
    assert view["result"] == {f"d{i}": f"summary of d{i}" for i in range(8)}


def test_threads_a_pool_starts_for_itself_take_no_branch(tmp_path: Path) -> None:
    view = crash_and_resume(
        tmp_path,
        """
        import asyncio, os, time
        import anyio, anyio.to_thread
        from kitaru import checkpoint, flow

        class Q:
            def __init__(self, q): self.q = q

        @checkpoint
        def load(q: str) -> str:
            time.sleep(0.2)  # slow the first time, read back at once on resume
            return f"loaded {q}"

        @checkpoint
        async def search(q: Q) -> str:
            return f"result for {q.q}"

        @checkpoint
        def finish(found: dict) -> dict:
            if os.environ.get("DIE"):
                os._exit(9)
            return found

        @flow
        async def research() -> dict:
            found = {}

            async def item(q, delay):
                await asyncio.sleep(delay)
                found[q] = await anyio.to_thread.run_sync(load, q)  # may start a worker
                found[q + "/s"] = await asyncio.create_task(search(Q(q)))
            async with anyio.create_task_group() as tg:
                tg.start_soon(item, "a", 0)
                tg.start_soon(item, "b", 0.1)
            return finish(dict(sorted(found.items())))

        if __name__ == "__main__":
            research.run()
        """,
        DIE="1",
    )
    assert view["result"]["b/s"] == "result for b" and view["result"]["a/s"] == "result for a"
    keys = sorted(c["key"] for c in view["checkpoints"])
    # (An async checkpoint takes its key when called, in the item's own branch.)
    assert keys == ["1/load", "1/search", "2/load", "2/search", "finish"], keys


def test_asyncio_imported_inside_the_flow_still_gives_tasks_branches(tmp_path: Path) -> None:
    view = crash_and_resume(
        tmp_path,
        """
        import os
        from kitaru import checkpoint, flow

        @checkpoint
        def search(q: str) -> str:
            if q == "q3" and os.environ.get("DIE"):
                os._exit(9)
            return f"result for {q}"

        @flow
        def research() -> list:
            import asyncio  # first imported here, after the execution started

            async def one(q, delay):
                await asyncio.sleep(delay)
                return search(q)

            async def main():
                return await asyncio.gather(*[one(f"q{i}", (5 - i) * 0.02) for i in range(5)])

            return asyncio.run(main())

        if __name__ == "__main__":
            research.run()
        """,
        DIE="1",
    )
    assert view["result"] == [f"result for q{i}" for i in range(5)]
    assert sorted(c["key"] for c in view["checkpoints"]) == [f"{i}/search" for i in range(1, 6)]


def test_arguments_of_a_scripts_own_class_and_model_sets_resume_unchanged(
    tmp_path: Path,
) -> None:
    view = crash_and_resume(
        tmp_path,
        """
        import os
        from pydantic import BaseModel
        from kitaru import checkpoint, flow

        class Client:
            def __init__(self, url): self.url = url

        class Query(BaseModel):
            tags: set[str]

        @checkpoint
        def fetch(client: Client, query: Query) -> str:
            return ",".join(sorted(query.tags))

        @checkpoint
        def boom() -> None:
            if os.environ.get("DIE"):
                os._exit(9)

        @flow
        def job() -> str:
            out = fetch(Client("http://x"), Query(tags={"a", "b", "c", "d", "e", "f"}))
            boom()
            return out

        if __name__ == "__main__":
            job.run()
        """,
        DIE="1",
        PYTHONHASHSEED="1",
    )
    # The resume ran with another hash seed and loaded the script as __kitaru_main__.
    assert view["result"] == "a,b,c,d,e,f"


def test_a_with_id_call_started_on_a_race_takes_no_position(tmp_path: Path) -> None:
    view = crash_and_resume(
        tmp_path,
        """
        import asyncio, os
        from kitaru import checkpoint, flow

        @checkpoint
        async def fallback(topic: str) -> str:
            return f"fallback for {topic}"

        @checkpoint
        async def final(text: str) -> str:
            if os.environ.get("DIE"):
                os._exit(9)
            return text.upper()

        @flow
        async def job(topic: str) -> str:
            fast = asyncio.create_task(asyncio.sleep(0.05 if os.environ.get("DIE") else 0))
            slow = asyncio.create_task(asyncio.sleep(0.02 if os.environ.get("DIE") else 1))
            done, pending = await asyncio.wait({fast, slow}, return_when="FIRST_COMPLETED")
            for p in pending:
                p.cancel()
            text = topic
            if slow in done:  # the race went this way in the first run only
                text = await fallback.with_id(f"fallback-{topic}")(topic)
            return await final(text)

        if __name__ == "__main__":
            job.run("owls")
        """,
        DIE="1",
    )
    # The race went the other way on resume: no fallback, and no determinism error.
    assert view["result"] == "OWLS"


def test_a_replay_from_a_call_reuses_only_the_calls_that_started_before_it(
    tmp_path: Path,
) -> None:
    view = crash_and_resume(
        tmp_path,
        """
        import asyncio, os
        from kitaru import checkpoint, flow

        @checkpoint
        async def prep() -> str:
            await asyncio.sleep(0.2)  # slow when it runs, instant when read back
            return "prepared"

        @checkpoint
        async def background(i: int) -> str:
            await asyncio.sleep(1.0)  # still running when the first run dies
            return f"bg {i}"

        @checkpoint
        async def draft(topic: str) -> str:
            return f"draft about {topic}"

        @checkpoint
        async def polish(text: str) -> str:
            if os.environ.get("DIE"):
                os._exit(9)
            return f"polished({text})"

        async def bg(i):
            await asyncio.sleep(0.05)
            return await background(i)

        @flow
        async def job(topic: str) -> dict:
            tasks = [asyncio.create_task(bg(i)) for i in range(2)]
            await prep()
            final = await polish(await draft(topic))  # polish depends on draft
            return {"final": final, "bg": [await t for t in tasks]}

        if __name__ == "__main__":
            job.run("owls")
        """,
        DIE="1",
    )
    seq = {c["key"]: c["position"] for c in view["checkpoints"]}
    assert seq["draft"] < seq["polish"], seq
    replayed = kitaru_cli(
        "executions", "replay", view["exec_id"], "--from", "draft",
        "--override", 'draft="draft about bats"', "--json",
    )  # fmt: skip
    assert replayed.returncode == 0, replayed
    assert replayed.json()["result"]["final"] == "polished(draft about bats)"


def test_nested_submits_do_not_wait_for_a_free_worker(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "agents.py",
        """
        import kitaru
        from kitaru import checkpoint, flow

        @checkpoint
        def tool(i: int) -> int:
            return i * 2

        def agent(i: int) -> int:
            return kitaru.submit(tool, i).result()  # a submitted call that submits more

        @flow
        def team(n: int) -> int:
            return sum(f.result() for f in [kitaru.submit(agent, i) for i in range(n)])

        if __name__ == "__main__":
            print(team.run(40).result())
        """,
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == str(sum(2 * i for i in range(40)))


def test_every_wait_of_a_fan_out_is_asked_at_once_and_a_bare_name_is_refused(
    tmp_path: Path,
) -> None:
    import kitaru

    @checkpoint
    def draft(d: str) -> str:
        return f"draft of {d}"

    def review(d: str) -> str:
        ok = kitaru.wait("approve", schema=bool, question=f"publish {draft(d)}?")
        return f"{d}: {'published' if ok else 'dropped'}"

    @flow
    def job() -> list[str]:
        return kitaru.map(review, ["a", "b", "c"])

    handle = job.run()
    assert handle.status == "waiting"
    waits = KitaruClient().executions.get(handle.exec_id).waits
    assert sorted(w["key"] for w in waits if w["status"] == "pending") == [
        "1/approve", "2/approve", "3/approve",
    ]  # fmt: skip
    bare = kitaru_cli("executions", "input", handle.exec_id, "approve", "true")
    assert bare.returncode == 2 and "give the wait's key, e.g. 1/approve" in bare.stderr


def test_parallel_saves_of_one_name_get_one_version_each() -> None:
    import kitaru

    @checkpoint
    def work(i: int) -> int:
        kitaru.save("progress", {"item": i})
        return i

    @flow
    def job() -> list[int]:
        return work.map(range(20), concurrency=8)

    handle = job.run()
    assert handle.result() == list(range(20))
    notes = [a for a in KitaruClient().artifacts.list(handle.exec_id) if a.name == "progress"]
    assert sorted(a.version for a in notes) == list(range(1, 21))


def test_what_an_abandoned_attempt_logs_later_is_not_the_calls() -> None:
    import time

    import kitaru

    attempts: list[int] = []

    @checkpoint(timeout=0.2, retries=1)
    def answer() -> str:
        attempts.append(1)
        me = len(attempts)
        if me == 1:
            time.sleep(0.3)  # past the timeout: abandoned, wakes while attempt 2 runs
            print("attempt 1 finished late")
            kitaru.log(source="attempt 1", answer="stale")
            return "stale"
        time.sleep(0.15)
        kitaru.log(source="attempt 2")
        return "fresh"

    @flow
    def ask() -> str:
        return answer()

    handle = ask.run()
    assert handle.result() == "fresh"
    [call] = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert call["metadata"] == {"source": "attempt 2"}
    logs = kitaru_cli("executions", "logs", handle.exec_id).stdout
    assert "finished late" not in logs


def test_a_retried_flow_keeps_every_row_when_the_failed_attempts_thread_goes_on(
    tmp_path: Path,
) -> None:
    import threading
    import time

    failed_once: list[int] = []

    @checkpoint
    def bg(i: int) -> str:
        return f"bg {i}"

    @checkpoint
    def step(i: int) -> str:
        return f"step {i}"

    @checkpoint
    def flaky() -> str:
        if not failed_once:
            failed_once.append(1)
            raise RuntimeError("transient")
        return "ok"

    def background() -> None:
        for i in range(6):
            time.sleep(0.05)
            try:
                bg(i)
            except Exception:
                return  # its run ended: it may make no more calls

    @flow(retries=1)
    def job() -> list[str]:
        t = threading.Thread(target=background)
        t.start()
        flaky()
        out = [step(i) for i in range(6) if not time.sleep(0.05)]
        t.join()
        return out

    handle = job.run()
    assert handle.result() == [f"step {i}" for i in range(6)]
    keys = [c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints]
    assert len(keys) == len(set(keys))
    assert {f"step#{i}" for i in range(2, 7)} | {"step", "flaky"} <= set(keys)
    assert json.dumps(keys)  # every row readable
