"""One virtual environment per peer at pinned versions, made with uv and kept in a cache
directory (BENCH_VENVS, default benchmarks/.venvs) until its pins change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks._systems import PINS, VERSION_OF

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_VENVS", HERE / ".venvs")).expanduser().resolve()


def _uv() -> list[str]:
    uv = shutil.which("uv")
    if uv:
        return [uv]
    return [sys.executable, "-m", "uv"]


def python_for(product: str) -> str:
    """The interpreter a product's workers run with; ours and the floor use this one."""
    if product in ("kitaru", "floor"):
        return sys.executable
    return str(cache_dir() / product / "bin" / "python")


def ensure(product: str, *, install: bool = True) -> str:
    """The venv's python for `product`, installing or refreshing it if its pins changed."""
    if product in ("kitaru", "floor"):
        return sys.executable
    venv = cache_dir() / product
    python = venv / "bin" / "python"
    marker = venv / ".bench-pins"
    wanted = "\n".join(PINS[product])
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return str(python)
    if not install:
        raise SystemExit(
            f"error: no environment for {product} in {venv}; run without --no-install to create it"
        )
    print(f"installing {product}: {' '.join(PINS[product])} into {venv}", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*_uv(), "venv", "--quiet", "--allow-existing", "--python", _python_version(), str(venv)],
        check=True,
    )
    subprocess.run(
        [
            *_uv(),
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(python),
            *PINS[product],
        ],
        check=True,
    )
    marker.write_text(wanted)
    return str(python)


def _python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def versions(product: str) -> dict[str, str]:
    """Installed versions of the distributions that matter for `product`."""
    dists = VERSION_OF.get(product, [])
    code = (
        "import json, importlib.metadata as m\n"
        f"out = {{}}\nfor d in {dists!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        raw = subprocess.run(
            [python_for(product), "-c", code], capture_output=True, text=True, check=True
        ).stdout
        found: dict[str, str] = json.loads(raw)
        return found
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError):
        return {}
