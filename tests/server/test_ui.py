"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real
server on PostgreSQL. Screenshots are kept under test-artifacts/ui/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, write_script
from tests.server import flows
from tests.server.conftest import Client
from tests.server_process import ServerProcess

SHOTS = REPO / "test-artifacts" / "ui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = os.environ.get("KITARU_TEST_CHROMIUM")
    if not chromium:
        pytest.fail(
            "KITARU_TEST_CHROMIUM is not set: run the tests with `make test` (or "
            "`bash scripts/services/chromium.sh up` and source .test-services/chromium.env)"
        )
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sign_in(page: Any, server: ServerProcess, token: str, then: str = "/ui/executions") -> None:
    page.goto(server.url + then)
    assert "/ui/login" in page.url
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}*")


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def reload_until(page: Any, predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the page never showed the expected state"
        time.sleep(0.3)
        page.reload()


def states(page: Any) -> dict[str, str]:
    rows = page.locator("#timeline tbody tr[data-key]")
    return {
        rows.nth(i).get_attribute("data-key"): rows.nth(i).get_attribute("data-state")
        for i in range(rows.count())
    }


@pytest.fixture(scope="module")
def executions(
    server: ServerProcess, write_token: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A completed review, a replay of it waiting, a triage waiting for a form, a failure."""
    folder = tmp_path_factory.mktemp("ui")
    client = Client(server, write_token, folder / "home")
    review = write_script(folder / "review.py", flows.REVIEW)
    source = client.start(review, "llamas")["exec_id"]
    client.cli_json("executions", "input", source, "approve", "true")
    replay = client.cli_json(
        "executions", "replay", source, "--from", "draft", "--override", 'draft="A NEW DRAFT"'
    )["exec_id"]
    triage = client.start(write_script(folder / "triage.py", flows.FORM), "one two three")
    failing = client.start(write_script(folder / "ingest.py", flows.FAILING))
    return {
        "source": source,
        "replay": replay,
        "triage": triage["exec_id"],
        "failed": failing["exec_id"],
        "home": str(folder / "home"),
    }


def continue_where_the_code_is(page: Any, client: Client, exec_id: str) -> None:
    """The server runs no flow code: an answered local execution shows as ready, with the
    command that continues it, which its owner runs where the code lives."""
    reload_until(page, lambda: page.locator("#status").inner_text() == "queued")
    assert f"kitaru executions resume {exec_id}" in page.locator("#ready").inner_text()
    resumed = client.cli("executions", "resume", exec_id)
    assert resumed.returncode == 0, resumed.stderr


def test_sign_in_list_and_filter(
    page: Any, server: ServerProcess, write_token: str, executions: dict[str, str]
) -> None:
    page.goto(server.url + "/ui/executions")
    assert "/ui/login" in page.url
    shot(page, "01-login")
    page.fill("#token", "kt_0000_wrong")
    page.click("button[type=submit]")
    assert "not valid" in page.locator(".error").inner_text()
    page.fill("#token", write_token)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/executions")
    listed = page.locator("#executions tbody tr")
    assert listed.count() >= 4
    shot(page, "02-executions")

    page.select_option("select[name=status]", "waiting")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**status=waiting*")
    statuses = {listed.nth(i).get_attribute("data-status") for i in range(listed.count())}
    assert statuses == {"waiting"}
    page.select_option("select[name=status]", "")
    page.select_option("select[name=flow]", "ingest")
    page.click(".filters button[type=submit]")
    assert page.locator("#executions tbody tr").count() == 1
    assert page.locator("#executions tbody tr").get_attribute("data-status") == "failed"


def test_execution_page_timeline_logs_artifacts_lineage_and_diff(
    page: Any, server: ServerProcess, write_token: str, executions: dict[str, str]
) -> None:
    sign_in(page, server, write_token, f"/ui/executions/{executions['source']}")
    assert page.locator("#status").inner_text() == "completed"
    assert states(page) == {
        "research": "reused",
        "draft": "reused",
        "approve": "answered",
        "publish": "ran",
    }
    assert "ms" in page.locator("#timeline tr[data-key=publish] td.num").inner_text() or (
        "µs" in page.locator("#timeline tr[data-key=publish] td.num").inner_text()
    )
    assert "researching llamas" in page.locator("pre.logs").first.inner_text()
    assert "notes on llamas" in page.locator("#artifacts tr[data-name=research]").inner_text()
    assert executions["replay"] in page.locator("#lineage").inner_text()
    shot(page, "03-execution-completed")

    page.click(f"#lineage a[href*='diff'][href*='{executions['replay']}']")
    page.wait_for_url("**/ui/diff*")
    rows = page.locator("#diff tbody tr[data-key]")
    found = {
        rows.nth(i).get_attribute("data-key"): rows.nth(i).get_attribute("data-status")
        for i in range(rows.count())
    }
    assert found["research"] == "same" and found["draft"] == "changed"
    assert "A NEW DRAFT" in page.locator("#diff pre").first.inner_text()
    shot(page, "04-diff")

    page.goto(f"{server.url}/ui/executions/{executions['failed']}")
    assert states(page) == {"fetch": "ran", "parse": "failed"}
    assert "row 3 is not a record" in page.locator("#timeline").inner_text()
    # The failure's traceback has its own panel, above the timeline, not only in the logs.
    panel = page.locator("section#traceback")
    expect(panel).to_be_visible()
    assert page.locator("section#traceback h2").inner_text() == "Traceback (run 1)"
    traceback = panel.locator("pre.traceback").inner_text()
    assert traceback.startswith("Traceback (most recent call last)")
    assert "in ingest\n    return parse(fetch())" in traceback
    assert traceback.rstrip().endswith("ValueError: row 3 is not a record")
    above = page.evaluate(
        "document.querySelector('#traceback').compareDocumentPosition("
        "document.querySelector('#timeline')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    assert above
    shot(page, "05-execution-failed")
    # A completed execution has no such panel.
    page.goto(f"{server.url}/ui/executions/{executions['source']}")
    expect(page.locator("#traceback")).to_have_count(0)


def test_waits_are_answered_from_forms_checked_against_their_schema(
    page: Any, server: ServerProcess, write_token: str, executions: dict[str, str]
) -> None:
    client = Client(server, write_token, Path(executions["home"]))
    # Resume runs where the flows' code lives: the folder the fixture wrote them to.
    client.project = Path(executions["home"]).parent
    sign_in(page, server, write_token, f"/ui/executions/{executions['replay']}")
    assert states(page) == {"research": "reused", "draft": "override", "approve": "waiting"}
    shot(page, "06-replay-waiting")
    form = page.locator("form.waitform")
    form.locator("button[type=submit]").click()
    assert "choose yes or no" in form.locator(".message").inner_text()
    form.get_by_label("Yes").check()
    form.locator("button[type=submit]").click()
    continue_where_the_code_is(page, client, executions["replay"])
    shot(page, "06b-replay-ready")
    reload_until(page, lambda: page.locator("#status").inner_text() == "completed")
    assert page.locator("#result").inner_text() == '"published: A NEW DRAFT"'

    page.goto(f"{server.url}/ui/executions/{executions['triage']}")
    form = page.locator("form.waitform")
    form.locator("[data-field=approved]").get_by_label("Yes").check()
    form.locator("[data-field=score] input").fill("lots")
    form.locator("button[type=submit]").click()
    assert "is not a number" in form.locator(".message").inner_text()
    form.locator("[data-field=score] input").fill("9")
    form.locator("button[type=submit]").click()
    # The schema's bounds are checked by the server, with the reason shown in the form.
    expect(form.locator(".message")).to_contain_text("maximum", timeout=15_000)
    shot(page, "07-form-refused")
    form.locator("[data-field=score] input").fill("4")
    form.locator("[data-field=comment] input").fill("solid")
    form.locator("button[type=submit]").click()
    continue_where_the_code_is(page, client, executions["triage"])
    reload_until(page, lambda: page.locator("form.waitform[data-wait=copies]").count() == 1)
    form = page.locator("form.waitform[data-wait=copies]")
    form.locator("input").fill("2.5")
    form.locator("button[type=submit]").click()
    assert "whole number" in form.locator(".message").inner_text()
    form.locator("input").fill("3")
    form.locator("button[type=submit]").click()
    continue_where_the_code_is(page, client, executions["triage"])
    reload_until(page, lambda: page.locator("#status").inner_text() == "completed")
    assert page.locator("#result").inner_text() == '"3 words, score 4, 3 copies"'
    shot(page, "08-triage-completed")


def test_a_read_only_token_sees_but_cannot_answer(
    page: Any,
    server: ServerProcess,
    read_token: str,
    write_token: str,
    tmp_path: Path,
) -> None:
    client = Client(server, write_token, tmp_path / "home")
    waiting = client.start(write_script(tmp_path / "review.py", flows.REVIEW), "moths")
    sign_in(page, server, read_token, f"/ui/executions/{waiting['exec_id']}")
    assert page.locator("form.waitform button[type=submit]").is_disabled()
    page.goto(server.url + "/ui/waits")
    assert waiting["exec_id"] in page.locator("#waits").inner_text()
    shot(page, "09-waits-read-only")
    page.click(".signout button")
    page.wait_for_url("**/ui/login")


def test_stacks_page_lists_stacks_and_marks_the_active_one(
    page: Any, server: ServerProcess, read_token: str, admin_token: str, tmp_path: Path
) -> None:
    with server.http(admin_token) as writer:
        made = writer.post(
            "/api/v1/stacks",
            json={
                "name": "gpu-box",
                "orchestrator": "docker",
                "artifact_store": (tmp_path / "store").as_uri(),
                "registry": "127.0.0.1:5000/kitaru",
                "settings": {"cpus": 4, "environment": {"AGENT_MODE": "fast"}},
            },
        )
        assert made.status_code == 201, made.text
        assert writer.post("/api/v1/stacks/gpu-box/activate").status_code == 200
        try:
            sign_in(page, server, read_token, "/ui/stacks")
            rows = page.locator("#stacks tbody tr")
            assert [rows.nth(i).get_attribute("data-stack") for i in range(rows.count())] == [
                "local",
                "gpu-box",
            ]
            box = page.locator('#stacks tr[data-stack="gpu-box"]')
            assert box.get_attribute("data-active") == "yes"
            expect(box.locator(".badge.active")).to_have_text("active")
            text = box.inner_text()
            assert "docker" in text and "127.0.0.1:5000/kitaru" in text
            assert "AGENT_MODE" in text and "cpus" in text
            assert "network" not in text  # defaults stay out of the way
            local = page.locator('#stacks tr[data-stack="local"]')
            assert local.get_attribute("data-active") == "no"
            assert "built in" in local.inner_text()
            expect(page.locator("nav a.here")).to_have_text("Stacks")
            shot(page, "10-stacks")
        finally:
            # Later tests run flows on the active stack: give them local back.
            assert writer.delete("/api/v1/stacks/gpu-box").status_code == 200


def test_parallel_calls_show_as_one_group_with_their_wall_time(
    page: Any, server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    client = Client(server, write_token, tmp_path / "home")
    started = client.start(write_script(tmp_path / "research.py", flows.FAN_OUT), "8")
    assert started["status"] == "completed"
    sign_in(page, server, write_token, f"/ui/executions/{started['exec_id']}")
    group = page.locator("#timeline tr.group")
    assert group.count() == 1
    assert "search ×8" in group.inner_text() and "parallel" in group.inner_text()
    # 8 calls of 0.2 s on 4 threads: about 0.4 s of wall time, 1.6 s of work.
    wall = group.locator("td.num").inner_text()
    assert wall.endswith(" ms") and float(wall.split()[0]) < 1000, wall
    assert "sum 1." in group.inner_text()
    assert page.locator("#timeline tr.member").count() == 8
    assert states(page)["summarize"] == "ran"
    shot(page, "10-parallel-group")
    # A branch's key has a '/' in it; the API finds the call by it.
    with server.http(write_token) as http:
        call = http.get(f"/api/v1/executions/{started['exec_id']}/checkpoints/3/search")
    assert call.status_code == 200, call.text
    assert call.json()["branch"] == "3" and call.json()["output"]["name"] == "3/search"


@pytest.fixture(scope="module")
def wide(
    server: ServerProcess, write_token: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Executions that hold everything long: a 39 KB line, a long flow name, a long error
    and a long question, plus a replay whose diff has long changed lines."""
    folder = tmp_path_factory.mktemp("wide")
    client = Client(server, write_token, folder / "home")
    script = write_script(folder / "wide.py", flows.WIDE)
    waiting = client.start(script, "wait")["exec_id"]
    failed = client.start(script, "fail")["exec_id"]
    replay = client.cli_json(
        "executions",
        "replay",
        waiting,
        "--from",
        "explain",
        "--override",
        'explain={"' + "n" * 3_000 + '": 1}',
    )["exec_id"]
    return {"waiting": waiting, "failed": failed, "replay": replay}


@pytest.mark.parametrize("width", [1280, 390])
def test_no_page_is_wider_than_the_window(
    browser: Any,
    server: ServerProcess,
    write_token: str,
    admin_token: str,
    executions: dict[str, str],
    wide: dict[str, str],
    width: int,
    tmp_path: Path,
) -> None:
    """Long values wrap or scroll inside their own box: the page itself never scrolls
    sideways, on a desktop or on a phone."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    pages = [
        "/ui/executions",
        "/ui/executions?status=failed",
        f"/ui/executions/{wide['waiting']}",
        f"/ui/executions/{wide['failed']}",
        f"/ui/executions/{wide['replay']}",
        f"/ui/executions/{executions['source']}",
        f"/ui/diff?a={wide['waiting']}&b={wide['replay']}",
        f"/ui/diff?a={executions['source']}&b={executions['replay']}",
        "/ui/waits",
        "/ui/stacks",
        "/ui/executions/kx_" + "0" * 300,
    ]
    name = "wide-" + "s" * 58
    with server.http(admin_token) as admin:
        made = admin.post(
            "/api/v1/stacks",
            json={
                "name": name,
                "orchestrator": "docker",
                "artifact_store": (tmp_path / ("store-" + "d" * 300)).as_uri(),
                "registry": "127.0.0.1:5000/" + "r" * 300,
                "settings": {"environment": {"LONG_" + "V" * 200: "x" * 2_000}},
            },
        )
        assert made.status_code == 201, made.text
        try:
            page.goto(server.url + "/ui/login")
            too_wide = {}
            measure = "[document.documentElement.scrollWidth, window.innerWidth]"
            scroll, inner = page.evaluate(measure)
            if scroll > inner:
                too_wide["/ui/login"] = scroll
            sign_in(page, server, write_token)
            for path in pages:
                page.goto(server.url + path)
                scroll, inner = page.evaluate(measure)
                if scroll > inner:
                    too_wide[path] = scroll
            shot(page, f"11-error-{width}")
            page.goto(f"{server.url}/ui/executions/{wide['waiting']}")
            shot(page, f"11-wide-execution-{width}")
        finally:
            assert admin.delete(f"/api/v1/stacks/{name}").status_code == 200
            context.close()
    assert too_wide == {}, f"pages wider than a {width} px window: {too_wide}"


def _start_live(
    server: ServerProcess, write_token: str, tmp_path: Path, gate: Path, steps: str, **env: str
) -> tuple[Any, str]:
    """tests/live.py's flow, started with `env` and held at `gate`, and its execution."""
    import subprocess
    import sys

    from tests.live import LIVE, first_execution

    client = Client(server, write_token, tmp_path / "home")
    script = write_script(tmp_path / "live.py", LIVE)
    with server.http(write_token) as http:
        before = {e["exec_id"] for e in http.get("/api/v1/records/executions").json()}
        flow = subprocess.Popen(
            [sys.executable, str(script), steps],
            env={**client.env, **env, "GATE": str(gate)},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            exec_id = first_execution(
                lambda: [
                    e["exec_id"]
                    for e in http.get("/api/v1/records/executions").json()
                    if e["exec_id"] not in before
                ]
            )
        except BaseException:
            gate.touch()  # the flow would wait at its gate forever
            flow.wait(60)
            raise
    return flow, exec_id


def test_a_running_execution_page_updates_live(
    page: Any, server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    # The flow holds before its steps until the page shows it (sign-in can take seconds).
    gate = tmp_path / "gate"
    flow, exec_id = _start_live(server, write_token, tmp_path, gate, "8", STEP_SECONDS="0.7")
    try:
        sign_in(page, server, write_token, f"/ui/executions/{exec_id}")
        page.evaluate("window.kitaruNotReloaded = true")
        expect(page.locator("#status")).to_have_text("running")
        gate.touch()
        feed = page.locator("#feed li[data-kind=event]")
        expect(feed.filter(has_text='"done":2')).to_have_count(1, timeout=20_000)
        expect(page.locator("#status")).to_have_text("running")
        # Rows join the timeline as calls end, with no reload of the page.
        expect(page.locator("#timeline tr[data-key='step#3']")).to_have_count(1, timeout=20_000)
        shot(page, "10-execution-live")
        expect(page.locator("#status")).to_have_text("completed", timeout=30_000)
        expect(page.locator("#timeline tr[data-key='step#8']")).to_have_count(1)
        assert page.evaluate("window.kitaruNotReloaded") is True
        assert "execution completed" in page.locator("#feed").inner_text()
    finally:
        gate.touch()
        flow.wait(60)


def test_a_running_execution_that_fails_shows_its_traceback_without_a_reload(
    page: Any, server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    # The flow holds before its steps until the page shows it (sign-in can take seconds).
    gate = tmp_path / "gate"
    flow, exec_id = _start_live(
        server, write_token, tmp_path, gate, "4", STEP_SECONDS="0.7", FAIL_AT_END="1"
    )
    try:
        sign_in(page, server, write_token, f"/ui/executions/{exec_id}")
        page.evaluate("window.kitaruNotReloaded = true")
        expect(page.locator("#status")).to_have_text("running")
        expect(page.locator("#traceback")).to_have_count(0)
        gate.touch()
        expect(page.locator("#status")).to_have_text("failed", timeout=30_000)
        panel = page.locator("section#traceback pre.traceback")
        expect(panel).to_contain_text("RuntimeError: it broke at the end", timeout=10_000)
        assert "Traceback (most recent call last)" in panel.inner_text()
        assert page.evaluate("window.kitaruNotReloaded") is True
        shot(page, "11-execution-failed-live")
    finally:
        gate.touch()
        flow.wait(60)


SCORING = """
import json, os, sys
from kitaru import checkpoint, flow

@checkpoint
def fetch(n: int) -> int:
    return n

@checkpoint
def score(n: int) -> int:
    return n * int(os.environ.get("FACTOR", "1"))

@flow
def scoring(n: int) -> int:
    return score(fetch(n))

if __name__ == "__main__":
    handle = scoring.run(int(sys.argv[1]))
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""


def test_a_cohort_shows_as_a_matrix_with_diffs(
    page: Any, server: ServerProcess, write_token: str, read_token: str, tmp_path: Path
) -> None:
    client = Client(server, write_token, tmp_path / "home")
    script = write_script(tmp_path / "scoring.py", SCORING)
    zero = client.start(script, "0")["exec_id"]
    three = client.start(script, "3")["exec_id"]
    # The code changed: score doubles. 0 * 2 is still 0; 3 * 2 is not 3.
    changed = subprocess.run(
        [sys.executable, "-m", "kitaru", "executions", "replay", "--flow", "scoring",
         "--from", "score", "--json"],
        env={**client.env, "FACTOR": "2"}, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr

    sign_in(page, server, read_token, "/ui/cohorts?flow=scoring")
    rows = page.locator("#matrix tbody tr")
    assert rows.count() == 2
    results = {rows.nth(i).get_attribute("data-source"): rows.nth(i) for i in range(2)}
    assert results[zero].get_attribute("data-result") == "same"
    assert results[three].get_attribute("data-result") == "changed"
    cell = results[three].locator("td[data-key=score]")
    assert cell.get_attribute("data-cell") == "changed" and cell.inner_text() == "~"
    assert results[three].locator("td[data-key=fetch]").get_attribute("data-cell") == "same"
    assert (
        "2 replayed: 1 all same, 1 changed, 0 failed"
        in page.locator("#cohort-summary").inner_text()
    )
    shot(page, "09-cohort")
    results[three].locator("a[href*='diff']").click()
    page.wait_for_url("**/ui/diff*")
    assert page.locator("#diff tbody tr[data-key=score]").get_attribute("data-status") == "changed"
