"""The one line a flow run says on stderr when its execution did not simply complete.

`flow.run()` returns a handle whatever happened, so a script that only prints the
status would end quietly (exit code 0) after its execution failed or started waiting.
So it says, in one line that starts with `kitaru:`, what happened and the command that
comes next:

- waits: `kitaru executions input <id> <wait> <json>`;
- fails: the error and `kitaru executions get <id>`, which shows the full traceback;
- crashes: the process that ran it died. That process cannot speak, so the one that
  finds out does: a handle waiting on an execution run by another process (a stack's
  background process or container, a worker) when `handle.wait()`/`result()` sees it
  crashed, and `kitaru executions resume` when it takes over a crashed execution. A
  process interrupted while it runs one (Ctrl-C, `SystemExit`) records it failed and
  says how to continue it before the interrupt goes on;
- is cancelled.

`KITARU_QUIET` decides who hears it:

| `KITARU_QUIET` | stderr is a terminal | stderr is not (pipe, file, CI log, pytest) |
|---|---|---|
| unset | every line | failures, crashes, interruptions, cancels |
| `1` | nothing | nothing |
| `0` | every line | every line |

A waiting execution is the normal outcome of an approval flow that a service starts,
so off a terminal it stays quiet; a failure is an error, and an error that leaves no
trace in a CI log is how a job passes with a broken flow.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from kitaru._errors import InvalidConfigurationError

if TYPE_CHECKING:
    from kitaru.journal import ExecutionRecord, Journal

_QUIET = ("1", "true", "yes", "on")
_LOUD = ("0", "false", "no", "off")


def mode() -> str:
    """`quiet`, `loud` or `auto` from `KITARU_QUIET`; bad values are a configuration
    error, raised by `flow.run()` before anything is recorded."""
    raw = os.environ.get("KITARU_QUIET", "").strip().lower()
    if raw == "":
        return "auto"
    if raw in _QUIET:
        return "quiet"
    if raw in _LOUD:
        return "loud"
    raise InvalidConfigurationError(
        f"KITARU_QUIET={os.environ['KITARU_QUIET']!r} is not a switch; use 1 (flow runs print "
        "nothing), 0 (they print even when stderr is not a terminal) or leave it unset "
        "(everything on a terminal, only failures elsewhere)"
    )


def say(text: str, *, trouble: bool) -> None:
    """Write `kitaru: text` to stderr if `KITARU_QUIET` and the terminal allow it.

    `trouble` lines (failed, crashed, interrupted, cancelled) also reach a stderr that
    is not a terminal. Never raises: it runs after the execution ended, and the handle
    or the interrupt that follows matter more than the line."""
    if not heard(trouble=trouble):
        return
    try:
        sys.stderr.write(f"kitaru: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed or broken stderr: there is no one to tell


def heard(*, trouble: bool) -> bool:
    """Whether a line would reach anyone (so a quiet run does not read what to say)."""
    try:
        how = mode()
    except InvalidConfigurationError:
        how = "auto"  # refused when the run started; changed since
    if how == "quiet" or sys.stderr is None:
        return False
    return how == "loud" or trouble or _is_terminal(sys.stderr)


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def ended(journal: Journal, record: ExecutionRecord, status: str) -> None:
    """Say how the execution `record` ended, given its effective `status`; nothing for
    completed, queued or running."""
    exec_id = record.exec_id
    if status == "waiting":
        if heard(trouble=False):
            say(_waiting(journal, exec_id), trouble=False)
    elif status == "failed":
        say(
            f"execution {exec_id} failed: {one_line(record.error or 'no error recorded')}; "
            f"traceback: kitaru executions get {exec_id}",
            trouble=True,
        )
    elif status == "crashed":
        say(
            f"execution {exec_id} crashed: {owner_text(record.owner)} died while running it "
            f"(run {record.runs}); continue it with: kitaru executions resume {exec_id}",
            trouble=True,
        )
    elif status == "cancelled":
        say(f"execution {exec_id} was cancelled", trouble=True)


def _sleep_text(exec_id: str, until: float) -> str:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
    return (
        f"execution {exec_id} is sleeping until {when}; once that time has passed a server, "
        "a worker of its queue or `kitaru executions sweep` continues it"
    )


def still_sleeping(journal: Journal, record: ExecutionRecord) -> bool:
    """Say so and return True when `record` sleeps (kitaru.sleep) past now."""
    import time

    from kitaru._sleep import sleeping_until

    until = sleeping_until(journal.waits(record.exec_id))
    if until is None or until <= time.time():
        return False
    say(_sleep_text(record.exec_id, until) + "; it keeps sleeping", trouble=True)
    return True


def _waiting(journal: Journal, exec_id: str) -> str:
    from kitaru._sleep import sleeping_until

    waits = journal.waits(exec_id)
    until = sleeping_until(waits)
    if until is not None:
        return _sleep_text(exec_id, until)
    pending = [w for w in waits if w.status == "pending"]
    if not pending:
        return f"execution {exec_id} is waiting; see: kitaru executions get {exec_id}"
    first = pending[0]
    question = f" ({one_line(first.question)})" if first.question else ""
    more = f" ({len(pending) - 1} more: kitaru executions waits)" if len(pending) > 1 else ""
    return (
        f"execution {exec_id} is waiting at {first.key!r}{question}; answer it with: "
        f"kitaru executions input {exec_id} {first.key} <json>{more}"
    )


def interrupted(exec_id: str, error: str) -> None:
    """Say that this process stopped running `exec_id` (it is recorded failed with
    `error`) and how to continue it."""
    say(
        f"execution {exec_id} stopped ({one_line(error)}); continue it with: "
        f"kitaru executions resume {exec_id}",
        trouble=True,
    )


_PLAIN: list[type[BaseException]] = []


def plain_when_uncaught(kind: type[BaseException]) -> None:
    """An uncaught `kind` ends the program with its one line on stderr, not a traceback:
    for an outage of the journal, or a takeover, the frames say nothing the line does
    not (`KITARU_DEBUG=1` keeps them). Other exceptions go to the hook that was there."""
    if kind not in _PLAIN:
        _PLAIN.append(kind)
    previous = sys.excepthook
    if getattr(previous, "kitaru_plain", False):
        return

    def hook(kind_: type[BaseException], exc: BaseException, tb: Any) -> None:
        from kitaru._errors import debugging

        if issubclass(kind_, tuple(_PLAIN)) and not debugging():
            say(str(exc), trouble=True)
            return
        previous(kind_, exc, tb)

    hook.kitaru_plain = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def resuming_crashed(record: ExecutionRecord) -> None:
    """Say that a resume takes over an execution whose process died."""
    say(
        f"execution {record.exec_id} had crashed ({owner_text(record.owner)} died during "
        f"run {record.runs}); resuming it from its last checkpoint",
        trouble=True,
    )


def owner_text(owner: str | None) -> str:
    from kitaru._lease import parse_owner

    if not owner:
        return "its process"
    try:
        host, pid, _start = parse_owner(owner)
    except ValueError:
        return "its process"
    return f"its process (pid {pid} on {host})"


def one_line(text: str, width: int = 300) -> str:
    """`text` on one line: the first line, cut at `width` characters."""
    lines = text.strip().splitlines() or [""]
    first = lines[0]
    if len(first) > width:
        return first[: width - 1] + "…"
    return first + (" …" if len(lines) > 1 else "")
