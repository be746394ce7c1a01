"""Deleting executions and keeping a journal to an age (`kitaru executions delete`,
`kitaru gc`, a server's `--retention`).

A collection, in the order it happens:

1. Finish what an earlier one left: objects noted for deletion by a process that died
   before deleting them (`sweep_bytes`).
2. Pick the executions: ended (completed, failed, cancelled; never queued, running or
   waiting) before the cutoff, of the statuses and flow asked, oldest first.
3. Per batch: the journal deletes the rows in one transaction and notes the objects they
   named (kitaru/journal/_retention.py); then every noted object no remaining row names
   is deleted from its store and the note forgotten. Records go before bytes, so no
   record ever names missing bytes; bytes a crash leaves are noted, and step 1 of the
   next collection removes them.

An execution a live replay reuses is kept unless `with_lineage` (the replay keeps the
objects it reuses either way). Deployments record images, not executions, so none
keeps an execution. Through a server (`KITARU_SERVER_URL`) the same runs on the server,
for admin tokens only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from kitaru._errors import KitaruUsageError, NotFoundError
from kitaru.journal import Journal
from kitaru.journal._retention import BATCH, LIVE, NOT_FOUND

ENDED = ("completed", "failed", "cancelled")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
# Objects deleted at once from one store: deletes are small requests, mostly waiting.
_DELETERS = 16

# (done, total) after each batch of executions
Progress = Callable[[int, int], None]


@dataclass
class Report:
    dry_run: bool = False
    deleted: list[str] = field(default_factory=list)
    # exec_id -> why it was kept
    kept: dict[str, str] = field(default_factory=dict)
    objects_deleted: int = 0
    # objects no record named (`orphans`), deleted or, in a dry run, found
    orphans: int = 0
    # store -> why its noted objects are still there (they are deleted next time)
    objects_left: dict[str, str] = field(default_factory=dict)
    # set when a collection stopped at its `limit`: where the next one goes on
    next_after: str | None = None

    def add(self, other: Report) -> None:
        self.deleted.extend(other.deleted)
        self.kept.update(other.kept)
        self.objects_deleted += other.objects_deleted
        self.orphans += other.orphans
        self.objects_left.update(other.objects_left)
        self.next_after = other.next_after

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def parse_age(text: str) -> float:
    """Seconds in an age like `30d`, `12h`, `90m`, `45s`, `2w`."""
    match = _AGE.match(text)
    if match is None:
        raise KitaruUsageError(
            f"{text!r} is not an age; write a number and a unit: 30d, 12h, 90m, 45s or 2w"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_statuses(text: str | None) -> tuple[str, ...]:
    """Statuses from `completed,failed`; only ended ones may be collected."""
    if text is None:
        return ENDED
    asked = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    for status in asked:
        if status in LIVE:
            raise KitaruUsageError(
                f"gc never deletes {status} executions; cancel them first "
                f"(kitaru executions cancel ID) or delete one with "
                f"`kitaru executions delete ID --force`"
            )
        if status not in ENDED:
            raise KitaruUsageError(
                f"unknown status {status!r}; use any of {', '.join(ENDED)} (comma-separated)"
            )
    if not asked:
        raise KitaruUsageError(f"--status is empty; use any of {', '.join(ENDED)}")
    return asked


def _rows(journal: Journal) -> Any:
    """The journal's deleting side, or None when it is a server's (it deletes there)."""
    from kitaru.journal._retention import RetentionRows

    return journal if isinstance(journal, RetentionRows) else None


def collect(
    journal: Journal,
    *,
    older_than: float,
    statuses: Sequence[str] = ENDED,
    flow: str | None = None,
    dry_run: bool = False,
    with_lineage: bool = False,
    now: float | None = None,
    progress: Progress | None = None,
    limit: int | None = None,
    after_id: str | None = None,
    orphans: bool = False,
) -> Report:
    """Delete the executions that ended more than `older_than` seconds ago (at most
    `limit` of them, after `after_id`, when given: `next_after` says where to go
    on). With `orphans`, then list the stores and delete the objects no record names of
    executions that ended, or are gone, before the cutoff (kitaru/_orphans.py)."""
    if older_than < 0:
        raise KitaruUsageError(f"the age must not be negative, not {older_than:g} s")
    rows = _rows(journal)
    if rows is None:
        body = {
            "older_than": older_than,
            "statuses": list(statuses),
            "flow": flow,
            "dry_run": dry_run,
            "with_lineage": with_lineage,
            "orphans": orphans,
        }
        return _remote_pages(journal, body, progress)
    now = time.time() if now is None else now
    report = Report(dry_run=dry_run)
    if not dry_run:
        sweep_bytes(rows, report)
    # Page by page (oldest first, by id), deleting as it goes: a journal of millions
    # never has its ids in memory at once.
    select = {"ended_before": now - older_than, "statuses": list(statuses), "flow": flow}
    total = rows.count_ended(**select) if progress is not None else 0
    if limit is not None:
        total = min(total, limit)
    seen = 0
    cursor = after_id
    while limit is None or seen < limit:
        want = 1000 if limit is None else min(1000, limit - seen)
        page = rows.ended_executions(**select, limit=want, after_id=cursor)
        if not page:
            break
        seen += len(page)
        cursor = page[-1]
        _delete(rows, page, report, statuses=statuses, with_lineage=with_lineage)
        if progress is not None:
            progress(seen, max(total, seen))
        if len(page) < want:
            break
    if limit is not None and seen == limit:
        report.next_after = cursor
    # What another collection (a second replica) deleted meanwhile is no news.
    report.kept = {i: why for i, why in report.kept.items() if why != NOT_FOUND}
    if orphans and report.next_after is None:
        _sweep_orphans(rows, report, cutoff=now - older_than)
    return report


def _sweep_orphans(rows: Any, report: Report, *, cutoff: float) -> None:
    from kitaru import _config, _orphans
    from kitaru.artifacts import open_store

    for root in _orphans.stores(rows, _config.artifact_store_uri()):
        try:
            store = open_store(root)
            keys = _orphans.find(rows, store, cutoff=cutoff)
            if not report.dry_run:
                with ThreadPoolExecutor(_DELETERS, thread_name_prefix="kitaru-gc") as pool:
                    list(pool.map(store.delete, keys))
        except Exception as exc:  # one store that cannot be listed stops no other
            report.objects_left[root] = f"orphans not swept: {exc}"
            continue
        report.orphans += len(keys)


def delete(
    journal: Journal,
    exec_ids: Sequence[str],
    *,
    force: bool = False,
    with_lineage: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Delete these executions: every one must exist, none may still be going unless
    `force`, and none may be reused by a live replay unless `with_lineage`; otherwise
    nothing is deleted."""
    if not exec_ids:
        raise KitaruUsageError("name at least one execution id (kx_...)")
    rows = _rows(journal)
    if rows is None:
        report = Report(dry_run=dry_run)
        ids = list(dict.fromkeys(exec_ids))
        for start in range(0, len(ids), REMOTE_PAGE):
            body: dict[str, Any] = {
                "exec_ids": ids[start : start + REMOTE_PAGE],
                "force": force,
                "with_lineage": with_lineage,
                "dry_run": dry_run,
            }
            report.add(_remote(journal, "delete", body))
            if progress is not None:
                progress(min(start + REMOTE_PAGE, len(ids)), len(ids))
        return report
    ids = list(dict.fromkeys(exec_ids))
    records = {i: journal.get_execution(i) for i in ids}
    unknown = [i for i, r in records.items() if r is None]
    if unknown:
        raise NotFoundError(
            f"no execution {', '.join(unknown)}; nothing was deleted (see: kitaru executions list)"
        )
    going = [f"{i} is {r.status}" for i, r in records.items() if r and r.status in LIVE]
    if going and not force:
        raise KitaruUsageError(
            f"{'; '.join(going)}: cancel first (kitaru executions cancel ID), or pass --force "
            "to delete it anyway; nothing was deleted"
        )
    replays = {}
    for start in range(0, len(ids), BATCH):
        replays.update(rows.live_replays(ids[start : start + BATCH]))
    if replays and not with_lineage:
        said = "; ".join(f"replay {c} of {s} is still going" for s, c in replays.items())
        raise KitaruUsageError(
            f"{said}: wait for it, or pass --with-lineage to delete the source anyway (the "
            "replay keeps the outputs it reuses); nothing was deleted"
        )
    report = Report(dry_run=dry_run)
    if not dry_run:
        sweep_bytes(rows, report)
    _delete(
        rows,
        ids,
        report,
        statuses=None if force else ENDED,
        with_lineage=with_lineage,
        progress=progress,
    )
    return report


