"""The record codec, as the server imports it; it lives in kitaru/_codec.py, under the
journal, whose HTTP backend speaks it."""

from __future__ import annotations

from kitaru._codec import field_types, from_wire, many, maybe, to_wire

__all__ = ["field_types", "from_wire", "many", "maybe", "to_wire"]
