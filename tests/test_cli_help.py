"""Every command's `--help` as a user reads it, walked from the real Typer app.

For each visible command and group: the help renders (exit 0) at 80, 120 and 1000
columns; it shows at least one example, and every example parses as a real invocation of
that command; and its prose has no hard line breaks.

What counts as a hard line break: the help is rendered 1000 columns wide, so rich has no
line to wrap and every break left in the output was written into a docstring or help
string. Then
- in the description (above the panels) a paragraph of prose is one line: a prose line
  followed directly by another prose line is a hard break (bullets, `• ...`, are list
  items and start their own line);
- in a panel (Arguments, Options, Commands) a row is one line: a continuation line is
  only Typer's own `[default: ...]`, `[required]` or `[env var: ...]`.
A break in the middle of a sentence ("shows as" / "`crashed`.") is one of these; so is a
break between two sentences of one paragraph, which reads as a paragraph that lost its
blank line.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import kitaru
from kitaru.cli import app
from tests.conftest import kitaru_cli

WIDE = "1000"
ROOT = typer.main.get_command(app)
runner = CliRunner()


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            found += _walk(sub, (*path, name))
    return found


COMMANDS = _walk(ROOT)


def _help(path: tuple[str, ...], columns: str) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": columns}, prog_name="kitaru")
    assert result.exit_code == 0, (path, columns, result.output)
    return result.output


def _description(rendered: str) -> list[str]:
    """The lines between the usage line and the first panel, stripped."""
    above_panels = rendered.split("╭", 1)[0]
    return [line.strip() for line in above_panels.splitlines()[1:]][1:]


def _panel_lines(rendered: str) -> list[str]:
    """The inside of every panel row, box characters removed, indentation kept."""
    return [
        line.strip()[1:-1].rstrip()
        for line in rendered.splitlines()
        if line.strip().startswith("│") and line.strip().endswith("│")
    ]


def _hard_breaks(rendered: str) -> list[str]:
    breaks = []
    description = _description(rendered)
    for above, below in pairwise(description):
        if above and below and not below.startswith("•") and not above.startswith("•"):
            breaks.append(f"{above!r} / {below!r}")
    rows = _panel_lines(rendered)
    for above, below in pairwise(rows):
        indent = len(below) - len(below.lstrip())
        # A new row starts at the name column (a few spaces in at most); a line further
        # in continues the row above it.
        if indent > 6 and not below.lstrip().startswith("["):
            breaks.append(f"{above.strip()!r} / {below.strip()!r}")
    return breaks


def _examples(rendered: str) -> list[str]:
    examples = []
    in_examples = False
    for line in _description(rendered):
        if line.startswith("Example: "):
            examples.append(line.removeprefix("Example: "))
        in_examples = line == "Examples:" or (in_examples and (not line or line.startswith("•")))
        if in_examples and line.startswith("• "):
            examples.append(line.removeprefix("• "))
    return examples


def _parse(example: str) -> tuple[str, ...]:
    """Resolve an example to its command and parse its arguments as the CLI would, without
    running it; return the command's path. A wrong option, a missing argument or a value
    of the wrong type raises here."""
    words = shlex.split(example)
    assert words[0] == "kitaru", example
    command, path, ctx = ROOT, [], None
    rest = words[1:]
    while getattr(command, "commands", None) is not None and rest and rest[0] in command.commands:
        ctx = command.make_context(" ".join(["kitaru", *path]), [rest[0]], parent=ctx)
        path.append(rest[0])
        command, rest = command.commands[rest[0]], rest[1:]
    assert getattr(command, "commands", None) is None, f"{example!r} names no command"
    command.make_context(path[-1], rest, parent=ctx)
    return tuple(path)


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "kitaru")
def test_help_reads_as_prose_and_shows_a_real_example(path: tuple[str, ...]) -> None:
    for columns in ("80", "120"):
        _help(path, columns)
    rendered = _help(path, WIDE)

    invocation = " ".join(["kitaru", *path, "--help"])
    assert _hard_breaks(rendered) == [], invocation

    examples = _examples(rendered)
    assert examples, f"{invocation} shows no example:\n{rendered}"
    for example in examples:
        # An example under a group may run any command of that group.
        assert _parse(example)[: len(path)] == path, example


def test_the_walk_sees_every_noun_and_the_checker_sees_a_hard_break() -> None:
    groups = {p for p, c in COMMANDS if getattr(c, "commands", None) is not None}
    assert {("executions",), ("artifacts",), ("stack",), ("server", "token")} <= groups
    assert len(COMMANDS) > 40
    # Markdown is what makes a docstring's line breaks soft (see kitaru/cli/__init__.py).
    assert {c.rich_markup_mode for _, c in COMMANDS} == {"markdown"}

    # The rendering of a docstring that breaks mid-sentence, as the walk would see it.
    broken = (
        " Usage: kitaru x\n\n List executions, newest first. A running execution whose\n"
        " process died shows as crashed.\n\n╭─ Options ─╮\n"
        "│ list    List executions, newest first. A running execution whose process  │\n"
        "│         died shows as crashed.                                            │\n╰─╯\n"
    )
    assert len(_hard_breaks(broken)) == 2
    with pytest.raises(Exception, match="No such option"):
        _parse("kitaru executions list --no-such-option")


def test_version_short_and_long() -> None:
    for flag in ("-V", "--version"):
        result = kitaru_cli(flag)
        assert result.returncode == 0 and result.stdout == f"kitaru {kitaru.__version__}\n"


def test_shell_completion_script_and_answers(tmp_path: Path) -> None:
    script = kitaru_cli("--show-completion", "bash")
    assert script.returncode == 0, script
    assert "_KITARU_COMPLETE=complete_bash" in script.stdout
    assert "complete -o default -F _kitaru_completion kitaru" in script.stdout

    # What bash runs on <TAB> after `kitaru stack pro`.
    answer = subprocess.run(
        [sys.executable, "-m", "kitaru"],
        env={
            **os.environ,
            "_KITARU_COMPLETE": "complete_bash",
            "COMP_WORDS": "kitaru stack pro",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0 and answer.stdout.split() == ["provision"], answer

    installed = kitaru_cli("--install-completion", "bash", env={"HOME": str(tmp_path)})
    assert installed.returncode == 0, installed
    assert re.search(r"source '.*kitaru\.sh'", (tmp_path / ".bashrc").read_text())
