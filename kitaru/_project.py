"""Where a flow's code may come from when its record came from a server.

A record names code: the script file of a flow (`__main__:name`), or its module and the
sys.path entry it was imported from, and for a run on a stack the directory the run
starts in (`project_root`). Through a server, anyone with a write token writes those,
and the server's artifact store API writes files: a resume that imported what a record
named ran an uploaded file on a developer's machine, and a `python -m kitaru` started
in an uploaded folder ran that folder's `kitaru` package, with the developer's token
in its environment.

So a client working through a server (KITARU_SERVER_URL) loads a flow only from the
project the command runs in: the current directory, or the one given with `--project
DIR` (KITARU_PROJECT), and inside a container the image's project
(KITARU_PROJECT_ROOT). Never from inside an artifact store on this machine or
KITARU_HOME, wherever the project is. A module flow must be found in the project,
not anywhere on sys.path.

A process with its own journal (SQLite, PostgreSQL) loads what its records name from
any directory, as before (kitaru/_trust.py says why).
"""

from __future__ import annotations

import importlib.machinery
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from kitaru import _config, _trust
from kitaru._errors import KitaruUsageError
from kitaru.journal import ExecutionRecord, Journal


def roots() -> list[Path]:
    """The directories this command's project is in: `--project` (or the current
    directory), and a container's image project."""
    found = [Path(os.environ.get("KITARU_PROJECT") or os.getcwd())]
    image = os.environ.get("KITARU_PROJECT_ROOT")
    if image:
        found.append(Path(image))
    return [p.resolve() for p in found]


def _store_path(uri: str | None) -> Path | None:
    if not uri or not uri.startswith("file:"):
        return None
    return Path(unquote(urlparse(uri).path)).expanduser().resolve()


def _off_limits(journal: Journal, record: ExecutionRecord) -> list[Path]:
    """Where files arrive from outside: artifact stores on this machine, KITARU_HOME."""
    from kitaru.journal._http import HttpJournal

    uris = [record.artifact_store]
    if isinstance(journal, HttpJournal):
        uris += journal.served_stores()
    if os.environ.get("KITARU_ARTIFACT_STORE"):
        uris.append(os.environ["KITARU_ARTIFACT_STORE"])
    found = [p for p in (_store_path(u) for u in uris) if p is not None]
    return [_config.home().resolve(), *found]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _refuse(record: ExecutionRecord, what: str, path: object, why: str) -> KitaruUsageError:
    return KitaruUsageError(
        f"execution {record.exec_id} names {what} {path}, {why}; a record from a server "
        "is anyone's with a write token to write, so its code is loaded only from the "
        "project this command runs in. Run the command in the flow's project, or give "
        f"it with --project DIR (now: {', '.join(str(r) for r in roots())})"
    )


def check_path(journal: Journal, record: ExecutionRecord, what: str, raw: str) -> Path:
    """`raw` resolved, if it is inside this command's project and outside every place
    files arrive from outside; a usage error naming the fix otherwise."""
    path = Path(raw).resolve()
    for banned in _off_limits(journal, record):
        if _inside(path, banned):
            raise _refuse(record, what, raw, f"inside {banned}, where files arrive from outside")
    if not any(_inside(path, root) for root in roots()):
        raise _refuse(record, what, raw, "outside this project")
    return path


def check_code(journal: Journal, record: ExecutionRecord) -> None:
    """Raise unless the flow's code, as the record names it, may be loaded here. An
    imported execution (kitaru/_portable.py) is checked like a server's record: its
    bundle came from someone else."""
    if _trust.trusts_records(journal) and "imported" not in record.metadata:
        return
    module, _, _ = record.flow_ref.partition(":")
    if record.import_path:
        check_path(journal, record, "the import path", record.import_path)
    if module == "__main__":
        if record.flow_file:
            check_path(journal, record, "the flow file", record.flow_file)
        return
    search = [record.import_path] if record.import_path else [str(r) for r in roots()]
    _check_module(journal, record, module, search)


def _check_module(
    journal: Journal, record: ExecutionRecord, module: str, search: Iterable[str]
) -> None:
    """The module's top-level package must be a file or folder of the project: found on
    `search` alone, without importing anything."""
    top = module.split(".", maxsplit=1)[0]
    spec = importlib.machinery.PathFinder.find_spec(top, list(search))
    if spec is None:
        raise _refuse(record, "the module", repr(module), "which is not in this project")
    places = list(spec.submodule_search_locations or []) or [spec.origin or ""]
    for place in places:
        check_path(journal, record, "the module", place)


def check_run_directory(journal: Journal, record: ExecutionRecord) -> None:
    """Raise unless the directory a resubmitted run would start in may be used here."""
    if _trust.trusts_records(journal) or not record.project_root:
        return
    check_path(journal, record, "the project directory", record.project_root)
