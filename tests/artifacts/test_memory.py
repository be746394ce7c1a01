"""A 1 GiB bytes output is written and read back holding one copy, not two.

Runs a real flow in a subprocess whose checkpoint returns the value, then loads the
artifact back, and compares the process's peak RSS with its size before the value
existed. Writing or reading through a second full copy would push the peak past
2 GiB over the baseline; the bound leaves room for parts in flight and the runtime.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_python, write_script

from .backends import Backend

GiB = 1 << 30
MiB = 1 << 20

SCRIPT = """
import os, resource, sys
import kitaru.artifacts
from kitaru import KitaruClient, checkpoint, flow

SIZE = int(sys.argv[1])

def peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

@checkpoint
def produce() -> bytes:
    return os.urandom(1 << 20) * (SIZE >> 20)

@flow
def big() -> int:
    return len(produce())

if __name__ == "__main__":
    # Load the store's SDK first: its imports are not part of what is measured.
    kitaru.artifacts.open_store(os.environ["KITARU_ARTIFACT_STORE"])
    KitaruClient()
    base = peak()
    handle = big.run()
    assert handle.result() == SIZE
    after_write = peak()
    [artifact] = [a for a in KitaruClient().artifacts.list(handle.exec_id) if a.name == "produce"]
    assert artifact.uri is not None and artifact.size == SIZE
    value = artifact.load()
    assert type(value) is bytes and len(value) == SIZE and value[:1 << 20] * 2 == value[: 2 << 20]
    print(base, after_write, peak())
"""


@pytest.mark.parametrize(
    ("backend", "size"),
    [("local", GiB), ("s3-localstack", GiB), ("gcs", 256 * MiB), ("azure", 256 * MiB)],
    indirect=["backend"],
)
def test_large_output_holds_one_copy(backend: Backend, size: int, tmp_path: Path) -> None:
    script = write_script(tmp_path / "big.py", SCRIPT)
    env = {**backend.subprocess_env(), "KITARU_ARTIFACT_STORE": backend.uri}
    proc = run_python(script, str(size), env=env, timeout=600)
    assert proc.returncode == 0, proc
    base, after_write, final = map(int, proc.stdout.split())
    print(
        f"peak over baseline: write {(after_write - base) / MiB:.0f} MiB, read {(final - base) / MiB:.0f} MiB"
    )
    # Parts in flight (up to 10 x 8 MiB, each briefly copied) and allocator slack.
    slack = 200 * MiB
    assert after_write - base < size + slack, (
        f"writing peaked at {(after_write - base) / MiB:.0f} MiB over the baseline"
    )
    assert final - base < size + slack, (
        f"reading peaked at {(final - base) / MiB:.0f} MiB over the baseline"
    )
