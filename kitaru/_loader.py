"""Importing a flow again in another process, to resume or replay its execution.

An execution records its flow as `module:qualname`, the source file, and the
`sys.path` entry it was imported from. A flow defined in a script that was run as
`python path/to/script.py` (module `__main__`) is loaded from the file under the
module name `__kitaru_main__`; while it loads, any `flow.run(...)` or direct flow
call at the script's top level stops the import instead of starting a new execution.
"""

from __future__ import annotations

import contextvars
import importlib
import os
import sys
import threading
import types
from typing import Any

from kitaru import _serialize
from kitaru._errors import KitaruError
from kitaru.journal import ExecutionRecord, Journal

SCRIPT_MODULE = "__kitaru_main__"

loading: contextvars.ContextVar[bool] = contextvars.ContextVar("kitaru_loading", default=False)

_loading_lock = threading.Lock()  # guards _code_locks
_code_locks: dict[str, threading.RLock] = {}

# Every flow defined in this process, by `registry_key`.
registry: dict[str, Any] = {}


def registry_key(flow_ref: str, file: str | None) -> str:
    """Flows of different scripts are all in `__main__`: tell them apart by file."""
    return f"{flow_ref}@{file}" if flow_ref.startswith("__main__:") else flow_ref


class StopImport(BaseException):
    """Stops loading a script at its first top-level flow run."""


def module_ref(module_name: str) -> str:
    """The name a module is recorded under, the same in the first run and on resume."""
    if module_name == SCRIPT_MODULE:
        return "__main__"
    if module_name == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name and spec.name != "__main__":
            return str(spec.name)
    return module_name


def describe(fn: Any) -> tuple[str, str | None, str | None]:
    """(flow_ref, source file, import path) for a flow function."""
    module_name: str = fn.__module__
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module_name == "__main__" and module is not None:
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name and spec.name != "__main__":
            # `python -m pkg.mod`: import it by its real name from the working directory.
            return f"{spec.name}:{fn.__qualname__}", _abs(file), os.getcwd()
        return (
            f"__main__:{fn.__qualname__}",
            _abs(file),
            _abs(os.path.dirname(file)) if file else None,
        )
    if module_name == SCRIPT_MODULE:
        return (
            f"__main__:{fn.__qualname__}",
            _abs(file),
            _abs(os.path.dirname(file)) if file else None,
        )
    return f"{module_name}:{fn.__qualname__}", _abs(file), _import_root(file, module_name)


def _abs(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def _import_root(file: str | None, module_name: str) -> str | None:
    if not file:
        return None
    root = os.path.dirname(os.path.abspath(file))
    depth = module_name.count(".")
    if os.path.basename(file) == "__init__.py":
        depth += 1
    for _ in range(depth):
        root = os.path.dirname(root)
    return root


def load_flow(record: ExecutionRecord, *, journal: Journal | None = None) -> Any:
    """The Flow object an execution was started from, imported if needed: only from
    this command's project when the record came from a server (the `journal` it was
    read from; kitaru/_project.py)."""
    # Threads that load the same script at once (replays started side by side) would
    # see its module, or its flow, before the rest of its code ran: one loads, the
    # others then find it. One lock per script or module, so a slow one holds no other.
    key = registry_key(record.flow_ref, record.flow_file)
    with _loading_lock:
        lock = _code_locks.setdefault(key, threading.RLock())
    with lock:
        return _load_flow(record, journal)


def _load_flow(record: ExecutionRecord, journal: Journal | None) -> Any:
    ref = record.flow_ref
    found = registry.get(registry_key(ref, record.flow_file))
    if found is not None:
        return found
    if journal is not None:
        from kitaru import _project

        _project.check_code(journal, record)
    module_name, _, qualname = ref.partition(":")
    if module_name == "__main__":
        module = _load_script(record)
    else:
        module = _import_module(record, module_name)
    obj: Any = module
    try:
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise KitaruError(
            f"flow {record.flow!r} ({ref}) is no longer defined in "
            f"{record.flow_file or module_name}; restore it, or start a new execution"
        ) from None
    return obj


def _load_script(record: ExecutionRecord) -> types.ModuleType:
    path = record.flow_file
    if not path:
        raise KitaruError(
            f"flow {record.flow!r} was defined interactively (a notebook or REPL), so no "
            "other process can import it; resume it from the session that defined it with "
            f"KitaruClient().executions.resume({record.exec_id!r}), or move the flow into a "
            "module"
        )
    if not os.path.exists(path):
        raise KitaruError(
            f"flow {record.flow!r} was defined in the script {path}, which no longer exists; "
            "restore the script to resume or replay this execution"
        )
    existing = sys.modules.get(SCRIPT_MODULE)
    if existing is not None and getattr(existing, "__file__", None) == path:
        return existing
    module = types.ModuleType(SCRIPT_MODULE)
    module.__file__ = path
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules[SCRIPT_MODULE] = module
    _serialize.module_aliases["__main__"] = SCRIPT_MODULE
    if record.import_path and record.import_path not in sys.path:
        sys.path.insert(0, record.import_path)
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    token = loading.set(True)
    saved_argv = sys.argv
    sys.argv = [path, *record.argv[1:]] if record.argv else [path]
    try:
        exec(code, module.__dict__)
    except StopImport:
        pass
    finally:
        sys.argv = saved_argv
        loading.reset(token)
    return module


def _import_module(record: ExecutionRecord, module_name: str) -> types.ModuleType:
    if record.import_path and record.import_path not in sys.path:
        sys.path.insert(0, record.import_path)
    token = loading.set(True)
    try:
        return importlib.import_module(module_name)
    except StopImport:
        module = sys.modules.get(module_name)
        if module is None:
            # The import was interrupted at a top-level run; the flows it defined before
            # that line are in the registry.
            module = types.ModuleType(module_name)
            prefix = module_name + ":"
            for key, flow in registry.items():
                if key.startswith(prefix):
                    setattr(module, key[len(prefix) :].split(".")[0], flow)
        return module
    except ImportError as exc:
        raise KitaruError(
            f"cannot import module {module_name!r} to resume flow {record.flow!r} ({exc}); "
            f"run the command from the project (import path {record.import_path}) with its "
            "environment active"
        ) from None
    finally:
        loading.reset(token)
