from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# `_control` (resume, replay, answers) and the artifact readers are imported by the
# methods that use them: listing executions, what the CLI does most, does not pay for them.
from kitaru import _views
from kitaru._errors import ConfigurationError, NotFoundError, at_call_site
from kitaru.journal import ArtifactRecord, ExecutionRecord, Journal, current_journal, open_journal


class Execution:
    """An execution as it was when read; `to_dict()` is what `--json` prints.

    The summary (status, times, lineage) is read at once; the checkpoint timeline, the
    waits and the result are read on first access, so `replay(...)` or `input(...)` do
    not pay for a 1000-row timeline nobody looks at.
    """

    def __init__(self, summary: dict[str, Any], detail: Callable[[], dict[str, Any]] | None = None):
        self._summary = summary
        self._detail_loader = detail
        self._detail: dict[str, Any] | None = None if detail else summary

    def _full(self) -> dict[str, Any]:
        if self._detail is None:
            assert self._detail_loader is not None
            self._detail = self._detail_loader()
        return self._detail

    @property
    def exec_id(self) -> str:
        return str(self._summary["exec_id"])

    @property
    def flow(self) -> str:
        return str(self._summary["flow"])

    @property
    def status(self) -> str:
        """queued, running, waiting, completed, failed, crashed or cancelled."""
        return str(self._summary["status"])

    @property
    def error(self) -> str | None:
        return self._summary.get("error")

    @property
    def created_at(self) -> str | None:
        return self._summary.get("created_at")

    @property
    def ended_at(self) -> str | None:
        return self._summary.get("ended_at")

    @property
    def replayed_from(self) -> str | None:
        return self._summary.get("replayed_from")

    @property
    def replay_point(self) -> str | None:
        return self._summary.get("replay_point")

    @property
    def result(self) -> Any:
        """The flow's return value as JSON (None until it completed)."""
        return self._full().get("result")

    @property
    def checkpoints(self) -> builtins.list[dict[str, Any]]:
        """Every checkpoint call in position order, as `kitaru executions get --json`."""
        return list(self._full().get("checkpoints", []))

    @property
    def waits(self) -> builtins.list[dict[str, Any]]:
        return list(self._full().get("waits", []))

    @property
    def traceback(self) -> str | None:
        """The full traceback of a failed flow (`error` is its one-line summary); None
        for any other status, or a failure with no traceback (a crash, a lost run)."""
        value = self._full().get("traceback")
        return None if value is None else str(value)

    @property
    def data(self) -> dict[str, Any]:
        """Every field of the summary (stack, runs, metadata, ...)."""
        return self._summary

    def to_dict(self) -> dict[str, Any]:
        return dict(self._full())

    def __repr__(self) -> str:
        return f"<Execution {self.exec_id} {self.flow} {self.status}>"


@dataclass
class Artifact:
    artifact_id: str
    exec_id: str
    name: str
    version: int
    producer: str
    type: str
    serializer: str
    size: int
    uri: str | None
    _record: ArtifactRecord = field(repr=False)
    _journal: Journal = field(repr=False)

    def load(self, *, allow_pickle: bool = False) -> Any:
        """The value, as the type it was saved with. A pickled value loads only with
        `allow_pickle=True` (unpickling runs code its bytes name: only for journals whose
        every writer you trust) and after its content hash is checked."""
        from kitaru._artifact_io import load_value

        record = self._journal.get_artifact(self.artifact_id) or self._record
        execution = self._journal.get_execution(self.exec_id)
        return load_value(
            record, execution.artifact_store if execution else None, allow_pickle=allow_pickle
        )

    def read_bytes(self) -> bytes:
        from kitaru._artifact_io import read_bytes

        record = self._journal.get_artifact(self.artifact_id) or self._record
        execution = self._journal.get_execution(self.exec_id)
        return read_bytes(record, execution.artifact_store if execution else None)

    def to_dict(self) -> dict[str, Any]:
        return _views.artifact_view(self._record)


def _checked(journal: Journal, record: ExecutionRecord) -> ExecutionRecord:
    """The record, or `failed` if it has been queued a while and its container (or job)
    ended without taking it: otherwise nobody but the starting process would notice; or
    queued again if its run died and its stack restarts runs (kitaru/stacks/_restarts.py)."""
    if record.status not in ("queued", "running") or record.run_id is None:
        return record
    from kitaru.stacks._submit import reconcile_if_stale

    return reconcile_if_stale(journal, record)


