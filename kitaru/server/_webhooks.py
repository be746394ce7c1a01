"""Signed, expiring URLs that answer one wait without an API token.

The signature is an HMAC-SHA256, under the server's secret, of the execution, the
wait key and the expiry time: the URL answers exactly that wait until then, and
nothing else. The secret comes from KITARU_SERVER_SECRET or, when unset, is created
once in the journal so that every server replica signs and checks alike.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode


def _message(exec_id: str, key: str, expires: int) -> bytes:
    return f"wait\n{exec_id}\n{key}\n{expires}".encode()


def sign(secret: bytes, exec_id: str, key: str, expires: int) -> str:
    return hmac.new(secret, _message(exec_id, key, expires), hashlib.sha256).hexdigest()


def url(base: str, secret: bytes, exec_id: str, key: str, expires_in: float) -> tuple[str, int]:
    """(the webhook URL, its expiry as a Unix time)."""
    expires = int(time.time() + expires_in)
    query = urlencode({"expires": expires, "sig": sign(secret, exec_id, key, expires)})
    path = f"/api/v1/hooks/waits/{quote(exec_id, safe='')}/{quote(key, safe='')}"
    return f"{base.rstrip('/')}{path}?{query}", expires


def check(secret: bytes, exec_id: str, key: str, expires: int, sig: str) -> bool:
    if expires < time.time():
        return False
    return hmac.compare_digest(sign(secret, exec_id, key, expires), sig)


def csrf_token(secret: bytes, token_id: str) -> str:
    """What the web UI's pages send back with a change, tied to the signed-in token."""
    return hmac.new(secret, f"csrf\n{token_id}".encode(), hashlib.sha256).hexdigest()[:32]