def _delete(
    rows: Any,
    ids: list[str],
    report: Report,
    *,
    statuses: Sequence[str] | None,
    with_lineage: bool,
    progress: Progress | None = None,
) -> None:
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        if report.dry_run:
            kept = {} if with_lineage else rows.live_replays(batch)
            for source, child in kept.items():
                report.kept[source] = f"replay {child} of it is still going"
            report.deleted.extend(i for i in batch if i not in kept)
        else:
            done = rows.delete_executions(
                batch, statuses=statuses, with_lineage=with_lineage, now=time.time()
            )
            report.deleted.extend(done.deleted)
            report.kept.update(done.kept)
            if done.objects:
                sweep_bytes(rows, report)
        if progress is not None:
            progress(min(start + BATCH, len(ids)), len(ids))


def sweep_bytes(rows: Any, report: Report) -> None:
    """Delete the noted objects that no row names any more, and forget their notes.

    A note of an object some row still names is kept, not forgotten: that row may be
    one another collection is deleting right now (its note of the same object was
    folded into this one), and once it is gone the note is what gets the object
    deleted; if the row lives on, later sweeps look again."""
    from kitaru.artifacts import open_store

    after = ""
    while True:
        noted: list[tuple[str, str]] = rows.pending_bytes(after=after, limit=1000)
        if not noted:
            return
        after = noted[-1][1]
        still = rows.referenced_bytes([uri for _store, uri in noted])
        by_store: dict[str, list[str]] = {}
        for root, uri in noted:
            if uri not in still:
                by_store.setdefault(root, []).append(uri)
        forget: list[str] = []
        for root, uris in by_store.items():
            try:
                store = open_store(root)
                keys = [store.key_of(u) for u in uris]
                with ThreadPoolExecutor(_DELETERS, thread_name_prefix="kitaru-gc") as pool:
                    list(pool.map(store.delete, keys))
            except Exception as exc:  # a store that cannot delete keeps its notes
                report.objects_left[root] = f"{len(uris)} objects: {exc}"
                continue
            report.objects_deleted += len(uris)
            forget.extend(uris)
        rows.forget_bytes(forget)


# Executions a server considers per request: each answers well within a client's timeout.
REMOTE_PAGE = 1000


def _remote(journal: Journal, op: str, body: dict[str, Any]) -> Report:
    retention = getattr(journal, "retention", None)
    if retention is None:
        raise KitaruUsageError(f"the journal at {journal.url} cannot delete executions")
    return Report.from_dict(retention(op, body))


def _remote_pages(journal: Journal, body: dict[str, Any], progress: Progress | None) -> Report:
    """A collection through a server, a page of executions per request."""
    report = Report(dry_run=bool(body["dry_run"]))
    after: str | None = None
    while True:
        page = _remote(journal, "gc", {**body, "limit": REMOTE_PAGE, "after_id": after})
        report.add(page)
        if progress is not None:
            done = len(report.deleted) + len(report.kept)
            progress(done, done + (REMOTE_PAGE if page.next_after else 0))
        after = page.next_after
        if after is None:
            return report
