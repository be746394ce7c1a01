"""`kitaru executions list` runs without Typer on its plain command lines
(kitaru/cli/_direct.py); what a user sees must not tell the two paths apart.

Typer still reads every other spelling of the same line (`--flow=name`), so each pair
below is one question asked both ways: the output, the errors and the exit code match.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from kitaru import flow
from kitaru.cli import _direct, app
from tests.conftest import kitaru_cli


@flow
def echo(x: int) -> int:
    return x


def test_direct_options_are_the_typer_commands_options() -> None:
    root = typer.main.get_command(app)
    for (noun, name), (_, _, arguments, options) in _direct.COMMANDS.items():
        command = root.commands[noun].commands[name]  # type: ignore[attr-defined]
        declared = {
            opt: (p.name, "flag" if p.is_flag else p.type.name, p.default)
            for p in command.params
            if p.name != "help" and p.param_type_name == "option"
            for opt in p.opts
        }
        assert declared == options, (noun, name)
        # Its arguments: required strings, in the same order.
        positional = [p for p in command.params if p.param_type_name == "argument"]
        assert tuple(p.name for p in positional) == arguments, (noun, name)
        assert all(p.required and p.type.name == "str" and p.nargs == 1 for p in positional)
        # No secondary names (`--no-json`) or short ones the direct path would not know.
        assert all(not p.secondary_opts for p in command.params)


@pytest.mark.parametrize(
    ("direct", "typer_read"),
    [
        (["--flow", "echo", "--limit", "2"], ["--flow=echo", "--limit=2"]),
        (["--json", "--status", "completed"], ["--json", "--status=completed"]),
        (["--flow", "other"], ["--flow=other"]),
        (["--status", "finished"], ["--status=finished"]),
        (["--idempotency-key", "k1", "--json"], ["--idempotency-key=k1", "--json"]),
    ],
)
def test_a_listing_reads_the_same_without_typer(direct: list[str], typer_read: list[str]) -> None:
    for n in range(3):
        echo.run(n)
    fast = kitaru_cli("executions", "list", *direct)
    slow = kitaru_cli("executions", "list", *typer_read)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    )


def test_only_plain_lines_skip_typer() -> None:
    # Help, unknown, repeated or `=` options, and values Typer converts stay Typer's.
    for line in (
        ["executions", "list", "--help"],
        ["executions", "list", "--flow=x"],
        ["executions", "list", "--json", "--json"],
        ["executions", "list", "--limit", "-1"],
        ["executions", "list", "--limit", " 5"],
        ["executions", "list", "--limit", "1000000000"],
        ["executions", "list", "--flow"],
        ["executions", "list", "extra"],
        ["executions", "get"],
        ["executions", "get", "kx_1", "kx_2"],
        ["executions", "get", "--", "kx_1"],
        ["executions", "get", "kx_1", "--json=1"],
        ["executions", "logs", "kx_1"],
    ):
        assert _direct.command(line) is None, line
    assert _direct.command(["executions", "list", "--limit", "7", "--json"]) is not None
    assert _direct.command(["executions", "get", "--json", "kx_1"]) is not None
    # And such a line never loads Typer.
    probe = (
        "import sys; from kitaru.cli import main; code = main(['executions', 'list']);"
        "assert 'typer' not in sys.modules; sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and "no executions yet" in done.stdout, done.stderr


def test_usage_errors_still_come_from_typer() -> None:
    bad = kitaru_cli("executions", "list", "--limit", "x")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "'--limit'" in bad.stderr
    assert "(see: kitaru executions list --help)" in bad.stderr
    # A number past what a journal can hold is refused the same way, not crashed on.
    huge = kitaru_cli("executions", "list", "--limit", "99999999999999999999")
    assert huge.returncode == 2 and "is not in the range 0<=x<=1000000000" in huge.stderr


def test_an_execution_reads_the_same_without_typer() -> None:
    """`executions get` both ways (`--` sends the line to Typer): a completed execution, a
    failed one (exit 1, both forms) and one that does not exist (exit 2)."""

    @flow
    def breaks() -> None:
        raise RuntimeError("it broke")

    done, failed = echo.run(5).exec_id, breaks.run().exec_id
    for exec_id, code in ((done, 0), (failed, 1), ("kx_nope", 2)):
        for extra in ([], ["--json"]):
            fast = kitaru_cli("executions", "get", exec_id, *extra)
            slow = kitaru_cli("executions", "get", *extra, "--", exec_id)
            assert (fast.returncode, fast.stdout, fast.stderr) == (
                slow.returncode,
                slow.stdout,
                slow.stderr,
            )
            assert fast.returncode == code, fast
