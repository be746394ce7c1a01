"""`kitaru doctor`"""

from __future__ import annotations

import typer

from kitaru.cli._output import emit_json


def doctor_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts instead of text."),
) -> None:
    """Check the setup: journal, artifact store, active stack and installed extras.

    Reads only, so it is safe on a broken setup: the home directory, the journal (intact,
    its schema version), the artifact store, whether the active stack's journal, bucket,
    registry and platform answer, and which extras are installed. Each problem comes with
    what to do about it. Exits 1 when something is broken.

    Examples:

    - `kitaru doctor`
    - `kitaru doctor --json`
    """
    from kitaru import _doctor

    checks = _doctor.run_checks()
    broken = any(c.status == "error" for c in checks)
    if as_json:
        emit_json(
            {"ok": not broken, "about": _doctor.header(), "checks": [c.to_dict() for c in checks]}
        )
    else:
        print(_doctor.header())
        for c in checks:
            print(f"{c.status:<8} {c.name:<10} {c.summary}")
            if c.fix:
                print(f"{'':<8} {'':<10} fix: {c.fix}")
    if broken:
        raise typer.Exit(1)
