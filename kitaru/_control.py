"""Acting on executions from outside their flow: resume, replay, input, cancel.

The CLI, the client and the server all go through these functions; each operation
lives in a module of its own (`_resume.py`, `_input.py`, `_replay.py`, `_cancel.py`).
"""

from __future__ import annotations

from kitaru._cancel import cancel, sweep, timed_out
from kitaru._input import find_wait, give_input, parse_json
from kitaru._replay import record_replay, replay
from kitaru._resume import check_resumable, get_execution, resume, status_of

__all__ = [
    "cancel",
    "check_resumable",
    "find_wait",
    "get_execution",
    "give_input",
    "parse_json",
    "record_replay",
    "replay",
    "resume",
    "status_of",
    "sweep",
    "timed_out",
]
