"""Rendering the web UI's templates (autoescaped Jinja2, loaded once)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    env.filters["short"] = lambda v: str(v).replace("T", " ")[:19] if v else "–"
    env.filters["size"] = _size
    return env


def _size(n: Any) -> str:
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def render(name: str, **context: Any) -> str:
    from kitaru._version import __version__

    html: str = _environment().get_template(name).render(version=__version__, **context)
    return html
