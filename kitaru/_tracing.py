"""Whether this process traces executions with OpenTelemetry, decided without importing it.

Tracing is on when the OpenTelemetry SDK is installed (`pip install "kitaru[otel]"`) and
an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`. An installed SDK alone turns nothing on: many programs have
it through some other package, and spans sent nowhere would still cost every checkpoint.

The check runs once per run (reading the environment, and whether the SDK is importable
the first time); when it says no, nothing imports opentelemetry and a checkpoint call
pays one attribute test (`ExecutionContext.trace is None`). The spans themselves are
made in `kitaru/_otel.py`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kitaru._otel import RunTrace, Tracing
    from kitaru._runtime import ExecutionContext
    from kitaru.journal import ExecutionRecord, Journal

# The execution's metadata key under which its trace context (a W3C traceparent) is kept:
# every run of the execution, wherever it runs, starts its span in that trace.
TRACE_METADATA = "traceparent"
# The metadata key naming the run going on now: its span (a traceparent), its parent
# and when it started; emptied when the run ends. A run that finds an earlier run named
# there knows that run never ended (killed, its machine lost) and sends its span.
RUN_METADATA = "traceparent.run"
# The number of the run named there whose span was sent as crashed by a server that
# found it so (kitaru/server/_sweeper.py): the run after it does not send it again.
SENT_METADATA = "traceparent.sent"

# Setting one of these (to an OTLP/HTTP endpoint) turns tracing on.
ENDPOINT_VARIABLES = frozenset(
    {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}
)

_installed: bool | None = None
_told = False  # the missing SDK is said once per process


def sdk_installed() -> bool:
    global _installed
    if _installed is None:
        from importlib.util import find_spec

        try:
            _installed = (
                find_spec("opentelemetry.sdk") is not None
                and find_spec("opentelemetry.exporter.otlp.proto.http") is not None
            )
        except ModuleNotFoundError:
            _installed = False
    return _installed


def configured() -> bool:
    """Whether the environment asks for traces and the SDK to send them is installed."""
    env = os.environ
    if not any(env.get(name) for name in ENDPOINT_VARIABLES):
        return False  # (first: what every run without tracing asks)
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    if not sdk_installed():
        global _told
        if not _told:
            _told = True
            _warn(
                "an OTLP endpoint is set but the OpenTelemetry SDK is not installed, so "
                'executions are not traced; pip install "kitaru[otel]"'
            )
        return False
    return True


def tracing() -> Tracing | None:
    """The process's tracer, when tracing is on."""
    if not configured():
        return None
    from kitaru import _otel

    return _otel.tracing()


def start_run(ctx: ExecutionContext, flow_name: str) -> RunTrace | None:
    """The span of this run of `ctx`'s execution, when tracing is on."""
    t = tracing()
    if t is None:
        return None
    try:
        return t.start_run(ctx, flow_name)
    except Exception as exc:  # traces never stop an execution
        _warn(f"execution {ctx.exec_id} runs untraced: {exc}")
        return None


def submit_traceparent(journal: Journal, record: ExecutionRecord, orchestrator: str) -> str | None:
    """The trace context a container started for `record` continues (its `TRACEPARENT`):
    a span for this submission, in the execution's trace. None when tracing is off."""
    t = tracing()
    if t is None:
        return None
    try:
        return t.submitted(journal, record, orchestrator)
    except Exception as exc:
        _warn(f"execution {record.exec_id} is submitted untraced: {exc}")
        return None


def send_crashed_runs(journal: Journal) -> list[str]:
    """Send the span of every run that never ended (its execution `running`, its owner
    gone) and that no later run has sent yet; the ids of their executions. A server
    does this as it sweeps, so a crashed run nobody resumes is in its trace too."""
    t = tracing()
    if t is None:
        return []
    from kitaru._lease import effective_status

    sent = []
    for record in journal.list_executions(status="running", limit=1000):
        run = record.metadata.get(RUN_METADATA)
        if not isinstance(run, dict) or record.metadata.get(SENT_METADATA) == run.get("run"):
            continue
        if effective_status(record.status, record.owner, record.lease_until) != "crashed":
            continue
        try:
            # Noted first: a run that starts meanwhile must not send the span too.
            journal.set_metadata(record.exec_id, {SENT_METADATA: run.get("run")})
            t.crashed_run(record.exec_id, record.flow, run, found_by="a server found it so")
        except Exception as exc:
            _warn(f"execution {record.exec_id}: its crashed run's span is not sent: {exc}")
            continue
        sent.append(record.exec_id)
    if sent:
        t.flush()
    return sent


def _warn(message: str) -> None:
    import logging

    logging.getLogger("kitaru.tracing").warning("%s", message)
