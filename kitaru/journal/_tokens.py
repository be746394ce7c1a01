"""API tokens and server secrets in the SQL journals (schema version 2).

These are not part of the `Journal` protocol: only a process that opens the journal
directly (the server, `kitaru server token ...`) manages them, never a client that
reaches the journal through the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kitaru.journal import _records

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import TokenRecord

TOKEN_COLS = "token_id, name, scope, token_hash, created_at, revoked_at, last_used_at"


class TokenRows:
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def create_token(self, token: TokenRecord) -> None:
        t = token
        with self._tx() as conn:
            conn.execute(
                self._sql(f"INSERT INTO api_tokens ({TOKEN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                (
                    t.token_id,
                    t.name,
                    t.scope,
                    t.token_hash,
                    t.created_at,
                    t.revoked_at,
                    t.last_used_at,
                ),
            )

    def get_token(self, token_id: str) -> TokenRecord | None:
        row = self._x(
            f"SELECT {TOKEN_COLS} FROM api_tokens WHERE token_id = ?", (token_id,)
        ).fetchone()
        return _records.TokenRecord(*row) if row else None

    def list_tokens(self) -> list[TokenRecord]:
        rows = self._x(f"SELECT {TOKEN_COLS} FROM api_tokens ORDER BY created_at").fetchall()
        return [_records.TokenRecord(*r) for r in rows]

    def live_tokens(self, name_prefix: str) -> list[TokenRecord]:
        """Tokens not revoked whose name starts with `name_prefix`."""
        pattern = "".join("!" + c if c in "!%_" else c for c in name_prefix) + "%"
        rows = self._x(
            f"SELECT {TOKEN_COLS} FROM api_tokens WHERE revoked_at IS NULL "
            "AND name LIKE ? ESCAPE '!' ORDER BY created_at",
            (pattern,),
        ).fetchall()
        # SQLite's LIKE ignores ASCII case; the prefix is meant exactly.
        return [_records.TokenRecord(*r) for r in rows if r[1].startswith(name_prefix)]

    def revoke_token(self, token_id: str, *, now: float) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL"
                ),
                (now, token_id),
            )
            return bool(cur.rowcount == 1)

    def touch_token(self, token_id: str, *, now: float) -> None:
        with self._tx() as conn:
            conn.execute(
                self._sql("UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?"),
                (now, token_id),
            )

    def server_secret(self, name: str) -> str:
        """The secret called `name`, created (random, 32 bytes) by whoever asks first."""
        import secrets
        import time

        with self._tx() as conn:
            conn.execute(
                self._sql(
                    "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO NOTHING"
                ),
                (name, secrets.token_hex(32), time.time()),
            )
            row = conn.execute(
                self._sql("SELECT value FROM server_secrets WHERE name = ?"), (name,)
            ).fetchone()
            return str(row[0])
