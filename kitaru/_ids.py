"""Sortable ids: a prefix, then 48 bits of milliseconds and 64 random bits, in hex."""

from __future__ import annotations

import random
import time


def new_id(prefix: str) -> str:
    """Return `prefix_` followed by 28 hex digits that sort by creation time."""
    # Not a secret: uniqueness only needs enough random bits (random is reseeded on fork).
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{random.getrandbits(64):016x}"
