"""Group commit: the checkpoint calls that reach the server together are committed together.

A running execution commits each checkpoint call through the runner API and waits for
the answer (the call is recorded before it returns to the flow). With many executions
at once, each commit used to cost a trip to a worker thread and a transaction of its
own. Here the first commit to arrive is sent to a worker thread at once; the commits
that arrive while it runs wait for it to end and then go together, in one transaction
(`SqlJournal.commit_calls`), from one trip to a worker thread. A lone execution waits
for nothing it did not wait for before; under load, a batch grows with what arrives
during the one before it.

Each commit keeps its own answer: a call whose owner no longer holds the lease answers
False (the lease fences it) while the others in its batch are stored. When a batch
fails, nothing of it was stored, or (its acknowledgement lost) all of it: each commit is
then checked (the call row at its number, as `kitaru/journal/_settled.py` reads it) and
committed alone if it did not land, so each request gets the answer or the error it
would have got alone, and nothing is written twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from kitaru.journal import ArtifactRecord, CallRecord, Journal, LogRecord
from kitaru.journal import _settled as settled
from kitaru.journal._calls import Commit
from kitaru.journal._retry import retried
from kitaru.journal._sql import SqlJournal

# The most commits in one transaction: a batch is one request's worth of waiting.
MAX_BATCH = 256


class GroupCommit:
    """Batches `commit_call` of one journal (created and used on the server's event loop)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._waiting: list[tuple[Commit, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def commit(
        self,
        call: CallRecord,
        output: ArtifactRecord | None,
        logs: Sequence[LogRecord],
        owner: str,
    ) -> bool:
        return (await self.commit_many([(call, output, logs, owner)]))[0]

    async def commit_many(self, commits: Sequence[Commit]) -> list[bool]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commits]
        self._waiting.extend(zip(commits, futures, strict=True))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        # Shielded: a client that goes away does not take its commit out of a batch.
        answers = await asyncio.shield(asyncio.gather(*futures, return_exceptions=True))
        done: list[bool] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            done.append(answer)
        return done

    async def _drain(self) -> None:
        batch: list[tuple[Commit, asyncio.Future[bool]]] = []
        try:
            while self._waiting:
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                commits = [c for c, _ in batch]
                try:
                    answers: list[Any] = await run_in_threadpool(self._commit, commits)
                except Exception as exc:  # handed to each request of the batch
                    answers = [exc] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        except BaseException:  # the server stopping: its requests end with it
            for _, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting.clear()
            raise
        finally:
            self._task = None

    def _commit(self, commits: list[Commit]) -> list[bool | BaseException]:
        """(in a worker thread) Each commit's answer, or the error it raised alone."""
        journal = self.journal
        sql = journal if len(commits) > 1 and isinstance(journal, SqlJournal) else None
        if sql is not None:
            try:
                return list(sql.commit_calls(commits))
            except Exception:
                pass
        out: list[bool | BaseException] = []
        for call, output, logs, owner in commits:
            try:
                if sql is not None and _landed(sql, call):
                    out.append(True)
                else:
                    out.append(journal.commit_call(call, output, logs, owner=owner))
            except Exception as exc:  # this request's own error, raised in its request
                out.append(exc)
        return out


@retried()
def _landed(journal: SqlJournal, call: CallRecord) -> bool:
    """Whether the failed batch stored this call after all (its acknowledgement lost):
    the row at its number holds this very call (kitaru/journal/_settled.py)."""
    return settled.commit_call(journal, call, None, (), owner="") is True
