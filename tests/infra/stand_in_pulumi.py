"""A stand-in for the Pulumi CLI that plays a whole preview / up / destroy.

The real CLI cannot be downloaded on these machines. This script takes its place on PATH
and answers what the Automation API asks, the way the engine would, from two files the
test writes: the resources a program declares (taken from running the real program on
Pulumi's mocks) and the outputs `up` exports. It keeps a state file per stack inside the
file backend named in Pulumi.yaml, so the state lands where the real engine's would and
a later `destroy` finds (or misses) it. It does not run the program: the mock tests do.
Every invocation is appended to a log the tests read. It speaks both event protocols
(a gRPC stream for a current CLI, a file before 3.205), by the version it reports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The engine's two ways to hand its events to the Automation API: a current CLI streams
# them over gRPC to the port the API listens on; up to 3.205 it appended them to a file.
CURRENT = "3.272.0"
FILE_EVENTS = "3.200.0"

SCRIPT = r"""#!{python}
import json, os, sys, time
from pathlib import Path
from urllib.parse import urlparse

args = sys.argv[1:]
here = Path.cwd()
yaml = (here / "Pulumi.yaml").read_text() if (here / "Pulumi.yaml").exists() else ""
backend = next((l.split("url:", 1)[1].strip() for l in yaml.splitlines() if "url:" in l), "")
with open({log!r}, "a") as log:
    log.write(json.dumps({{
        "args": args,
        "backend": backend,
        "passphrase": bool(os.environ.get("PULUMI_CONFIG_PASSPHRASE")
                           or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")),
    }}) + "\n")

args = [a for a in args if a != "--non-interactive"]

def value(flag):
    return args[args.index(flag) + 1] if flag in args else None

stack = value("--stack") or (args[2] if args[:2] == ["stack", "init"] else None)
state = None
if stack and backend.startswith("file://"):
    state = Path(urlparse(backend).path) / ".pulumi" / "stacks" / "kitaru" / (stack + ".json")

def load():
    return json.loads(state.read_text()) if state and state.exists() else None

def save(data):
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(data))

def fail(message):
    print(message, file=sys.stderr)
    sys.exit(255)

def events(target, items):
    lines = [json.dumps({{"sequence": i, "timestamp": int(time.time()), **item}})
             for i, item in enumerate(items)]
    if target.startswith("tcp://"):
        # After 3.205 the Automation API listens for the events: one client stream of
        # EventRequest messages (each an event as JSON) to pulumirpc.Events/StreamEvents.
        import grpc
        from pulumi.runtime.proto import events_pb2, events_pb2_grpc
        with grpc.insecure_channel(target.removeprefix("tcp://")) as channel:
            events_pb2_grpc.EventsStub(channel).StreamEvents(
                iter([events_pb2.EventRequest(event=line) for line in lines]), timeout=60
            )
        return
    with open(target, "a") as f:  # up to 3.205: a file the Automation API tails
        f.writelines(line + "\n" for line in lines)

if args[:1] == ["version"]:
    print("v" + os.environ.get("STAND_IN_PULUMI_VERSION", {version!r}))
    sys.exit(0)
if args[:2] == ["stack", "select"]:
    if load() is None:
        fail(f"error: no stack named '{{stack}}' found")
    sys.exit(0)
if args[:2] == ["stack", "init"]:
    if not (os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        fail("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE")
    save({{"outputs": {{}}, "resources": []}})
    sys.exit(0)
if args[:2] == ["stack", "output"]:
    print(json.dumps((load() or {{}}).get("outputs", {{}})))
    sys.exit(0)
if args[:2] == ["stack", "history"]:
    stamp = "2026-01-01T00:00:00.000Z"
    print(json.dumps([{{"version": 1, "kind": "update", "startTime": stamp, "endTime": stamp,
                       "message": "", "environment": {{}}, "config": {{}}, "result": "succeeded"}}]))
    sys.exit(0)

declared = json.loads(Path(os.environ["STAND_IN_PULUMI_RESOURCES"]).read_text())
current = load() or {{"outputs": {{}}, "resources": []}}
existing = {{tuple(r) for r in current["resources"]}}

if "preview" in args:
    steps = [("same" if tuple(r) in existing else "create", r) for r in declared]
    steps += [("delete", r) for r in current["resources"] if tuple(r) not in {{tuple(d) for d in declared}}]
    urn = "urn:pulumi:" + stack + "::kitaru::{{}}::{{}}"
    items = [{{"resourcePreEvent": {{"metadata": {{"op": op, "urn": urn.format(t, n), "type": t, "provider": ""}}}}}}
             for op, (t, n) in steps]
    counts = {{}}
    for op, _ in steps:
        counts[op] = counts.get(op, 0) + 1
    items += [{{"summaryEvent": {{"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": counts, "PolicyPacks": {{}}}}}},
              {{"cancelEvent": {{}}}}]
    events(value("--event-log"), items)
    print(f"Previewing update ({{stack}}):")
    print("Resources: " + ", ".join(f"{{n}} to {{op}}" for op, n in sorted(counts.items())))
    sys.exit(0)
if "up" in args:
    outputs = json.loads(Path(os.environ["STAND_IN_PULUMI_OUTPUTS"]).read_text())
    save({{"outputs": outputs, "resources": declared}})
    print(f"Updating ({{stack}}):")
    print(f"Resources: + {{len(declared) - len(existing)}} created")
    sys.exit(0)
if "destroy" in args:
    if current["resources"] and os.environ.get("STAND_IN_PULUMI_BUCKET_NOT_EMPTY"):
        fail("error: deleting bucket: BucketNotEmpty: The bucket you tried to delete is not empty")
    save({{"outputs": {{}}, "resources": []}})
    print(f"Destroying ({{stack}}):")
    print(f"Resources: - {{len(current['resources'])}} deleted")
    sys.exit(0)
sys.exit(0)  # config set, plugin install: nothing to do
"""


def install(bin_dir: Path, log: Path) -> Path:
    """Write the stand-in as `pulumi` in `bin_dir`. It calls itself CURRENT unless
    STAND_IN_PULUMI_VERSION names another version (say FILE_EVENTS)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    cli = bin_dir / "pulumi"
    cli.write_text(SCRIPT.format(python=sys.executable, log=str(log), version=CURRENT))
    cli.chmod(0o755)
    return cli


def calls(log: Path) -> list[dict[str, Any]]:
    """Every invocation so far: its arguments (without --non-interactive, which the
    Automation API adds to each), the backend and whether a passphrase was set."""
    if not log.exists():
        return []
    found = [json.loads(line) for line in log.read_text().splitlines()]
    for call in found:
        call["args"] = [a for a in call["args"] if a != "--non-interactive"]
    return found
