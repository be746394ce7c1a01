"""A flow run says in one line on stderr when its execution waits, fails or crashes,
with the command that comes next (kitaru/_speak.py). Each test runs a real script in a
real pseudo-terminal, as a person at a terminal would, and then the command the line
names."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from kitaru import _speak
from tests.conftest import kitaru_cli, run_python, write_script

AGENT = """
import os, signal, sys, time
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def ask(prompt: str) -> str:
    if prompt == "fail":
        return call_your_model(prompt)  # noqa: F821
    return f"answer to {prompt}"

@checkpoint
def slow() -> None:
    sys.stdout.write("slow step started\\n")  # one write: Ctrl-C comes after the newline
    sys.stdout.flush()
    time.sleep(60)

@checkpoint
def die() -> None:
    marker = os.environ["CRASH_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-checkpoint

@flow
def writer(mode: str) -> str:
    text = ask(mode)
    if mode == "wait":
        if not kitaru.wait("approve", schema=bool, question="Publish?"):
            return "rejected"
    if mode == "interrupt" and not os.path.exists(os.environ["CRASH_MARKER"]):
        open(os.environ["CRASH_MARKER"], "w").close()
        slow()
    if mode == "crash":
        die()
    return text

if __name__ == "__main__":
    handle = writer.run(sys.argv[1])
    if len(sys.argv) > 2:
        handle.wait(timeout=60)  # a run in a background process: wait for its end
    print("status:", handle.status, flush=True)
"""

# `kitaru: execution kx_... <what happened>`: the line and the id it names.
LINE = re.compile(r"^kitaru: execution (kx_[0-9a-f]{28}) (.*)$", re.MULTILINE)


def _terminal(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    interrupt_after: str | None = None,
    timeout: float = 90,
) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as its controlling terminal (stdin, stdout and
    stderr); press Ctrl-C once `interrupt_after` was printed. Returns the exit code (minus
    the signal number when killed by one) and everything the terminal showed."""
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the program
        try:
            # As a shell starts a program in a terminal: Ctrl-C interrupts it, even when
            # the tests themselves run in the background (where SIGINT is ignored, and
            # an ignored signal stays ignored across exec).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.chdir(cwd)
            os.execve(argv[0], argv, full_env)
        finally:
            os._exit(127)
    shown = b""
    pressed = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the program and its children closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if interrupt_after and not pressed and interrupt_after.encode() in shown:
                os.write(fd, b"\x03")  # the terminal turns it into SIGINT
                pressed = True
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"{argv} did not end within {timeout} s: {shown!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    # The terminal echoes Ctrl-C as `^C`, on the line the next output starts.
    text = shown.decode().replace("\r\n", "\n").replace("^C", "")
    return os.waitstatus_to_exitcode(status), text


def _script(tmp_path: Path) -> Path:
    return write_script(tmp_path / "agent.py", AGENT)


def _run(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    interrupt_after: str | None = None,
) -> tuple[int, str]:
    """The agent script in a terminal: `python agent.py ARGS`."""
    argv = [sys.executable, str(_script(tmp_path)), *args]
    return _terminal(argv, cwd=tmp_path, env=env, interrupt_after=interrupt_after)


def _kitaru(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`kitaru ARGS` in a terminal."""
    return _terminal([sys.executable, "-m", "kitaru", *args], cwd=tmp_path, env=env)


def _the_line(shown: str) -> tuple[str, str]:
    lines = LINE.findall(shown)
    assert len(lines) == 1, shown
    exec_id, rest = lines[0]
    return exec_id, rest


def test_a_wait_says_the_command_that_answers_it(tmp_path: Path) -> None:
    code, shown = _run(tmp_path, "wait")
    assert code == 0, shown
    assert "status: waiting" in shown
    exec_id, rest = _the_line(shown)
    command = f"kitaru executions input {exec_id} approve <json>"
    assert rest == f"is waiting at 'approve' (Publish?); answer it with: {command}", shown

    # The command it names, with an answer in place of <json>, is the one that works.
    argv = command.replace("<json>", "true").split()[1:]
    code, shown = _kitaru(tmp_path, *argv)
    assert code == 0, shown
    assert re.search(r"^status +completed$", shown, re.MULTILINE), shown


def test_a_failure_says_the_error_and_where_the_traceback_is(tmp_path: Path) -> None:
    code, shown = _run(tmp_path, "fail")
    assert code == 0, shown  # flow.run() returns the handle; handle.result() would raise
    assert "status: failed" in shown
    exec_id, rest = _the_line(shown)
    assert rest == (
        "failed: in checkpoint 'ask': NameError: name 'call_your_model' is not defined "
        f"(at agent.py:9); traceback: kitaru executions get {exec_id}"
    ), shown

    code, shown = _kitaru(tmp_path, "executions", "get", exec_id)
    assert code == 1, shown  # a failed execution
    trace = shown[shown.index("Traceback (most recent call last):") :]
    assert re.search(r'File ".*agent\.py", line \d+, in writer\n', trace), shown
    assert re.search(r'File ".*agent\.py", line 9, in ask\n', trace), shown
    assert "NameError: name 'call_your_model' is not defined\n" in trace, shown
    assert "_execute.py" not in trace, shown  # starts at the flow, not the runtime

    code, shown = _kitaru(tmp_path, "executions", "logs", exec_id)
    assert code == 0, shown
    flow_output = shown[shown.index("── flow (run 1) ──") :]
    assert f"ERROR kitaru: execution {exec_id} failed in run 1\n" in flow_output, shown
    assert trace.split("\n\n")[0] in flow_output, shown  # the same traceback


def test_ctrl_c_says_how_to_continue_the_execution(tmp_path: Path) -> None:
    marker = tmp_path / "interrupted-once"
    env = {"CRASH_MARKER": str(marker)}
    code, shown = _run(tmp_path, "interrupt", env=env, interrupt_after="slow step started")
    assert code == -signal.SIGINT, shown  # Python's own exit for an unhandled Ctrl-C
    assert "KeyboardInterrupt" in shown
    exec_id, rest = _the_line(shown)
    assert rest == (
        "stopped (KeyboardInterrupt: interrupted); continue it with: "
        f"kitaru executions resume {exec_id}"
    ), shown

    code, shown = _kitaru(tmp_path, "executions", "resume", exec_id, env=env)
    assert code == 0, shown
    assert re.search(r"^status +completed$", shown, re.MULTILINE), shown


def test_a_crash_is_said_by_the_process_that_finds_it(tmp_path: Path) -> None:
    # In its own process the flow dies with SIGKILL: that process says nothing ...
    marker = tmp_path / "crashed-once"
    env = {"CRASH_MARKER": str(marker)}
    code, shown = _run(tmp_path, "crash", env=env)
    assert code == -signal.SIGKILL, shown
    assert "kitaru:" not in shown
    listed = kitaru_cli("executions", "list", "--json").json()
    assert [e["status"] for e in listed] == ["crashed"]
    exec_id = listed[0]["exec_id"]

    # ... and the resume that takes it over says what it found.
    code, shown = _kitaru(tmp_path, "executions", "resume", exec_id, env=env)
    assert code == 0, shown
    found, rest = _the_line(shown)
    assert found == exec_id
    assert re.fullmatch(
        r"had crashed \(its process \(pid \d+ on \S+\) died during run 1\); "
        r"resuming it from its last checkpoint",
        rest,
    ), shown
    assert re.search(r"^status +completed$", shown, re.MULTILINE), shown


def test_a_background_run_that_crashes_is_said_by_its_waiting_handle(tmp_path: Path) -> None:
    marker = tmp_path / "crashed-once"
    registered = kitaru_cli(
        "stack", "register", "bg", "-o", "local", "-a", (tmp_path / "art").as_uri(),
        "--set", "mode=subprocess", "--set", f"environment.CRASH_MARKER={marker}", "--use",
    )  # fmt: skip
    assert registered.returncode == 0, registered
    code, shown = _run(tmp_path, "crash", "--wait")
    assert code == 0, shown
    assert "status: crashed" in shown
    exec_id, rest = _the_line(shown)
    assert re.fullmatch(
        r"crashed: its process \(pid \d+ on \S+\) died while running it \(run 1\); "
        rf"continue it with: kitaru executions resume {exec_id}",
        rest,
    ), shown


def test_quiet_says_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "interrupted-once"
    env = {"KITARU_QUIET": "1", "CRASH_MARKER": str(marker)}
    for mode in ("wait", "fail"):
        code, shown = _run(tmp_path, mode, env=env)
        assert code == 0, shown
        assert f"status: {'waiting' if mode == 'wait' else 'failed'}" in shown
        assert "kitaru:" not in shown, shown
    code, shown = _run(tmp_path, "interrupt", env=env, interrupt_after="slow step started")
    assert code == -signal.SIGINT, shown
    assert "kitaru:" not in shown, shown


def test_off_a_terminal_only_trouble_is_said(tmp_path: Path) -> None:
    script = _script(tmp_path)
    waiting = run_python(script, "wait", cwd=tmp_path)
    assert waiting.returncode == 0 and waiting.stderr == "", waiting
    failed = run_python(script, "fail", cwd=tmp_path)
    assert failed.returncode == 0, failed
    assert LINE.fullmatch(failed.stderr.strip()), failed
    assert "failed: in checkpoint 'ask'" in failed.stderr
    loud = run_python(script, "wait", cwd=tmp_path, env={"KITARU_QUIET": "0"})
    assert "is waiting at 'approve'" in loud.stderr, loud


def test_a_bad_quiet_value_is_refused_before_anything_runs(tmp_path: Path) -> None:
    result = run_python(_script(tmp_path), "wait", cwd=tmp_path, env={"KITARU_QUIET": "maybe"})
    assert result.returncode == 1, result
    assert (
        "kitaru.InvalidConfigurationError: KITARU_QUIET='maybe' is not a switch; use 1"
        in result.stderr
    ), result
    assert kitaru_cli("executions", "list", "--json").json() == []


@pytest.mark.parametrize(
    ("value", "mode"),
    [("", "auto"), ("1", "quiet"), (" Yes ", "quiet"), ("on", "quiet"), ("0", "loud"),
     ("false", "loud"), ("OFF", "loud")],
)  # fmt: skip
def test_quiet_values(value: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_QUIET", value)
    assert _speak.mode() == mode


def test_a_line_is_one_line() -> None:
    assert _speak.one_line("ValueError: bad\n  detail") == "ValueError: bad …"
    assert _speak.one_line("x" * 400, width=10) == "x" * 9 + "…"
