"""OpenTelemetry spans of executions, runs, checkpoint calls, model calls and waits.

Imported only when `kitaru._tracing` says tracing is on. One execution is one trace,
across every run of it, in whichever process or container each runs:

    kitaru.execution <flow>     made once, when the execution's first run (or first
                                submission to a stack) starts; ended at once and sent
                                at once, so a crash cannot lose the trace's root. Its
                                context is kept in the execution's metadata
                                (`traceparent`).
      kitaru.submit <flow>      each hand-over to a stack's orchestrator; the container
                                gets its context as TRACEPARENT
        kitaru.run <flow>       a run in that container
      kitaru.run <flow>         a run in this process: the first, a resume after a
                                crash, after an answered wait, ...
        <checkpoint name>       each checkpoint call: ran or reused
        chat <model>            each kitaru.llm() call (GenAI semantic conventions)

Waits are events on the run's span. The first run's execution span is the child of
whatever span is current where the flow was started (or of TRACEPARENT).

Spans go through the program's own SDK tracer provider when it has set one, else
through one made here: resource from `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES`
(service `kitaru` by default), a batch processor and the OTLP/HTTP exporter, which
read the standard `OTEL_*` variables.
"""

from __future__ import annotations

import os
import threading
import time
from contextvars import Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Span, SpanContext, Status, StatusCode, TraceFlags

from kitaru._otel_genai import GENAI_KINDS, call_attributes, call_name, genai_attributes
from kitaru._tracing import RUN_METADATA, SENT_METADATA, TRACE_METADATA, _warn
from kitaru._version import __version__

if TYPE_CHECKING:
    from kitaru._runtime import CheckpointRun, ExecutionContext
    from kitaru.journal import ArtifactRecord, CallRecord, ExecutionRecord, Journal

# How long the end of a run waits for its spans to be sent (a worker's child leaves with
# os._exit, which runs no exit handler); an unreachable collector costs at most this.
FLUSH_MILLIS = 2000

_lock = threading.Lock()
_tracing: Tracing | None = None


def tracing() -> Tracing:
    global _tracing
    with _lock:
        if _tracing is None:
            _tracing = Tracing(_provider())
        return _tracing


def _provider() -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current  # the program configured the SDK itself: its spans and ours together
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "kitaru"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # (If the program set another provider in between, the global one is theirs; ours
    # still sends Kitaru's spans.)
    return provider


def traceparent(span_context: SpanContext) -> str:
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )


def parse_traceparent(value: object) -> SpanContext | None:
    """The span context a W3C traceparent names, or None if it is not one."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split("-")
    if len(parts) != 4 or parts[0] != "00" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))


def _parent(span_context: SpanContext | None) -> otel_context.Context | None:
    """A context whose current span is `span_context` (None: the current context)."""
    if span_context is None:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


class _Ids(IdGenerator):
    """The tracer's ids, except for the span of a crashed run, sent late by the run
    after it: that span takes the id the crashed run's calls already name as parent."""

    def __init__(self, wrapped: IdGenerator) -> None:
        self.wrapped = wrapped
        self._given = threading.local()

    def generate_span_id(self) -> int:
        given: int | None = getattr(self._given, "span_id", None)
        if given is not None:
            self._given.span_id = None
            return given
        return self.wrapped.generate_span_id()

    def generate_trace_id(self) -> int:
        return self.wrapped.generate_trace_id()

    def give(self, span_id: int | None) -> None:
        self._given.span_id = span_id


