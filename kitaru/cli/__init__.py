"""The `kitaru` command line: one Typer sub-app per noun.

Every error reaches the user as one line, `error: what is wrong; what to do`, with the
exit code the README states: 0 success; 1 failure (the execution failed, a journal,
store or server that is set up cannot be used); 2 bad input (an unknown or malformed id,
invalid JSON or value, misuse, a configuration that cannot work, a missing extra).
Tracebacks are for bug reports: `KITARU_DEBUG=1` shows them.
"""

from __future__ import annotations

import sys
from typing import Any


def __getattr__(name: str) -> Any:
    # `kitaru.cli.app`, the whole app (the help tests walk it), is built on first use;
    # the app's pieces live in `_app`, loaded only by a command line Typer reads.
    if name == "app":
        from kitaru.cli._app import build

        whole = globals()["app"] = build()
        return whole
    if name in ("build", "SUB_APPS", "COMMANDS", "EXECUTIONS_EXTRA"):
        from kitaru.cli import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'kitaru.cli' has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every error into one line and an exit code."""
    from kitaru._errors import (
        InvalidConfigurationError,
        KitaruError,
        KitaruUsageError,
        NotFoundError,
        debugging,
    )
    from kitaru.cli import _direct

    args = sys.argv[1:] if argv is None else argv
    try:
        # The plain `kitaru executions list` lines run without loading Typer (`_direct`);
        # every other line, help and every usage error go through the Typer app.
        code: Any
        direct = _direct.command(args)
        if direct is not None:
            code = direct()
        else:
            from kitaru.cli._app import build, named

            code = build(named(args))(args=args, prog_name="kitaru", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except _direct.Aborted:
        return _fail("aborted", 1)
    except (NotFoundError, KitaruUsageError, InvalidConfigurationError) as exc:
        return _fail(str(exc), 2)
    except KitaruError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _is_abort(exc):
            return _fail("aborted", 1)
        if _is_usage_error(exc):
            # Typer's parser (its own copy of click): a wrong option, a missing argument.
            where = getattr(getattr(exc, "ctx", None), "command_path", None) or "kitaru"
            message = exc.format_message()  # type: ignore[attr-defined]
            if not message:  # `kitaru executions` alone: the help was the answer
                return int(exc.exit_code)  # type: ignore[attr-defined]
            if getattr(exc, "ctx", None) is not None:
                message += f" (see: {where} --help)"
            return _fail(message, exc.exit_code)  # type: ignore[attr-defined]
        # Not an error Kitaru raises on purpose: a bug here or in a library, or the
        # system refusing something. The message still fits one line.
        if debugging():
            raise
        return _fail(
            f"{type(exc).__name__}: {exc} (unexpected; run again with KITARU_DEBUG=1 for the "
            "traceback to report it)",
            1,
            unexpected=True,
        )
    return code if isinstance(code, int) else 0


def _is_abort(exc: Exception) -> bool:
    # Typer's Abort; Typer is loaded only when the command line needed it.
    typer = sys.modules.get("typer")
    return typer is not None and isinstance(exc, typer.Abort)


def _is_usage_error(exc: Exception) -> bool:
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )


def _fail(message: str, code: int, *, unexpected: bool = False) -> int:
    from kitaru._errors import debugging

    if debugging() and not unexpected and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()
    # One line: a message that carries a multi-line text (a provider's answer, a
    # flow's error) is folded rather than spread over the terminal.
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return code


def run() -> None:
    sys.exit(main())
