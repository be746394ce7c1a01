"""Keep checkpoint outputs in your own bucket.

    pip install "kitaru[aws]"            # or kitaru[gcp] / kitaru[azure]
    export KITARU_ARTIFACT_STORE=s3://my-bucket/kitaru    # or gs://... / az://...
    python examples/bucket_artifacts.py

The 8 MB checkpoint output below is written to the bucket (small values stay in the
journal); `kitaru artifacts list <execution>` shows where each one lives.
"""

from __future__ import annotations

import hashlib

from kitaru import KitaruClient, checkpoint, flow


@checkpoint
def render_dataset(rows: int) -> bytes:
    """A large output: streamed to the artifact store in parts."""
    return b"".join(f"{i},{i * i}\n".encode() for i in range(rows)).ljust(8_000_000, b"#")


@checkpoint
def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@flow
def dataset_pipeline(rows: int) -> str:
    return fingerprint(render_dataset(rows))


if __name__ == "__main__":
    handle = dataset_pipeline.run(100_000)
    print(f"execution {handle.exec_id}: fingerprint {handle.result()}")
    for artifact in KitaruClient().artifacts.list(handle.exec_id):
        print(f"  {artifact.name:<16} {artifact.size:>9} bytes  {artifact.uri or 'in the journal'}")
