"""Our S3 artifact store against boto3's own transfer manager, same endpoint, same run.

    .venv/bin/python benchmarks/storage_s3.py [--endpoint URL] [--size-mb 100] [--rounds 3]

Writes and reads one value of --size-mb through:

- `boto3`: `upload_file` / `download_file` of a file in the page cache (boto3's
  transfer manager: 8 MiB parts, 10 threads) - the baseline;
- `kitaru store`: `S3ArtifactStore.write` / `.read` of the value in memory;
- `kitaru artifact`: the whole artifact path a checkpoint uses (serialize, content hash,
  store write; read, verify the hash).

Rounds alternate the methods so that a busy machine slows them alike; each reports the
median throughput. Without --endpoint it uses KITARU_TEST_MOTO_URL, or starts moto with
scripts/services/moto.sh (and stops it afterwards). Prints a table and writes JSON to
benchmarks/results/storage_s3.json. `run()` returns the same dict for a harness.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
TARGET = 0.9  # ours must reach 90% of boto3's throughput

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _moto_endpoint() -> tuple[str, bool]:
    """An S3 endpoint to use, and whether we started it."""
    url = os.environ.get("KITARU_TEST_MOTO_URL")
    if url:
        return url, False
    subprocess.run(["bash", str(REPO / "scripts/services/moto.sh"), "up"], check=True)
    env_file = REPO / ".test-services" / "moto.env"
    for line in env_file.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name == "KITARU_TEST_MOTO_URL":
            return value.strip("'\""), True
    raise RuntimeError(f"{env_file} has no KITARU_TEST_MOTO_URL")


def _throughput(size: int, seconds: list[float]) -> float:
    return size / statistics.median(seconds) / 1e6


def run(endpoint: str | None = None, size_mb: int = 100, rounds: int = 3) -> dict[str, Any]:
    """Measure and return the results (MB/s, medians over `rounds`)."""
    started = False
    if endpoint is None:
        endpoint, started = _moto_endpoint()
    saved = {k: os.environ.get(k) for k in [*AWS_ENV, "KITARU_S3_ENDPOINT_URL"]}
    os.environ.update(AWS_ENV)
    os.environ["KITARU_S3_ENDPOINT_URL"] = endpoint
    try:
        result = _measure(endpoint, size_mb, rounds)
        if started:
            result["server"] = "moto"
        return result
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if started:
            subprocess.run(["bash", str(REPO / "scripts/services/moto.sh"), "down"], check=False)


def _measure(endpoint: str, size_mb: int, rounds: int) -> dict[str, Any]:
    import boto3

    import kitaru.artifacts
    from kitaru import _serialize
    from kitaru._artifact_io import build_artifact, read_bytes

    size = size_mb * 1_000_000
    bucket = f"kitaru-bench-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket)
    kitaru.artifacts.reset_for_tests()
    store = kitaru.artifacts.open_store(f"s3://{bucket}/bench")
    data = os.urandom(1 << 20) * (size >> 20) + os.urandom(size - ((size >> 20) << 20))
    timings: dict[str, list[float]] = {
        k: []
        for k in (
            "boto3 write",
            "kitaru store write",
            "kitaru artifact write",
            "boto3 read",
            "kitaru store read",
            "kitaru artifact read",
        )
    }

    def timed(name: str, fn: Callable[[], object]) -> None:
        start = time.perf_counter()
        fn()
        timings[name].append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "value.bin", Path(tmp) / "back.bin"
        src.write_bytes(data)
        encoded = _serialize.encode(data, what="benchmark")
        record = None
        for i in range(rounds):
            timed("boto3 write", lambda: s3.upload_file(str(src), bucket, "boto3/value"))
            timed("kitaru store write", lambda: store.write("store/value", data))

            def artifact_write() -> None:
                nonlocal record
                record = build_artifact(
                    exec_id=f"kx_bench{i}",
                    store=store,
                    name="value",
                    producer="checkpoint",
                    producer_key=None,
                    encoded=encoded,
                )

            timed("kitaru artifact write", artifact_write)
            timed("boto3 read", lambda: s3.download_file(bucket, "boto3/value", str(dst)))
            timed("kitaru store read", lambda: store.read("store/value"))
            assert record is not None
            timed("kitaru artifact read", lambda: read_bytes(record, store.uri))
        assert dst.stat().st_size == size

    mbps = {name: round(_throughput(size, t), 1) for name, t in timings.items()}
    ratios = {
        "store write / boto3 write": mbps["kitaru store write"] / mbps["boto3 write"],
        "store read / boto3 read": mbps["kitaru store read"] / mbps["boto3 read"],
        "artifact write / boto3 write": mbps["kitaru artifact write"] / mbps["boto3 write"],
        "artifact read / boto3 read": mbps["kitaru artifact read"] / mbps["boto3 read"],
    }
    return {
        "benchmark": "storage_s3",
        "endpoint": endpoint,
        "server": _server_name(endpoint),
        "size_mb": size_mb,
        "rounds": rounds,
        "throughput_mb_s": mbps,
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "target": TARGET,
        "meets_target": all(v >= TARGET for k, v in ratios.items() if k.startswith("store")),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_1min": round(os.getloadavg()[0], 2),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _server_name(endpoint: str) -> str:
    if endpoint == os.environ.get("KITARU_TEST_LOCALSTACK_URL"):
        return "localstack"
    if endpoint == os.environ.get("KITARU_TEST_MOTO_URL"):
        return "moto"
    return "s3-compatible"


def print_table(result: dict[str, Any]) -> None:
    print(
        f"S3 artifact throughput, {result['size_mb']} MB, median of {result['rounds']} rounds, "
        f"{result['server']} at {result['endpoint']}"
    )
    print(f"{'method':<24}{'MB/s':>10}")
    for name, value in result["throughput_mb_s"].items():
        print(f"{name:<24}{value:>10.1f}")
    for name, value in result["ratios"].items():
        print(f"{name:<30}{value:>7.0%}")
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"store vs boto3 {verdict} the {result['target']:.0%} target")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--endpoint", help="S3 endpoint URL (default: moto, started if needed)")
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.endpoint, args.size_mb, args.rounds)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "storage_s3.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
