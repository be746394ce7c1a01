"""Checkpoint calls, artifacts, waits, logs and the live feed over a Kitaru server's API."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any

from kitaru._codec import many, maybe, to_wire
from kitaru._connection import _dumps
from kitaru._errors import KitaruUsageError
from kitaru.journal._http_requests import MAX_PAGE, HttpBase, _p, _sent_once
from kitaru.journal._records import ArtifactRecord, CallRecord, EventRecord, LogRecord, WaitRecord


class CallRequests(HttpBase):
    """Mixed into `HttpJournal`."""

    # checkpoint calls
    def calls(self, exec_id: str) -> list[CallRecord]:
        return many(CallRecord, self._get(f"/records/executions/{_p(exec_id)}/calls"))

    def commit_call(
        self,
        call: CallRecord,
        output: ArtifactRecord | None,
        logs: Sequence[LogRecord],
        *,
        owner: str,
    ) -> bool:
        # The output travels once, as `output`, not again inside the call.
        bare = dataclasses.replace(call, output=None) if call.output is not None else call
        body = _dumps(
            {
                "owner": owner,
                "call": to_wire(bare),
                "output": to_wire(output),
                "logs": to_wire(list(logs)),
            }
        ).encode()

        def landed() -> bool | None:
            for row in self.calls(call.exec_id):
                if row.seq == call.seq:
                    mine = (row.key, row.status, row.ended_at, row.attempts)
                    return mine == (call.key, call.status, call.ended_at, call.attempts) or None
            return None

        return _sent_once(lambda: self._commits.commit(call.exec_id, body), landed)

    # Caching across executions is a journal lookup the runner API does not offer (yet):
    # through a server, a `cache=True` checkpoint runs as if `cache` were off.
    def remember_call(
        self, source_hash: str, input_key: str, *, exec_id: str, seq: int, now: float
    ) -> None:
        return None

    def find_cached_call(
        self, source_hash: str, input_key: str, *, since: float
    ) -> CallRecord | None:
        return None

    def copy_calls(
        self, source: str, target: str, *, before_seq: int, overridden: Collection[str] = ()
    ) -> int:
        body: dict[str, Any] = {"source": source, "before_seq": before_seq}
        if overridden:
            body["overridden"] = sorted(overridden)

        def landed() -> int | None:  # a lost answer sent again: the copies are there
            copied = [c for c in self.calls(target) if c.seq < before_seq and c.reused_from]
            return len(copied) or None

        return _sent_once(
            lambda: int(self._post(f"/executions/{_p(target)}/copy-calls", body)["copied"]),
            landed,
        )

    # artifacts
    def put_artifact(self, artifact: ArtifactRecord) -> None:
        def send() -> bool:
            self._runner(artifact.exec_id, "artifacts", {"artifact": to_wire(artifact)})
            return True

        _sent_once(send, lambda: True if self.get_artifact(artifact.artifact_id) else None)

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None:
        return maybe(ArtifactRecord, self._get(f"/records/artifacts/{_p(artifact_id)}"))

    def list_artifacts(self, exec_id: str, *, producer: str | None = None) -> list[ArtifactRecord]:
        found = self._get(f"/records/executions/{_p(exec_id)}/artifacts", {"producer": producer})
        return many(ArtifactRecord, found)

    def find_artifact(self, exec_id: str, name: str) -> ArtifactRecord | None:
        found = self._get(f"/records/executions/{_p(exec_id)}/artifacts/named/{_p(name)}")
        return maybe(ArtifactRecord, found)

    # waits
    def create_wait(self, wait: WaitRecord, *, owner: str) -> bool:
        body = {"owner": owner, "wait": to_wire(wait)}

        def landed() -> bool | None:
            found = [w for w in self.waits(wait.exec_id) if w.key == wait.key]
            return True if found and found[0].created_at == wait.created_at else None

        return _sent_once(
            lambda: bool(self._runner(wait.exec_id, "waits", body)["created"]), landed
        )

    def waits(self, exec_id: str) -> list[WaitRecord]:
        return many(WaitRecord, self._get(f"/records/executions/{_p(exec_id)}/waits"))

    def pending_waits(self) -> list[WaitRecord]:
        return many(WaitRecord, self._get("/records/waits"))

    def answer_wait(self, exec_id: str, key: str, value: ArtifactRecord, *, now: float) -> bool:
        """The answer goes as JSON: the server checks it against the wait's schema and
        stores it as JSON, whatever the artifact's serializer was here."""
        from kitaru import _serialize
        from kitaru.journal._bytes import read_bytes

        ok, plain = _serialize.to_jsonable(value.serializer, read_bytes(value, None))
        if not ok:
            raise KitaruUsageError(
                f"the answer to wait {key!r} is {value.serializer} data; answers are JSON"
            )
        body = {
            "value": plain,
            "artifact_id": value.artifact_id,
            "timed_out": bool(value.metadata.get("timed_out")),
        }
        try:
            self._post(f"/executions/{_p(exec_id)}/waits/{_p(key)}/answer", body)
        except KitaruUsageError:
            return False  # answered already (409): the journal's "not pending"
        return True

    def copy_waits(self, source: str, target: str, *, before_seq: int) -> int:
        body = {"source": source, "before_seq": before_seq}

        def landed() -> int | None:
            copied = [w for w in self.waits(target) if w.seq < before_seq]
            return len(copied) or None

        return _sent_once(
            lambda: int(self._post(f"/executions/{_p(target)}/copy-waits", body)["copied"]),
            landed,
        )

    # logs
    def append_logs(self, logs: Sequence[LogRecord]) -> None:
        by_exec: dict[str, list[LogRecord]] = {}
        for line in logs:
            by_exec.setdefault(line.exec_id, []).append(line)
        for exec_id, lines in by_exec.items():
            first = lines[0]

            def send(exec_id: str = exec_id, lines: list[LogRecord] = lines) -> bool:
                self._runner(exec_id, "logs", {"logs": to_wire(lines)})
                return True

            def landed(exec_id: str = exec_id, first: LogRecord = first) -> bool | None:
                seen = ((g.ts, g.text) for g in self.logs(exec_id))
                return True if (first.ts, first.text) in seen else None

            _sent_once(send, landed)

    def logs(self, exec_id: str) -> list[LogRecord]:
        return many(LogRecord, self._get(f"/records/executions/{_p(exec_id)}/logs"))

    # the live feed
    def append_events(
        self, exec_id: str, events: Sequence[EventRecord], *, owner: str, again: bool = False
    ) -> bool:
        # `again` is the server's own rule: a request may reach it twice (a connection
        # cut after it was read is sent again), so every batch leaves out what is stored.
        body = {"owner": owner, "events": to_wire(list(events))}
        return bool(self._runner(exec_id, "events", body)["appended"])

    def events(self, exec_id: str, *, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        params = {"after": after, "limit": min(limit, MAX_PAGE)}
        return many(EventRecord, self._get(f"/records/executions/{_p(exec_id)}/events", params))
