"""`make demo`: Kitaru's main job on the embedded default (no server, no cloud).

1. A research agent is killed in the middle of a step, then resumed: the steps that
   finished before the crash come from the journal, only the rest run.
2. A writing agent pauses for a human approval; the process exits; the answer comes
   from the command line and the flow continues where it stopped.
3. The finished run is replayed from its draft step with a different input to that
   step, and the two runs are compared.

Every command is shown as you would type it. State lives in ./.demo-home (KITARU_HOME).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOME = Path(os.environ.get("KITARU_DEMO_HOME", HERE.parent / ".demo-home"))
ENV = {**os.environ, "KITARU_HOME": str(HOME), "PYTHONUNBUFFERED": "1"}
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def title(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}")


def run(
    argv: list[str], *, show: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    print(f"{BOLD}$ {show}{RESET}", flush=True)
    result = subprocess.run(
        argv, env={**ENV, **(env or {})}, capture_output=True, text=True, check=False
    )
    out = result.stdout + (result.stderr if result.returncode else "")
    print("\n".join("  " + line for line in out.rstrip().splitlines()), flush=True)
    if check and result.returncode not in (0, 137):
        raise SystemExit(f"demo step failed (exit {result.returncode}): {show}")
    return result


def kitaru(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(
        [sys.executable, "-m", "kitaru", *args], show="kitaru " + " ".join(args), check=check
    )


def kitaru_json(*args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "kitaru", *args, "--json"],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def newest(flow: str) -> str:
    return str(kitaru_json("executions", "list", "--flow", flow)[0]["exec_id"])


def main() -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    print(f"{DIM}Kitaru demo: state in {HOME} (KITARU_HOME){RESET}")

    title("1. An agent is killed mid-step, then resumed")
    run(
        [sys.executable, str(HERE / "research_agent.py"), "durable execution"],
        show="KITARU_CRASH_AT=synthesize python examples/research_agent.py 'durable execution'",
        env={"KITARU_CRASH_AT": "synthesize"},
    )
    crashed = newest("research_agent")
    kitaru("executions", "list")
    kitaru("executions", "resume", crashed)
    print(
        f"{DIM}  plan and the three searches came from the journal: not run, not billed again.{RESET}"
    )

    title("2. An agent waits for a human; the process exits meanwhile")
    run(
        [sys.executable, str(HERE / "review_flow.py"), "durable agents"],
        show="python examples/review_flow.py 'durable agents'",
    )
    waiting = newest("review_flow")
    kitaru("executions", "waits")
    kitaru("executions", "input", waiting, "approve_draft", "true")

    title("3. Replay from the draft with a different research result, and compare")
    kitaru(
        "executions",
        "replay",
        waiting,
        "--from",
        "draft",
        "--override",
        'research="Two facts: agents crash; Kitaru resumes them."',
    )
    replay = newest("review_flow")
    kitaru("executions", "input", replay, "approve_draft", "true")
    kitaru("artifacts", "diff", waiting, replay)

    title("Where the data lives")
    artifacts = HOME / "artifacts"
    print(f"  journal    {HOME / 'journal.db'} (SQLite, WAL)")
    print(f"  artifacts  small values inline in the journal; larger ones under {artifacts}")
    kitaru("artifacts", "list", crashed)
    print(f"\n{DIM}Explore: KITARU_HOME={HOME} kitaru executions --help{RESET}")


if __name__ == "__main__":
    main()
