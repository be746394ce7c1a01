"""`path/to/module.py:flow_name` (or `package.module:flow_name`): the flow a command names.

A file is imported under its module name, found by walking up the package directories
(`__init__.py`) around it, so that the image imports it the same way. Top-level code
that starts an execution stops the import, as it does when an execution is resumed.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from kitaru import _loader
from kitaru._errors import KitaruUsageError


def module_of(path: Path) -> tuple[str, Path]:
    """(dotted module name, the sys.path entry it is imported from) for a .py file."""
    parts = [path.stem] if path.name != "__init__.py" else []
    root = path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    return ".".join(parts), root


def load_target(target: str) -> Any:
    """The Flow object `target` names, with an error that says what to fix."""
    from kitaru._checkpoint import is_flow

    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise KitaruUsageError(
            f"target {target!r} does not name a flow; use path/to/module.py:flow_name "
            "(or package.module:flow_name)"
        )
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise KitaruUsageError(f"target {target!r}: there is no file {path}")
        module_name, root = module_of(path)
    else:
        module_name, root = where, Path.cwd()
    module = _import(target, module_name, root)
    obj = getattr(module, name, None)
    if obj is None:
        flows = sorted(k for k, v in vars(module).items() if is_flow(v))
        raise KitaruUsageError(
            f"target {target!r}: module {module_name!r} has no {name!r}; flows in it: "
            f"{', '.join(flows) or 'none'}"
        )
    if not is_flow(obj):
        raise KitaruUsageError(
            f"target {target!r}: {name!r} is a {type(obj).__name__}, not a flow; decorate "
            "the function with @kitaru.flow"
        )
    return obj


def _import(target: str, module_name: str, root: Path) -> Any:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    token = _loader.loading.set(True)
    try:
        return importlib.import_module(module_name)
    except _loader.StopImport:
        # The module starts an execution at its top level; what it defined before that
        # line is in the flow registry.
        return _partial_module(module_name)
    except SyntaxError as exc:
        raise KitaruUsageError(
            f"target {target!r} cannot be imported: {exc.msg} ({exc.filename}, line {exc.lineno})"
        ) from None
    except Exception as exc:
        raise KitaruUsageError(
            f"target {target!r} cannot be imported: {type(exc).__name__}: {exc}; run the "
            "command in the project's environment (for example `uv run kitaru deploy ...` "
            "in the project) so that what it imports is installed"
        ) from None
    finally:
        _loader.loading.reset(token)


def _partial_module(module_name: str) -> Any:
    import types

    module = sys.modules.get(module_name)
    if module is not None:
        return module
    module = types.ModuleType(module_name)
    prefix = module_name + ":"
    for key, flow in _loader.registry.items():
        if key.startswith(prefix):
            setattr(module, key[len(prefix) :].split(".")[0], flow)
    return module
