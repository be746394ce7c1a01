"""What the adapters share: importing a harness with an install hint, checking its
version, turning harness objects into stored JSON, and naming checkpoint calls.

How an adapter keys its calls. A harness run is one line of work in the flow: the
adapter runs it under `_calls.harness_run()`, so the tasks and threads the harness
starts for itself take no branches, and its model calls are numbered in the branch the
run was started from (`support.model`, `support.model#2`; `2/support.model` in the
second item of a `kitaru.map`). The tool calls of one model turn run concurrently, in
whatever order the scheduler picks, so they cannot be numbered: each is keyed by the
tool-call id of the model response that asked for it (`support.tool.lookup:call_3`).
That response is a checkpoint call too, so a resumed run reads the same ids back from
the journal and every tool call finds its own output.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
from types import ModuleType
from typing import Any

from kitaru import _calls, _serialize
from kitaru._errors import KitaruUsageError, SerializationError
from kitaru._fingerprint import fingerprint
from kitaru._llm._errors import UnsupportedVersionError


def require(module: str, *, distribution: str, extra: str) -> ModuleType:
    """Import a harness, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise KitaruUsageError(
            f"the {distribution} adapter needs {distribution}, which cannot be imported ({exc}); "
            f'install it with: pip install "kitaru[{extra}]"'
        ) from None


def _version_tuple(raw: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", raw)[:3])


def check_version(distribution: str, *, minimum: str, below: str, extra: str) -> str:
    """The installed version, or UnsupportedVersionError naming the supported range."""
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise KitaruUsageError(
            f'{distribution} is not installed; install it with: pip install "kitaru[{extra}]"'
        ) from None
    if not (_version_tuple(minimum) <= _version_tuple(installed) < _version_tuple(below)):
        raise UnsupportedVersionError(
            f"{distribution} {installed} is installed, but the Kitaru adapter supports "
            f"{distribution}>={minimum},<{below}; install a supported version with: "
            f'pip install "kitaru[{extra}]"'
        )
    return installed


def _clean(part: str) -> str:
    # '#' numbers repeated keys; whitespace would make keys hard to type on a command line.
    return re.sub(r"[#\s]+", "_", part.strip()) or "_"


def call_name(*parts: str) -> str:
    """A checkpoint name from harness names (agent, tool): no '#', no surrounding spaces."""
    name = ".".join(_clean(p) for p in parts)
    head, sep, _ = name.partition("/")
    if sep and all(p.isdigit() for p in head.split(".")):
        raise KitaruUsageError(
            f"the agent or tool name in {name!r} starts with digits and '/', which is how keys "
            "of calls in parallel branches start (3/search); rename the agent or tool"
        )
    return name


def tool_call_id(name: str, harness_id: str | None) -> str | None:
    """The checkpoint id of one tool call, from the tool-call id in the model response.

    `<name>:<tool-call id>` in the flow body, `2/<name>:<tool-call id>` in branch 2
    (models that number their tool calls the same way in every run, as test models do,
    must not make two `kitaru.map` items share an id), and `#2`, `#3`, ... appended when
    the run used the id already (a model that repeats ids across turns). None where the
    call is not its own checkpoint call, and in an execution recorded before tool calls
    had ids: there the adapter keeps numbering them (`<name>#2`), one at a time.
    """
    if not _calls.in_checkpointed_flow() or _calls.in_legacy_execution():
        return None
    base = f"{name}:{_clean(harness_id)}" if harness_id else name
    branch = _calls.branch_path()
    return _calls.call_id(f"{branch}/{base}" if branch else base)


def arguments_fingerprint(arguments: Any) -> str:
    """The input fingerprint of a tool call: one digest per argument, so that a resume
    that finds another call's output under this key names the argument that differs."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return fingerprint((arguments,), {})
    if isinstance(arguments, dict) and all(isinstance(k, str) for k in arguments):
        return fingerprint((), arguments)
    return fingerprint((arguments,), {})


def storable(value: Any, what: str) -> Any:
    """`value` itself if Kitaru can store it with its type, else its JSON form.

    Tool results are often plain data or pydantic models (stored as such and read back
    as the same type); anything else is stored as the JSON that the harness would send
    to the model anyway.
    """
    try:
        _serialize.encode(value, what=what)
        return value
    except SerializationError:
        from pydantic_core import to_jsonable_python

        try:
            return to_jsonable_python(value)
        except Exception as exc:
            raise SerializationError(
                f"{what} returned a {type(value).__name__} that cannot be stored as JSON ({exc}); "
                "return JSON-compatible data or a pydantic model from the tool"
            ) from None
