"""The process a worker runs one execution in: forked from the worker, claimed for it.

A worker keeps one spare child forked ahead of time. The child has the worker's flows
imported already (forking copies them), so starting an execution costs no interpreter
start and no imports. The worker claims an execution with an owner token naming the
child's pid (`kitaru executions cancel` signals that pid, and a dead child means a
crashed execution at once), then sends the child the execution id and the token over
a pipe; the child runs it to its end, a wait, a cancel or a release, and exits.

Why a process per execution rather than a task or thread in the worker: a flow that
crashes the interpreter, leaks memory or never reaches a checkpoint boundary takes
down or holds only its own process, which the worker can kill after a grace period;
module state, signal handlers and the branch numbering (kitaru/_branches.py) start
clean for every execution; and the worker itself runs no user code at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from kitaru import _execute, _flow_inputs, _lease, _runtime

# Journals and connections inherited from the worker: never used here (their sockets
# and database handles belong to the worker), and kept referenced so that no finalizer
# closes them from this process.
_inherited: list[Any] = []


Report = Callable[[str, str, dict[str, Any]], None]


def start(flows: dict[str, Any], report: Report) -> tuple[int, int]:
    """Fork a spare child; (pid, write end of its pipe)."""
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 3  # not 0 or 1: the worker checks what became of the execution
        try:
            os.close(write_end)
            code = _serve(read_end, parent, flows, report)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(read_end)
    return pid, write_end


def owner_for(pid: int) -> str:
    """A lease owner token naming process `pid` on this host (a new nonce each time)."""
    return f"{_lease._HOST}:{pid}:{_lease._start_time(pid)}:{os.urandom(4).hex()}"


def assign(write_end: int, exec_id: str, owner: str) -> None:
    os.write(write_end, f"{exec_id} {owner}\n".encode())
    os.close(write_end)


def _serve(read_end: int, parent: int, flows: dict[str, Any], report: Report) -> int:
    _die_with(parent)
    # Ctrl-C in the worker's terminal reaches every process in its group: the worker
    # decides what happens to running executions (release them), not the interrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _s, _f: _runtime.request_release_all())
    with os.fdopen(read_end, "rb") as pipe:
        line = pipe.readline().decode().strip()
    if not line:
        return 0  # the worker stopped, or no longer needs a spare
    exec_id, owner = line.split(" ", 1)
    _forget_inherited()
    return run(exec_id, owner, flows, report)


def _die_with(parent: int) -> None:
    """Be killed when the worker dies (Linux), so its executions are free to be taken
    again at once instead of running on without an owner anyone can see."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)


def _forget_inherited() -> None:
    import kitaru.artifacts
    import kitaru.journal
    from kitaru import _connection

    with kitaru.journal._open_lock:
        _inherited.extend(kitaru.journal._open.values())
        kitaru.journal._open.clear()
    with _connection._lock:
        _inherited.extend(_connection._connections.values())
        _connection._connections.clear()
    kitaru.artifacts.reset_for_tests()


def run(exec_id: str, owner: str, flows: dict[str, Any], report: Report) -> int:
    """Drive the claimed execution; the exit code says how it ended (0: completed,
    waiting, cancelled or released)."""
    from kitaru.journal import current_journal

    journal = current_journal()
    started = time.monotonic()
    record = journal.get_execution(exec_id)
    if record is None or not _lease.same_owner(record.owner, owner):
        return 0  # taken over before this process started: nothing of ours to run
    flow = flows[record.flow]
    try:
        inputs = _flow_inputs.load_inputs(journal, record, flow.fn, allow_pickle=flow.allow_pickle)
    except BaseException as exc:
        journal.finish(exec_id, owner=owner, status="failed", now=time.time(), error=str(exc))
        report(exec_id, "failed", {"error": f"failed to start: {exc}"})
        return 1
    args, kwargs = _flow_inputs.call_args(flow.fn, inputs)
    final = _execute.drive(journal, record, owner, flow, args, kwargs)
    status = "released" if final.status == "queued" else final.status
    report(
        exec_id,
        status,
        {"seconds": round(time.monotonic() - started, 3), "error": final.error},
    )
    return 0 if final.status in ("completed", "waiting", "cancelled", "queued") else 1
