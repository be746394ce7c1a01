"""API tokens, as the server's routes and the CLI use them.

They live in kitaru/_tokens.py, under the stacks that mint a run token for each
container they start; this module keeps the names the server has always imported.
"""

from __future__ import annotations

from kitaru._tokens import (
    PREFIX,
    RUN_PREFIX,
    RUN_SCOPE,
    SCOPES,
    Caller,
    _insert,
    create,
    mint_run_token,
    revoke,
    revoke_finished_runs,
    token_store,
    verify,
)

__all__ = [
    "PREFIX",
    "RUN_PREFIX",
    "RUN_SCOPE",
    "SCOPES",
    "Caller",
    "_insert",
    "create",
    "mint_run_token",
    "revoke",
    "revoke_finished_runs",
    "token_store",
    "verify",
]
