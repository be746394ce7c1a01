"""Whether a process may act on what a record says: where its code is, which Python
runs it, which process or run it names.

A process that opens its journal itself (SQLite, PostgreSQL) trusts the records in it,
as before: whoever can write those tables can run anything on that machine already.
A client that works through a server (KITARU_SERVER_URL) reads records that anyone
holding a write token may have written, so it acts on none of their code locations
(kitaru/_project.py), interpreters, process ids or run ids (kitaru/stacks/_runs.py)
unless they are its own, and a server acts on none that came over its API.
"""

from __future__ import annotations

from kitaru.journal import Journal

_serving = False


def serve() -> None:
    """This process is a server: the records in its journal came over its API."""
    global _serving
    _serving = True


def serving() -> bool:
    return _serving


def from_server(journal: Journal) -> bool:
    """Whether `journal` is a server's API, whose records anyone with a write token writes."""
    return journal.url.startswith(("http://", "https://"))


def trusts_records(journal: Journal) -> bool:
    """Whether this process may take `journal`'s records at their word."""
    return not _serving and not from_server(journal)
