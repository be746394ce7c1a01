"""Sortable ids: a prefix, then 48 bits of milliseconds and 64 random bits, in hex."""

from __future__ import annotations

import random
import re
import time


def new_id(prefix: str) -> str:
    """Return `prefix_` followed by 28 hex digits that sort by creation time."""
    # Not a secret: uniqueness only needs enough random bits (random is reseeded on fork).
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{random.getrandbits(64):016x}"


# What each prefix names, and how a user lists ids of that kind.
_KINDS: dict[str, tuple[str, str]] = {
    "kx": ("execution", "`kitaru executions list`"),
    "ka": ("artifact", "`kitaru artifacts list <execution id>`"),
    "ki": ("invocation", "`kitaru executions list`"),
}
# A checkpoint call's output is `ka_<its execution's digits>_<position>`.
_SHAPE = re.compile(r"^(k[a-z])_[0-9a-f]{28}(_[0-9]+)?$")


def not_found(prefix: str, value: str, where: str) -> str:
    """Why `value` names no record of the kind `prefix` (`kx`, `ka`) in `where`, and how to
    list the ids there are: an empty id, one of another kind, one of no kind at all, or
    one of the right shape that the journal does not have."""
    kind, listing = _KINDS[prefix]
    article = "an" if kind[0] in "aeiou" else "a"
    shape = f"{prefix}_ and 28 hex digits"
    if not value.strip():
        return f"{article} {kind} id is needed ({shape}); list them with {listing}"
    match = _SHAPE.match(value)
    if match is None:
        return (
            f"{kind} {value} not found: that is not {article} {kind} id ({shape}, such "
            f"as {prefix}_01a2...); list them with {listing}"
        )
    other = match.group(1)
    if other != prefix and other in _KINDS:
        other_kind = _KINDS[other][0]
        if other == "kx":  # the artifacts of that execution are what the user is after
            listing = listing.replace("<execution id>", value)
        other_article = "an" if other_kind[0] in "aeiou" else "a"
        return (
            f"{kind} {value} not found: that is {other_article} {other_kind} id, not "
            f"{article} {kind} id ({shape}); list them with {listing}"
        )
    return f"{kind} {value} not found in {where}; list them with {listing}"
