"""A writer killed with SIGKILL halfway through an upload leaves nothing a read could
mistake for data: a new key stays absent, an overwritten key keeps its old value."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from kitaru.artifacts import ArtifactStore

from .backends import Backend

MiB = 1 << 20

# The child dies from inside once 20 MiB of the 48 MiB value went out on the network
# (object stores) or just before the finished temporary file is renamed into place
# (local disk): the two moments where a torn write could become visible.
WRITER = textwrap.dedent(
    """
    import os, signal, socket, sys
    import kitaru.artifacts

    uri, key, size, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = kitaru.artifacts.open_store(uri)
    data = os.urandom(1 << 20) * (size >> 20)

    def die(where):
        print("killed", where, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if uri.startswith("file:"):
        os.replace = lambda *a, **k: die("before rename")
    else:
        sent = 0
        send = socket.socket.sendall

        def counting_sendall(sock, payload, *args):
            global sent
            sent += len(payload)
            if sent > kill_after:
                die(f"after {sent} bytes sent")
            return send(sock, payload, *args)

        socket.socket.sendall = counting_sendall
    store.write(key, data)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("case", ["new-key", "overwrite"])
def test_killed_upload_leaves_nothing(backend: Backend, store: ArtifactStore, case: str) -> None:
    key = "kx_kill/ka_value"
    old = b"the value before the killed write"
    if case == "overwrite":
        store.write(key, old)
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, backend.uri, key, str(48 * MiB), str(20 * MiB)],
        env=backend.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "killed " in proc.stdout and "finished" not in proc.stdout, proc.stdout

    if case == "new-key":
        assert not store.exists(key)
        with pytest.raises(KeyError):
            store.read(key)
        assert list(store.list("kx_kill/")) == []
    else:
        assert store.read(key) == old
        assert list(store.list("kx_kill/")) == [key]
    # The store stays usable for the next writer of the same key.
    store.write(key, b"after")
    assert store.read(key) == b"after"


@pytest.mark.parametrize("backend", ["s3-localstack", "s3-moto"], indirect=True)
def test_killed_multipart_upload_is_left_incomplete_on_s3(backend: Backend) -> None:
    """On S3 the torn write is an upload that was never completed: invisible, abortable."""
    import boto3

    proc = subprocess.run(
        [sys.executable, "-c", WRITER, backend.uri, "kx_kill/v", str(48 * MiB), str(20 * MiB)],
        env=backend.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    s3 = boto3.client(
        "s3",
        endpoint_url=backend.env["KITARU_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=backend.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=backend.env["AWS_SECRET_ACCESS_KEY"],
    )
    uploads = s3.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["runs/kx_kill/v"]
    assert s3.list_objects_v2(Bucket=backend.bucket).get("KeyCount", 0) == 0
