"""An image whose `python -m kitaru run-execution ID` is a stand-in that does what the
`STAND_IN` variable says (`sleep`, `exit:N`, `env:NAME`, `oom`), built in a second from the
test base image and pushed to the local registry. It lets a test put a container
orchestrator's run in each state (running, failed with an exit code, ended without
taking the execution) without building a project; what kitaru reads back (the
platform's states, its logs) is the platform's own."""

from __future__ import annotations

import hashlib
import io
import tarfile

STAND_IN = """\
import os, sys, time
print("stand-in for kitaru", *sys.argv[1:], flush=True)
how = os.environ.get("STAND_IN", "exit:0")
if how == "sleep":
    time.sleep(3600)
if how == "oom":
    hog = [bytearray(1 << 20) for _ in range(1024)]  # 1 GiB, past a small memory limit
if how.startswith("env:"):
    name = how[4:]
    print(f"{name}={os.environ.get(name, '(not set)')}", flush=True)
if how.startswith("exit:"):
    print(f"exiting with {how[5:]}", file=sys.stderr, flush=True)
    sys.exit(int(how[5:]))
"""


def stand_in_image(registry: str, base_image: str) -> str:
    """Build (once per content) and push the stand-in; its `repo:tag` in `registry`."""
    import docker

    dockerfile = (
        f"FROM {base_image}\n"
        'RUN command -v python || ln -s "$(command -v python3)" /usr/local/bin/python\n'
        "COPY kitaru/__main__.py /stand-in/kitaru/__main__.py\n"
        "ENV PYTHONPATH=/stand-in\n"
    )
    tag = hashlib.sha256((dockerfile + STAND_IN).encode()).hexdigest()[:12]
    repository = f"{registry}/kitaru/stand-in"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("kitaru/__main__.py", STAND_IN)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    client = docker.from_env()
    client.images.build(fileobj=buf, custom_context=True, tag=f"{repository}:{tag}", rm=True)
    for line in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"pushing the stand-in image failed: {line['error']}")
    return f"{repository}:{tag}"
