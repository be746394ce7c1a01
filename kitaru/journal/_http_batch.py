"""Checkpoint commits that end together travel together to the server.

Several executions in one process (a worker's, a script's threads) or a flow's parallel
checkpoints each commit their calls through the same `HttpJournal` and each wait for
the answer. A commit that finds no request of its own kind on the way goes at once, on
the single route (`POST /api/v1/runner/executions/{id}/calls`): a lone flow waits for
nothing new. Commits that arrive while IN_FLIGHT such requests are on their way wait
for one to end and then go together in one request (`POST /api/v1/runner/calls`), sent
by the first of them; the server stores them in one transaction
(kitaru/server/_group_commit.py) with one answer per commit.

Each commit keeps what it had alone: it returns once the server answered that it is
stored (or fenced: False); a lost answer raises `ServerUnreachableError` to each commit
of the request, which then reads whether its call landed before it is sent again
(`_sent_once`); a request refused as a whole (a bad record in one commit, a server
without the route) is sent again commit by commit, so each gets its own answer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from kitaru._errors import KitaruError, NotFoundError, ServerUnreachableError

# Requests of commits on their way at once from this process (the server works on the
# next while this process reads the answer to the last).
IN_FLIGHT = 1
# The most commits and bytes in one request (the server's JSON limit is 4 MiB).
MAX_COMMITS = 64
MAX_BYTES = 512 * 1024


class _Commit:
    __slots__ = ("body", "done", "error", "exec_id", "ok", "taken")

    def __init__(self, exec_id: str, body: bytes) -> None:
        self.exec_id = exec_id
        self.body = body
        self.taken = self.done = self.ok = False
        self.error: BaseException | None = None

    def answer(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.ok


class CommitBatches:
    """The commits of one `HttpJournal` waiting to be sent."""

    def __init__(self, post: Callable[[str, bytes], Any]) -> None:
        self._post = post  # (path, JSON body) -> the answer's JSON
        self._cond = threading.Condition()
        self._queue: deque[_Commit] = deque()
        self._sending = 0
        self._one_by_one = False  # the server has no batch route

    def commit(self, exec_id: str, body: bytes) -> bool:
        """Send one commit (`body`: the single route's JSON) and wait for its answer."""
        mine = _Commit(exec_id, body)
        cond = self._cond
        with cond:
            self._queue.append(mine)
        while True:
            with cond:
                while not mine.done and (mine.taken or self._sending >= IN_FLIGHT):
                    cond.wait()
                if mine.done:
                    return mine.answer()
                self._sending += 1
                batch = self._take()
            try:
                self._deliver(batch)
            finally:
                with cond:
                    self._sending -= 1
                    cond.notify_all()

    def _take(self) -> list[_Commit]:
        # (under the lock) The oldest commits waiting, within the request's bounds.
        batch: list[_Commit] = []
        size = 0
        queue = self._queue
        while queue and len(batch) < MAX_COMMITS:
            if batch and size + len(queue[0].body) > MAX_BYTES:
                break
            one = queue.popleft()
            one.taken = True
            size += len(one.body)
            batch.append(one)
        return batch

    def _deliver(self, batch: list[_Commit]) -> None:
        try:
            if len(batch) == 1 or self._one_by_one:
                for one in batch:
                    self._alone(one)
                return
            try:
                body = b'{"commits":[' + b",".join(one.body for one in batch) + b"]}"
                answers = self._post("/runner/calls", body)["committed"]
                if not isinstance(answers, list) or len(answers) != len(batch):
                    raise KitaruError("the server answered a batch of commits out of shape")
            except ServerUnreachableError as exc:
                for one in batch:  # each reads whether its call landed (`_sent_once`)
                    one.error, one.done = exc, True
                return
            except KitaruError as exc:
                # Refused as a whole: each alone, for its own answer.
                self._one_by_one = self._one_by_one or isinstance(exc, NotFoundError)
                for one in batch:
                    self._alone(one)
                return
            for one, ok in zip(batch, answers, strict=True):
                one.ok, one.done = bool(ok), True
        except BaseException:
            lost = ServerUnreachableError("the thread sending this commit was interrupted")
            for one in batch:
                if not one.done:
                    one.error, one.done = lost, True
            raise

    def _alone(self, one: _Commit) -> None:
        try:
            answer = self._post(f"/runner/executions/{quote(one.exec_id, safe='')}/calls", one.body)
            one.ok = bool(answer["committed"])
        except Exception as exc:
            one.error = exc
        one.done = True