class Executions:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def list(
        self,
        *,
        flow: str | None = None,
        status: str | None = None,
        idempotency_key: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Execution]:
        """Newest first; `status` filters on the effective status (`crashed` included);
        `idempotency_key`: the execution(s) a start with that key made (one per flow)."""
        records = self._journal.list_executions(
            flow=flow,
            idempotency_key=idempotency_key,
            status=None if status in (None, "crashed", "running") else status,
            limit=limit if status in (None,) else max(limit, 1000),
        )
        records = [_checked(self._journal, r) for r in records]
        views = [_views.execution_view(self._journal, r, detail=False) for r in records]
        if status is not None:
            views = [v for v in views if v["status"] == status][:limit]
        return [Execution(v) for v in views]

    def get(self, exec_id: str) -> Execution:
        from kitaru import _control

        record = _checked(self._journal, _control.get_execution(self._journal, exec_id))
        summary = _views.execution_view(self._journal, record, detail=False)
        return Execution(summary, lambda: _views.execution_view(self._journal, record))

    def logs(self, exec_id: str) -> builtins.list[dict[str, Any]]:
        from kitaru import _control

        _control.get_execution(self._journal, exec_id)
        return [
            {
                "checkpoint": g.call_key,
                "run": g.run,
                "ts": _views.iso(g.ts),
                "stream": g.stream,
                "text": g.text,
            }
            for g in self._journal.logs(exec_id)
        ]

    def resume(self, exec_id: str, *, detach: bool = False) -> Execution:
        from kitaru import _control

        record = _control.resume(exec_id, detach=detach, journal=self._journal)
        return self.get(record.exec_id)

    def cancel(self, exec_id: str, *, grace: float = 10.0) -> Execution:
        from kitaru import _control

        record = _control.cancel(exec_id, grace=grace, journal=self._journal)
        return self.get(record.exec_id)

    def input(self, exec_id: str, name: str, value: Any, *, detach: bool = False) -> Execution:
        """Answer the wait `name` (a wait name or key such as `approve#2`) and resume."""
        from kitaru import _control

        record = _control.give_input(exec_id, name, value, detach=detach, journal=self._journal)
        return self.get(record.exec_id)

    def replay(
        self,
        exec_id: str,
        *,
        from_: str,
        overrides: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        detach: bool = False,
    ) -> Execution:
        from kitaru import _control

        record = _control.replay(
            exec_id,
            from_=from_,
            overrides=overrides,
            inputs=inputs,
            detach=detach,
            journal=self._journal,
        )
        return self.get(record.exec_id)

    def delete(
        self,
        *exec_ids: str,
        force: bool = False,
        with_lineage: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete executions, their rows and artifact bytes (`kitaru executions delete`);
        the report: `deleted`, `kept` (id: reason), `objects_deleted`, `objects_left`."""
        from kitaru import _retention

        report = _retention.delete(
            self._journal, exec_ids, force=force, with_lineage=with_lineage, dry_run=dry_run
        )
        return report.as_dict()

    def gc(
        self,
        older_than: str | float,
        *,
        statuses: str | None = None,
        flow: str | None = None,
        with_lineage: bool = False,
        orphans: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete executions that ended longer ago than `older_than` (`"30d"` or seconds)
        and their bytes (`kitaru gc`); statuses as `"completed,failed"`."""
        from kitaru import _retention

        age = _retention.parse_age(older_than) if isinstance(older_than, str) else older_than
        report = _retention.collect(
            self._journal,
            older_than=age,
            statuses=_retention.parse_statuses(statuses),
            flow=flow,
            with_lineage=with_lineage,
            orphans=orphans,
            dry_run=dry_run,
        )
        return report.as_dict()

    def waits(self) -> builtins.list[dict[str, Any]]:
        import time

        now = time.time()
        return [_views.wait_view(w, now) for w in self._journal.pending_waits()]


class Artifacts:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def _wrap(self, record: ArtifactRecord) -> Artifact:
        return Artifact(
            artifact_id=record.artifact_id,
            exec_id=record.exec_id,
            name=record.name,
            version=record.version,
            producer=record.producer,
            type=record.type_ref,
            serializer=record.serializer,
            size=record.size,
            uri=record.uri,
            _record=record,
            _journal=self._journal,
        )

    def list(self, exec_id: str) -> builtins.list[Artifact]:
        from kitaru import _control

        _control.get_execution(self._journal, exec_id)
        return [self._wrap(r) for r in self._journal.list_artifacts(exec_id)]

    def get(self, artifact_id: str) -> Artifact:
        record = self._journal.get_artifact(artifact_id)
        if record is None:
            from kitaru import _ids

            raise NotFoundError(_ids.not_found("ka", artifact_id, self._journal.url))
        return self._wrap(record)

    def diff(self, exec_a: str, exec_b: str) -> dict[str, Any]:
        from kitaru._diff import diff_executions

        return diff_executions(self._journal, exec_a, exec_b)


class KitaruClient:
    """Reads and acts on executions in a journal (by default the one this process uses)."""

    def __init__(self, journal_url: str | None = None) -> None:
        try:
            self.journal = open_journal(journal_url) if journal_url else current_journal()
        except ConfigurationError as exc:
            raise at_call_site(exc) from None
        self.executions = Executions(self.journal)
        self.artifacts = Artifacts(self.journal)
