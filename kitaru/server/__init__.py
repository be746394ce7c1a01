"""The Kitaru server: a REST API and web UI over one journal (`pip install "kitaru[server]"`).

    kitaru server start --journal postgresql://... --port 8080

Importing this package loads no web framework; `create_app` and `serve` do, and say
which extra installs it when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kitaru.server._app import create_app, openapi_document
    from kitaru.server._serve import serve
    from kitaru.server._state import ServerConfig

__all__ = ["ServerConfig", "create_app", "openapi_document", "require_extra", "serve"]


def require_extra() -> None:
    """Fail with the install command unless the server's dependencies are installed."""
    from kitaru._errors import ConfigurationError

    missing = [m for m in ("fastapi", "uvicorn", "jinja2", "jsonschema") if not _has(m)]
    if missing:
        raise ConfigurationError(
            f"the Kitaru server needs {', '.join(missing)}; install it with: "
            'pip install "kitaru[server]"'
        )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def __getattr__(name: str) -> Any:
    if name in ("create_app", "openapi_document"):
        require_extra()
        from kitaru.server import _app

        return getattr(_app, name)
    if name == "serve":
        require_extra()
        from kitaru.server._serve import serve

        return serve
    if name == "ServerConfig":
        from kitaru.server._state import ServerConfig

        return ServerConfig
    raise AttributeError(f"module 'kitaru.server' has no attribute {name!r}")
