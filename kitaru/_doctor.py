"""`kitaru doctor`: what is set up, what is broken, and how to fix it.

The checks run in the order a problem would show: the home directory, the journal
(readable, intact, its schema version), the artifact store, the active stack (its
flavor installed, its journal, bucket, registry and platform answering), and the
extras installed. Each check reads only: the doctor never creates, migrates or repairs
anything, so running it on a damaged setup changes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlparse

from kitaru import _config
from kitaru._errors import KitaruError

Status = Literal["ok", "warning", "error", "skipped", "info"]


@dataclass
class Check:
    name: str
    status: Status
    summary: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks() -> list[Check]:
    checks = [_home()]
    journal = _journal()
    checks.append(journal)
    checks.append(_artifact_store())
    if journal.status != "ok":
        checks.append(Check("stack", "skipped", "stacks live in the journal, which cannot be read"))
    elif _NOT_YET in journal.summary:
        checks.append(Check("stack", "ok", "local (this machine; nothing registered yet)"))
    else:
        checks.append(_stack())
    checks.append(_extras())
    checks.append(_tracing_check())
    return checks


_NOT_YET = "not created yet"


def _home() -> Check:
    path = _config.home_path()
    if not path.exists():
        return Check("home", "ok", f"{path}: {_NOT_YET} (made when first used)")
    try:
        path = _config.home()
    except KitaruError as exc:
        return Check("home", "error", str(exc))
    if not _config.writable(path):
        return Check(
            "home",
            "warning",
            f"{path} is read-only: reading executions works, running flows does not",
            "set KITARU_HOME to a directory you can write to run flows",
        )
    return Check("home", "ok", str(path))


# -- journal ------------------------------------------------------------------------------


def _journal() -> Check:
    if os.environ.get("KITARU_SERVER_URL") or os.environ.get("KITARU_JOURNAL_URL"):
        url = _config.journal_url()
    else:  # the default, found without creating KITARU_HOME
        home = _config.home_path()
        if home.exists() and not home.is_dir():
            return Check("journal", "skipped", "the journal lives in KITARU_HOME, which is a file")
        url = "sqlite:///" + str(home / "journal.db")
    if url.startswith(("http://", "https://")):
        return _server_journal(url)
    if url.startswith("sqlite:"):
        rest = url.partition("://")[2]
        return _sqlite_journal(Path(rest[1:] if rest.startswith("//") else rest).expanduser())
    return _other_journal(url)


def _no_tables(path: Path) -> Check:
    """A journal file without tables: one a first run is making this moment, or one
    emptied or copied without its `-wal` file (its tables are in there)."""
    import time

    if time.time() - path.stat().st_mtime < 10:
        return Check("journal", "ok", f"{path}: {_NOT_YET} (the first execution makes it)")
    return Check(
        "journal",
        "warning",
        f"{path} holds no tables: it was emptied, or copied without its {path.name}-wal file",
        f"copy {path.name}-wal beside it (executions stored there show again), or remove "
        "it: the next execution starts a new journal",
    )


def _sqlite_journal(path: Path) -> Check:
    from kitaru.journal._migrations import LATEST

    if not path.exists():
        return Check("journal", "ok", f"{path}: {_NOT_YET} (the first execution makes it)")
    try:
        # Read-only, so that the doctor changes nothing (not even a migration).
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)").fetchall()]
            if problems != ["ok"]:
                return _damaged(path, "; ".join(problems))
            if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
                return _no_tables(path)
            version = conn.execute("SELECT MAX(version) FROM kitaru_schema").fetchone()[0]
            executions = conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if type(exc) is sqlite3.DatabaseError or "malformed" in str(exc):
            return _damaged(path, str(exc))
        return Check(
            "journal",
            "error",
            f"{path} cannot be read ({exc})",
            "check the file's permissions, or point KITARU_HOME / KITARU_JOURNAL_URL elsewhere",
        )
    return _schema(f"{path}", int(version or 0), LATEST, executions)


def _schema(where: str, version: int, latest: int, executions: int) -> Check:
    if version > latest:
        return Check(
            "journal",
            "error",
            f"{where}: schema version {version}, newer than this kitaru understands ({latest})",
            "upgrade kitaru: pip install -U kitaru",
        )
    note = "current" if version == latest else f"upgraded to {latest} on the next write"
    return Check(
        "journal",
        "ok",
        f"{where}: schema version {version} ({note}), intact, {executions} execution(s)",
    )


def _damaged(path: Path, reason: str) -> Check:
    """What to do about a journal file that is not a readable database. The steps keep
    the damaged file: recovering is copying what is readable into a new one."""
    home = path.parent
    tool = (
        ""
        if shutil.which("sqlite3")
        else " (the sqlite3 command-line tool: apt-get install sqlite3, brew install sqlite)"
    )
    fix = (
        f"the file is {path}. Nothing reads or changes it while it is damaged, and artifact "
        f"files (under {home / 'artifacts'} by default) are untouched. SQLite can copy what "
        f'is readable into a new file{tool}: cd "{home}" && sqlite3 journal.db ".recover" '
        "| sqlite3 recovered.db && mv journal.db journal.db.damaged && mv recovered.db "
        "journal.db. Executions whose rows are lost are gone from the journal; their "
        "artifact files stay on disk"
    )
    return Check("journal", "error", f"{path} is damaged ({reason})", fix)


def _other_journal(url: str) -> Check:
    from kitaru.journal import open_journal
    from kitaru.journal._migrations import LATEST

    shown = _without_password(url)
    try:
        journal = open_journal(url)
        version = journal.schema_version()  # type: ignore[attr-defined]
        executions = len(journal.list_executions(limit=100000))
    except KitaruError as exc:
        return Check("journal", "error", f"{shown}: {exc}")
    return _schema(shown, int(version), LATEST, executions)


def _server_journal(url: str) -> Check:
    import httpx

    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=5.0)
    except httpx.HTTPError as exc:
        return Check(
            "journal",
            "error",
            f"the Kitaru server at {url} does not answer ({type(exc).__name__}: {exc})",
            "check KITARU_SERVER_URL and that the server runs (kitaru server start)",
        )
    if response.status_code != 200:
        return Check("journal", "error", f"{url}/health answered {response.status_code}")
    token = "set" if os.environ.get("KITARU_API_TOKEN") else "not set"
    return Check("journal", "ok", f"the Kitaru server at {url} (KITARU_API_TOKEN {token})")


def _without_password(url: str) -> str:
    parts = urlparse(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


# -- artifact store, stack, extras ---------------------------------------------------------


def _artifact_store() -> Check:
    from kitaru.artifacts import open_store

    uri = os.environ.get("KITARU_ARTIFACT_STORE") or ""
    if not uri and os.environ.get("KITARU_SERVER_URL"):
        return Check("artifacts", "ok", "kept by the Kitaru server (KITARU_SERVER_URL)")
    if not uri:
        home = _config.home_path()
        if home.exists() and not home.is_dir():
            return Check("artifacts", "skipped", "artifacts live in KITARU_HOME, which is a file")
        uri = (home / "artifacts").as_uri()
    if uri.startswith("file:"):
        root = Path(unquote(urlparse(uri).path))
        if root.is_dir() and not _config.writable(root):
            return Check(
                "artifacts",
                "warning",
                f"{uri}: read-only (stored artifacts can be read, new ones not written)",
                "set KITARU_ARTIFACT_STORE to a directory you can write to run flows",
            )
        if not root.exists():
            return Check("artifacts", "ok", f"{uri}: {_NOT_YET} (made when first used)")
    try:
        open_store(uri)
    except KitaruError as exc:
        return Check("artifacts", "error", str(exc))
    return Check("artifacts", "ok", f"{uri}: reachable")


def _stack() -> Check:
    from kitaru import stacks
    from kitaru.journal import current_journal

    try:
        journal = current_journal()
        name, source = stacks.active_name(journal)
        record = stacks.resolve(journal)
        if record.name == stacks.LOCAL:
            return Check("stack", "ok", f"local (this machine; active: {source})")
        from kitaru.stacks._flavor import find_flavor
        from kitaru.stacks._stacks import check_reachable

        check_reachable(record, find_flavor(record.orchestrator))
    except KitaruError as exc:
        return Check(
            "stack",
            "error",
            str(exc),
            "fix the stack (kitaru stack show), or go back to this machine: kitaru stack use local",
        )
    return Check(
        "stack",
        "ok",
        f"{name} ({record.orchestrator}; active: {source}): journal, artifact store, "
        "registry and platform answer",
    )


_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def installed_extras() -> tuple[list[str], list[str]]:
    """(installed, missing) extras of the kitaru distribution, by whether every
    distribution an extra asks for is installed."""
    try:
        requires = metadata.requires("kitaru") or []
    except metadata.PackageNotFoundError:
        return [], []
    needs: dict[str, list[str]] = {}
    for requirement in requires:
        found = _EXTRA_MARKER.search(requirement)
        if found is None:
            continue
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        needs.setdefault(found.group(1), []).append(name)
    installed: list[str] = []
    missing: list[str] = []
    for extra, names in sorted(needs.items()):
        if extra == "all":
            continue
        (installed if all(_has(n) for n in names) else missing).append(extra)
    return installed, missing


def _has(distribution: str) -> bool:
    if distribution == "kitaru":
        return True
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def _extras() -> Check:
    installed, missing = installed_extras()
    text = f"installed: {', '.join(installed) or 'none'}"
    if missing:
        text += f"; not installed: {', '.join(missing)}"
    return Check(
        "extras",
        "info",
        text,
        f'add one with: pip install "kitaru[{missing[0]}]"' if missing else None,
    )


def _tracing_check() -> Check:
    """Whether runs started here are traced (docs/observability.md), from the environment."""
    import os

    from kitaru import _tracing

    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return Check("tracing", "info", "off: no OTEL_EXPORTER_OTLP_ENDPOINT set")
    if not _tracing.sdk_installed():
        return Check(
            "tracing",
            "warning",
            f"off: an OTLP endpoint is set ({endpoint}) but the OpenTelemetry SDK is not installed",
            'pip install "kitaru[otel]"',
        )
    if not _tracing.configured():
        return Check("tracing", "info", "off: OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none")
    return Check("tracing", "ok", f"on: spans go to {endpoint} over OTLP/HTTP")


def header() -> str:
    from kitaru._version import __version__

    python = ".".join(str(n) for n in sys.version_info[:3])
    return f"kitaru {__version__}, Python {python} ({sys.executable})"
