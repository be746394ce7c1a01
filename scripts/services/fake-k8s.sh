#!/usr/bin/env bash
# A local Kubernetes API emulator for the kubernetes orchestrator tests.
#
# NOT a real cluster: no kube-apiserver, etcd, kind or k3s can be fetched here. This is
# kmock's KubernetesEmulator (PyPI kmock): it stores objects as they are sent on the real
# Kubernetes REST paths (create, get, list, patch, status, delete) with no controllers, no
# defaulting, no validation and no label selectors (clients filter what they list).
# Manifests are validated separately (kubernetes-validate). A pod's log (`pods/NAME/log`)
# is served from the file a test kubelet writes, as a kubelet serves it from the node's
# /var/log/pods: KITARU_TEST_K8S_POD_LOGS/NAMESPACE/POD/CONTAINER.log.
#
# Writes: KITARU_TEST_KUBECONFIG (a kubeconfig pointing at the emulator) and
# KITARU_TEST_K8S_POD_LOGS.
source "$(dirname "$0")/lib.sh"
NAME=fake-k8s
KMOCK_VERSION=0.8
DIR="$(service_dir "$NAME")"
PIDFILE="$DIR/pid"

answering() { curl -fsS -o /dev/null "http://127.0.0.1:$1/version"; }

up() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && answering "$(cat "$DIR/port")" 2>/dev/null; then
    log "fake-k8s already up on port $(cat "$DIR/port")"
  else
    stop_pidfile "$PIDFILE"
    local venv lock port
    lock="$KITARU_SERVICES_CACHE/venv-$NAME.lock"
    exec 9>"$lock"; flock 9
    venv="$(cached_venv "kmock-$KMOCK_VERSION" "kmock==$KMOCK_VERSION")"
    flock -u 9
    port="$(free_port)"
    echo "$port" > "$DIR/port"
    cat > "$DIR/server.py" <<'PY'
import asyncio, os, pathlib, signal
import kmock

LOGS = pathlib.Path(os.environ["FAKE_K8S_POD_LOGS"])


def pod_log(request: kmock.Request) -> object:
    container = request.params.get("container") or ""
    parts = [request.namespace or "", request.name or "", container]
    if not all(p and "/" not in p and not p.startswith(".") for p in parts):
        return kmock.KubernetesObjectNotFoundError()
    path = LOGS.joinpath(*parts[:2], f"{container}.log")
    if not path.is_file():
        return kmock.KubernetesObjectNotFoundError()
    return path.read_text(errors="replace")  # text/plain, as the API server sends it


async def main() -> None:
    port = int(os.environ["FAKE_K8S_PORT"])
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator, host="127.0.0.1", port=port):
        # Declared up front: a real API server lists an empty collection, not a 404.
        for resource in ("batch/v1/jobs", "v1/pods", "v1/namespaces", "v1/secrets"):
            emulator.resources[resource] = {}
        emulator[kmock.subresource("log")] << pod_log
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

asyncio.run(main())
PY
    mkdir -p "$DIR/pod-logs"
    FAKE_K8S_PORT="$port" FAKE_K8S_POD_LOGS="$DIR/pod-logs" setsid "$venv/bin/python" "$DIR/server.py" > "$DIR/server.log" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    if ! wait_for 60 answering "$port"; then
      tail -30 "$DIR/server.log" >&2; stop_pidfile "$PIDFILE"; return 1
    fi
  fi
  cat > "$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$(cat "$DIR/port")"}}]
users: [{name: fake, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: default}}]
current-context: fake
KC
  write_env "$NAME" "export KITARU_TEST_KUBECONFIG=$DIR/kubeconfig" \
    "export KITARU_TEST_K8S_POD_LOGS=$DIR/pod-logs"
  log "fake-k8s (kmock emulator, not a real cluster) on http://127.0.0.1:$(cat "$DIR/port")"
}

case "${1:-}" in
  up) up ;;
  down) stop_pidfile "$PIDFILE"; rm -f "$KITARU_SERVICES_DIR/$NAME.env" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
