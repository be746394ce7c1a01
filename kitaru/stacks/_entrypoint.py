"""`python -m kitaru run-execution ID`: what an orchestrator runs, in a container or a
background process.

It takes the lease of a `queued` execution and drives the flow in this process, as a
resume would. Inside an image the project sits at `KITARU_PROJECT_ROOT` rather than
where it was on the machine that started the execution, so the flow's file and import
path are found again relative to the recorded project root.
"""

from __future__ import annotations

import os
import sys
import time

from kitaru import _execute, _flow_inputs, _lease, _loader
from kitaru.journal import ExecutionRecord, current_journal


def relocate(record: ExecutionRecord) -> None:
    """Point the record's flow file and import path into this machine's copy of the project."""
    here = os.environ.get("KITARU_PROJECT_ROOT")
    if not here or not record.project_root:
        return
    for attr in ("flow_file", "import_path"):
        path = getattr(record, attr)
        if path and (path == record.project_root or path.startswith(record.project_root + "/")):
            rel = os.path.relpath(path, record.project_root)
            setattr(record, attr, os.path.normpath(os.path.join(here, rel)))


def run_execution(exec_id: str) -> int:
    """Exit code 0 when the execution completed, paused at a wait or was cancelled."""
    journal = current_journal()
    record = journal.get_execution(exec_id)
    if record is None:
        print(f"kitaru: execution {exec_id} not found in {journal.url}", file=sys.stderr)
        return 2
    if record.status != "queued":
        print(f"kitaru: execution {exec_id} is {record.status}, not queued; nothing to run")
        return 0
    owner = _lease.new_owner()
    now = time.time()
    if not journal.take_lease(
        exec_id,
        owner=owner,
        expected_owner=None,
        statuses=("queued",),
        now=now,
        lease_until=now + _lease.LEASE_SECONDS,
    ):
        print(f"kitaru: execution {exec_id} was started by another run; nothing to do")
        return 0
    leased = journal.get_execution(exec_id)
    assert leased is not None
    relocate(leased)
    print(f"kitaru: running execution {exec_id} (flow {leased.flow}, run {leased.runs})")
    try:
        flow = _loader.load_flow(leased, journal=journal)
        inputs = _flow_inputs.load_inputs(journal, leased, flow.fn, allow_pickle=flow.allow_pickle)
    except BaseException as exc:
        journal.finish(exec_id, owner=owner, status="failed", now=time.time(), error=str(exc))
        print(f"kitaru: execution {exec_id} failed to start: {exc}", file=sys.stderr)
        return 1
    args, kwargs = _flow_inputs.call_args(flow.fn, inputs)
    final = _execute.drive(journal, leased, owner, flow, args, kwargs)
    print(
        f"kitaru: execution {exec_id} {final.status}" + (f": {final.error}" if final.error else "")
    )
    return 0 if final.status in ("completed", "waiting", "cancelled") else 1
