"""How a container started for an execution reaches the journal it reports to.

The first case that applies decides:

1. The stack has its own `--journal`: `KITARU_JOURNAL_URL`, that URL or the secret
   reference holding it.
2. The submitting process uses a server (`KITARU_SERVER_URL`): `KITARU_SERVER_URL` as the
   submitter reaches it, and `KITARU_API_TOKEN` from the stack's
   `secret_environment.KITARU_API_TOKEN`, else `env:KITARU_API_TOKEN` (the submitter's
   own token, read where it submits).
3. The submitter is the server (re-submitting after an answer, a resume or a sweep, or
   invoking a deployment): `KITARU_SERVER_URL` is the server's own public URL, from its
   configuration (`--public-url`), never from a record or a request; `KITARU_API_TOKEN`
   is the stack's token reference, else a run token minted for this run alone
   (`run-<exec_id>`, which reaches only this execution).
4. Otherwise `KITARU_JOURNAL_URL`: the submitter's journal.

A container on a server's path holds no database URL; artifacts in a store the server
serves go through the server too (`kitaru.artifacts` asks it when `KITARU_SERVER_URL` is
set), so it needs no bucket credentials either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kitaru import _config
from kitaru.journal import ExecutionRecord, Journal, StackRecord
from kitaru.stacks._secrets import SecretRef, is_reference

TOKEN = "KITARU_API_TOKEN"
SUBMITTERS_TOKEN = SecretRef("env", TOKEN)


@dataclass(frozen=True, slots=True)
class Reporting:
    """What the container's environment gets so it can reach the journal; `server_url`
    is the server it reports to, if any."""

    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    server_url: str | None = None


def reporting(
    journal: Journal,
    record: ExecutionRecord,
    stack: StackRecord,
    stack_secrets: Mapping[str, SecretRef],
    server_url: str | None = None,
) -> Reporting:
    """How the container for this run of `record` reaches its journal.

    `journal` is where the submitting process found the execution; `stack_secrets` the
    stack's `secret_environment`; `server_url` the public URL of the server that submits
    (given only by a server, from its configuration). The server's own path mints a
    token: call this only once the execution is `queued`."""
    if stack.journal is not None:
        if is_reference(stack.journal):
            return Reporting(
                secrets={"KITARU_JOURNAL_URL": SecretRef.parse(stack.journal, what="--journal")}
            )
        return Reporting(environment={"KITARU_JOURNAL_URL": stack.journal})
    token = stack_secrets.get(TOKEN)
    submitters_server = _server_url(journal)
    if submitters_server is not None:
        return Reporting(
            environment={"KITARU_SERVER_URL": submitters_server},
            secrets={TOKEN: token or SUBMITTERS_TOKEN},
            server_url=submitters_server,
        )
    if server_url:
        if token is not None:
            return Reporting(
                environment={"KITARU_SERVER_URL": server_url},
                secrets={TOKEN: token},
                server_url=server_url,
            )
        if _holds_tokens(journal):
            from kitaru._tokens import mint_run_token

            return Reporting(
                environment={
                    "KITARU_SERVER_URL": server_url,
                    # A value, not a reference: minted here for this run only, it travels
                    # in the run's spec as a resolved env: reference would, and stops
                    # working when the run ends or the next run's token is minted.
                    TOKEN: mint_run_token(journal, record.exec_id),
                },
                server_url=server_url,
            )
    return Reporting(environment={"KITARU_JOURNAL_URL": _config.journal_url()})


def _server_url(journal: Journal) -> str | None:
    """The server's URL if `journal` is one reached over HTTP."""
    from kitaru.remote import HttpJournal

    return journal.url if isinstance(journal, HttpJournal) else None


def _holds_tokens(journal: Journal) -> bool:
    from kitaru.journal._tokens import TokenRows

    return isinstance(journal, TokenRows)