class Tracing:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("kitaru", __version__)
        # The SDK's tracer (one per scope: this one is ours) picks ids through this
        # attribute.
        assert isinstance(self.tracer, SdkTracer)
        self.ids = _Ids(self.tracer.id_generator)
        self.tracer.id_generator = self.ids

    def flush(self) -> None:
        self.provider.force_flush(FLUSH_MILLIS)

    def execution_context(self, journal: Journal, record: ExecutionRecord) -> SpanContext:
        """The execution's span: the one its metadata names, else a new one (kept there)."""
        stored = parse_traceparent(record.metadata.get(TRACE_METADATA))
        if stored is not None:
            return stored
        # A child of the span current where the flow starts, else of TRACEPARENT.
        here = trace.get_current_span().get_span_context().is_valid
        span = self.tracer.start_span(
            f"kitaru.execution {record.flow}",
            context=None if here else _parent(parse_traceparent(os.environ.get("TRACEPARENT"))),
            attributes={
                "kitaru.execution.id": record.exec_id,
                "kitaru.flow": record.flow,
                "kitaru.stack": record.stack or "local",
            },
        )
        span.end()
        value = traceparent(span.get_span_context())
        journal.set_metadata(record.exec_id, {TRACE_METADATA: value})
        record.metadata = {**record.metadata, TRACE_METADATA: value}
        self.flush()
        return span.get_span_context()

    def submitted(self, journal: Journal, record: ExecutionRecord, orchestrator: str) -> str:
        execution = self.execution_context(journal, record)
        span = self.tracer.start_span(
            f"kitaru.submit {record.flow}",
            context=_parent(execution),
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "kitaru.execution.id": record.exec_id,
                "kitaru.orchestrator": orchestrator,
            },
        )
        span.end()
        return traceparent(span.get_span_context())

    def start_run(self, ctx: ExecutionContext, flow_name: str) -> RunTrace:
        record = ctx.record
        execution = self.execution_context(ctx.journal, record)
        # A container continues the submission's span, when it belongs to this trace.
        handed = parse_traceparent(os.environ.get("TRACEPARENT"))
        parent = handed if handed and handed.trace_id == execution.trace_id else execution
        earlier = record.metadata.get(RUN_METADATA)
        if (
            isinstance(earlier, dict)
            and _int(earlier.get("run")) not in (None, ctx.run)
            and record.metadata.get(SENT_METADATA) != earlier.get("run")
        ):
            self.crashed_run(ctx.exec_id, flow_name, earlier)
        started = time.time()
        span = self.tracer.start_span(
            f"kitaru.run {flow_name}",
            context=_parent(parent),
            kind=trace.SpanKind.CONSUMER if parent is handed else trace.SpanKind.INTERNAL,
            attributes={
                "kitaru.execution.id": ctx.exec_id,
                "kitaru.flow": flow_name,
                "kitaru.run": ctx.run,
            },
            start_time=int(started * 1e9),
        )
        going = {
            "run": ctx.run,
            "span": traceparent(span.get_span_context()),
            "parent": traceparent(parent),
            "started_at": started,
            "consumer": parent is handed,
        }
        try:
            ctx.journal.set_metadata(ctx.exec_id, {RUN_METADATA: going})
        except Exception as exc:  # the run is traced; only a crash of it would go unseen
            _warn(f"execution {ctx.exec_id}: its run's span is not noted: {exc}")
        return RunTrace(self, span, ctx.journal, ctx.exec_id)

    def crashed_run(
        self,
        exec_id: str,
        flow_name: str,
        run: dict[str, Any],
        found_by: str = "found when the execution was resumed",
    ) -> None:
        """Send the span of a run that never ended, now that a later run (or a server's
        sweep) found it: from its recorded start to now, with the id its calls name as
        their parent, an error with `kitaru.run.outcome=crashed`."""
        own, parent = parse_traceparent(run.get("span")), parse_traceparent(run.get("parent"))
        started, number = run.get("started_at"), _int(run.get("run"))
        if own is None or parent is None or own.trace_id != parent.trace_id:
            return
        if not isinstance(started, (int, float)) or number is None:
            return
        now = time.time()
        self.ids.give(own.span_id)
        span = self.tracer.start_span(
            f"kitaru.run {flow_name}",
            context=_parent(parent),
            kind=trace.SpanKind.CONSUMER if run.get("consumer") else trace.SpanKind.INTERNAL,
            attributes={
                "kitaru.execution.id": exec_id,
                "kitaru.flow": flow_name,
                "kitaru.run": number,
                "kitaru.run.status": "crashed",
                "kitaru.run.outcome": "crashed",
            },
            start_time=int(min(started, now) * 1e9),
        )
        self.ids.give(None)  # (unused if the sampler dropped the span before taking an id)
        span.set_status(
            Status(
                StatusCode.ERROR,
                f"run {number} ended without finishing (its process was killed or lost); "
                f"{found_by}",
            )
        )
        span.end(end_time=int(now * 1e9))


class RunTrace:
    """The span of one run and the spans of the calls it makes."""

    def __init__(self, tracing: Tracing, span: Span, journal: Journal, exec_id: str) -> None:
        self.tracing = tracing
        self.span = span
        self.journal = journal
        self.exec_id = exec_id
        self.context = trace.set_span_in_context(span)
        self._token: Token[otel_context.Context] | None = None

    # -- the run -------------------------------------------------------------------------
    def attach(self) -> None:
        """Make the run's span current in the flow body (spans the user's code makes nest
        under it)."""
        self._token = otel_context.attach(self.context)

    def end(self, status: str, error: str | None) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None
        self.span.set_attribute("kitaru.run.status", status)
        self.span.set_attribute("kitaru.run.outcome", status)
        if error is not None:
            self.span.set_status(Status(StatusCode.ERROR, error))
        self.span.end()
        try:
            # The run ended: the next one has no span of it to send.
            self.journal.set_metadata(self.exec_id, {RUN_METADATA: None})
        except Exception as exc:  # traces never stop an execution
            _warn(f"execution {self.exec_id}: could not note that its run's span ended: {exc}")
        self.tracing.flush()

    def wait(self, key: str, outcome: str) -> None:
        self.span.add_event("kitaru.wait", {"kitaru.wait.key": key, "kitaru.wait.outcome": outcome})

    # -- checkpoint calls ----------------------------------------------------------------
    def call_started(self, call: CheckpointRun) -> tuple[Span, Token[otel_context.Context]]:
        span = self.tracing.tracer.start_span(
            call_name(call), context=self.context, attributes=call_attributes(call, "ran")
        )
        return span, otel_context.attach(trace.set_span_in_context(span))

    def call_reused(self, call: CheckpointRun, done: CallRecord) -> None:
        now = time.time_ns()
        attributes = call_attributes(call, "reused")
        attributes["kitaru.checkpoint.attempts"] = done.attempts
        if done.output is not None:
            attributes["kitaru.checkpoint.output.size"] = done.output.size
        attributes.update(genai_attributes(call.spec.kind, done.metadata))
        span = self.tracing.tracer.start_span(
            call_name(call, done.metadata), context=self.context,
            attributes=attributes, start_time=now,
        )  # fmt: skip
        span.end(end_time=now)

    def call_ended(
        self,
        call: CheckpointRun,
        span: Span,
        attempts: int,
        output: ArtifactRecord | None,
        error: BaseException | None,
    ) -> None:
        """Finish a call's span: attempts, output size, model usage, the failure."""
        span.set_attribute("kitaru.checkpoint.attempts", attempts)
        if output is not None:
            span.set_attribute("kitaru.checkpoint.output.size", output.size)
        metadata = call.frame.metadata if call.frame is not None else {}
        if call.spec.kind in GENAI_KINDS:
            span.set_attributes(genai_attributes(call.spec.kind, metadata))
            span.update_name(call_name(call, metadata))
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def call_exit(self, span: Span, token: Token[otel_context.Context]) -> None:
        otel_context.detach(token)
        span.end()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
