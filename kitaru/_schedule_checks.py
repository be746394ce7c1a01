"""What a schedule is made of (kitaru/_schedules.py), checked before anything is stored:
its name, cron expression, time zone, catchup and arguments; and the next tick of a cron
expression in a time zone, across DST changes."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from kitaru._errors import InvalidInputError

CATCHUP = ("skip", "all", "latest")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"schedule name {name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (for example: nightly-report)"
        )
    return name


def check_cron(cron: str) -> str:
    from croniter import croniter

    if not isinstance(cron, str) or not croniter.is_valid(cron) or len(cron.split()) not in (5, 6):
        raise InvalidInputError(
            f"cron expression {cron!r} is not valid: give 5 fields (minute hour day month "
            "weekday, e.g. '0 * * * *' for every hour) or 6 with seconds last "
            "('* * * * * */10': every 10 seconds)"
        )
    return cron


def check_timezone(tz: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInputError(
            f"time zone {tz!r} is not known: give an IANA name such as UTC, Europe/Berlin "
            "or America/New_York"
        ) from None
    return tz


def check_catchup(catchup: str) -> str:
    if catchup not in CATCHUP:
        raise InvalidInputError(f"catchup {catchup!r} is not one of {', '.join(CATCHUP)}")
    return catchup


def parse_args(raw: str | None) -> dict[str, Any]:
    """`--args` as {"args": [...], "kwargs": {...}}: a JSON object of keyword arguments
    or a JSON array of positional ones."""
    if raw is None or raw == "":
        return {"args": [], "kwargs": {}}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"--args is not valid JSON: {exc.msg} at position {exc.pos} (give an object of "
            'keyword arguments, e.g. \'{"topic": "kites"}\', or an array: \'["kites"]\')'
        ) from None
    if isinstance(value, dict):
        return {"args": [], "kwargs": value}
    if isinstance(value, list):
        return {"args": value, "kwargs": {}}
    raise InvalidInputError("--args must be a JSON object (keyword arguments) or an array")


def next_after(cron: str, tz: str, after: float) -> float:
    """The first tick of `cron` in time zone `tz` strictly after the instant `after`."""
    from zoneinfo import ZoneInfo

    from croniter import croniter

    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(after, zone)
    wall = start.replace(tzinfo=None)
    it = croniter(cron, start)
    for _ in range(100_000):
        tick = float(it.get_next(float))
        if tick <= after:
            continue
        if datetime.fromtimestamp(tick, zone).replace(tzinfo=None) > wall:
            return tick
        # The wall clock went back (DST ended) to a time this schedule has already
        # passed: carry on from the second occurrence of `after`'s wall-clock time.
        it = croniter(cron, datetime.fromtimestamp(_second(wall, zone), zone))
    raise InvalidInputError(f"cron expression {cron!r} has no next tick in {tz}")


def _second(wall: datetime, zone: Any) -> float:
    """The instant of the later occurrence of the wall-clock time `wall` in `zone`."""
    return wall.replace(tzinfo=zone, fold=1).timestamp()
