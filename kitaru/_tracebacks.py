"""The full traceback of a failed flow, kept as a log record of the run that failed.

The execution's `error` holds one line (`in checkpoint 'ask': NameError: ... (at
flow.py:6)`): what `flow.run()` says, `executions list` and `handle.result()` show. The
whole traceback goes with the run's own output, as a `logging` record of the `kitaru`
logger written outside any checkpoint, the last one of its run: `executions logs`
shows it where it happened, after what the flow printed, and `executions get` finds it
by that place and its first line. No column holds it, so journals of every schema and
the server's runner API carry it as they are.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from types import TracebackType

from kitaru._logs import LogBuffer
from kitaru.journal import LogRecord

# A traceback is text a person reads; past this it is a runaway repr or a deep
# recursion, and its two ends say what happened.
_MAX_CHARS = 256 * 1024


def _header(exec_id: str, run: int) -> str:
    return f"ERROR kitaru: execution {exec_id} failed in run {run}\n"


def keep(buffer: LogBuffer, exc: BaseException) -> None:
    """Add the traceback of `exc`, which ended the flow, to the flow's own log buffer."""
    text = "".join(traceback.format_exception(type(exc), exc, _from_flow(exc.__traceback__)))
    if len(text) > _MAX_CHARS:
        half = _MAX_CHARS // 2
        left_out = f"\n... ({len(text) - 2 * half} characters left out) ...\n"
        text = text[:half] + left_out + text[-half:]
    header = _header(buffer.exec_id, buffer.run)
    record = LogRecord(buffer.exec_id, None, buffer.run, time.time(), "log", header + text)
    buffer.records.append(record)


def _from_flow(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the flow function down, without the frames above it: the
    runtime's call of the function, and for an async flow the event loop's."""
    above = [os.path.dirname(__file__) + os.sep]
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and asyncio.__file__:
        above.append(os.path.dirname(asyncio.__file__) + os.sep)
    while tb is not None and tb.tb_next is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(tuple(above)):
            break
        tb = tb.tb_next
    return tb


def find(logs: Sequence[LogRecord], exec_id: str, run: int) -> str | None:
    """The traceback that ended run `run` of `exec_id`, if one was kept: the last record
    of that run outside checkpoints (a retried flow keeps one per attempt)."""
    header = _header(exec_id, run)
    for log in reversed(logs):
        if log.run != run or log.call_key is not None:
            continue
        if log.stream == "log" and log.text.startswith(header):
            return log.text[len(header) :]
        return None
    return None
