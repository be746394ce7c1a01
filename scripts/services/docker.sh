#!/usr/bin/env bash
# A Docker engine, a container registry and a Python base image for the stack tests.
#
#   scripts/services/docker.sh up|down
#
# The engine is this checkout's own dockerd (socket and data under
# $KITARU_SERVICES_DIR/docker): it never talks to, restarts or stops another daemon.
# Sandboxes like CI's have no iptables and no bridge, so the engine uses no bridge network:
# builds and containers use host networking. Their own file system refuses overlayfs, and
# vfs copies every layer whole (a CI run grew to 16 GB and filled its disk), so the engine's
# data lives on an ext4 file system in a sparse file of its own ($DIR/engine-disk.img,
# loop-mounted with discard, so deleted layers give their space back), where overlay2
# works. Where that cannot be mounted (no loop devices, not root, or
# KITARU_DOCKER_STORAGE=vfs), the engine falls back to vfs on the plain directory.
# Nothing can be pulled, so the base image is Debian bookworm made with debootstrap
# (python3, venv, pip, and the host's extra CA certificates, which the TLS-intercepting
# proxy here needs) and imported with `docker import`. The root filesystem is cached in
# $KITARU_SERVICES_CACHE, so a second run only imports it, and the engine's data stays
# between runs, so a third finds the image already there.
#
# Writes: DOCKER_HOST, KITARU_TEST_REGISTRY (host:port), KITARU_TEST_AUTH_REGISTRY (one that
# demands a login), KITARU_TEST_BASE_IMAGE.
source "$(dirname "$0")/lib.sh"

DIR="$(service_dir docker)"
SOCK="$DIR/dockerd.sock"
PIDFILE="$DIR/dockerd.pid"
REG_DIR="$DIR/registry"
CACHE="$KITARU_SERVICES_CACHE/base-image"
export DOCKER_HOST="unix://$SOCK"

engine_up() { docker version >/dev/null 2>&1; }

need_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "docker: installing ${missing[*]}"
    apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update -q >/dev/null
      apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
    }
  fi
}

DISK="$DIR/engine-disk.img"

# overlay2 works here: an overlay mount succeeds on the engine's data directory.
overlay_works() {
  local probe="$DIR/data/.overlay-probe" ok=1
  mkdir -p "$probe"/{lower,upper,work,merged}
  mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
    "$probe/merged" >/dev/null 2>&1 && { umount "$probe/merged"; ok=0; }
  rm -rf "$probe"
  return "$ok"
}

# Prints the storage driver: overlay2 on the engine's own ext4 disk, else vfs.
engine_storage() {
  mkdir -p "$DIR/data"
  if [ "${KITARU_DOCKER_STORAGE:-}" = vfs ]; then echo vfs; return; fi
  if ! mountpoint -q "$DIR/data"; then
    if ! command -v mkfs.ext4 >/dev/null || [ -n "$(ls -A "$DIR/data")" ]; then echo vfs; return; fi
    if [ ! -f "$DISK" ]; then
      truncate -s 64G "$DISK" && mkfs.ext4 -q -F -m 0 "$DISK" >/dev/null 2>&1 || {
        rm -f "$DISK"; echo vfs; return; }
    fi
    mount -o loop,discard "$DISK" "$DIR/data" >/dev/null 2>&1 || { echo vfs; return; }
  fi
  if overlay_works; then echo overlay2; else umount "$DIR/data" >/dev/null 2>&1 || true; echo vfs; fi
}

start_engine() {
  if engine_up; then return 0; fi
  rm -f "$SOCK" "$PIDFILE"
  local storage; storage="$(engine_storage)"
  log "docker: storage driver $storage"
  # setsid: its own process group, so `down` stops dockerd and its containerd together.
  setsid dockerd --storage-driver="$storage" --iptables=false --ip6tables=false --bridge=none \
    --host="unix://$SOCK" --data-root="$DIR/data" --exec-root="$DIR/exec" \
    --pidfile="$DIR/dockerd.daemon.pid" >"$DIR/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  wait_for 60 engine_up || { tail -30 "$DIR/dockerd.log" >&2; return 1; }
}

start_registry() {
  mkdir -p "$REG_DIR/data"
  if [ -f "$REG_DIR/port" ] && curl -fsS "http://127.0.0.1:$(cat "$REG_DIR/port")/v2/" >/dev/null 2>&1; then
    return 0
  fi
  local port; port="$(free_port)"
  # Not /etc/docker/registry/config.yml: it turns on htpasswd auth.
  cat > "$REG_DIR/config.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $REG_DIR/data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
YML
  setsid docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 < /dev/null &
  echo $! > "$REG_DIR/registry.pid"
  echo "$port" > "$REG_DIR/port"
  wait_for 30 curl -fsS "http://127.0.0.1:$port/v2/" || { cat "$REG_DIR/registry.log" >&2; return 1; }
}

# A second registry that demands a login (htpasswd: user kitaru, password kitaru-test),
# for the tests of a registry refusing this machine. Only its bcrypt hash is here.
start_auth_registry() {
  local dir="$DIR/auth-registry"
  mkdir -p "$dir/data"
  if [ -f "$dir/port" ] && curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$dir/port")/v2/" 2>/dev/null | grep -q 401; then
    return 0
  fi
  local port; port="$(free_port)"
  echo 'kitaru:$2b$05$pUk6LRgu6ZD2HLFvccKqtuTS5.tHplvfxUBMz59jxxYOQXbc2B0VK' > "$dir/htpasswd"
  cat > "$dir/config.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/data}
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd: {realm: kitaru-test, path: $dir/htpasswd}
YML
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 < /dev/null &
  echo $! > "$dir/registry.pid"
  echo "$port" > "$dir/port"
  wait_for 30 sh -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/v2/ | grep -q 401" || {
    cat "$dir/registry.log" >&2; return 1; }
}

# The cache key covers what goes into the root filesystem: the recipe and the CA certificates.
# The image is named by it too, so an engine that kept an image of an older recipe
# imports the new one instead of reusing the old.
rootfs_key() {
  { echo "bookworm minbase python3 python3-venv python3-pip ca-certificates v2 (/ is 0755)"
    cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
  } | sha256sum | cut -c1-16
}

BASE_IMAGE="kitaru-test/python:3.11-bookworm-$(rootfs_key)"

build_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
  local key tarball
  key="$(rootfs_key)"
  tarball="$CACHE/rootfs-$key.tar"
  mkdir -p "$CACHE"
  if [ ! -f "$tarball" ]; then
    local mirror rootfs
    mirror="$(grep -h -m1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}' || true)"
    [ -n "$mirror" ] || mirror="$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
    mirror="${mirror:-http://deb.debian.org/debian}"
    rootfs="$(mktemp -d "$CACHE/rootfs.XXXX")"
    # mktemp makes the directory 0700; as the image's / it would lock out every user
    # but root (images that run as an unprivileged user could not find python3).
    chmod 0755 "$rootfs"
    log "docker: debootstrap bookworm into $rootfs (about a minute, once)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$rootfs" "$mirror" >"$DIR/debootstrap.log" 2>&1 || {
      tail -30 "$DIR/debootstrap.log" >&2; rm -rf "$rootfs"; return 1; }
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
      cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
      chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    # A temporary name per process: two checkouts may build the same key at once.
    tar -C "$rootfs" -cf "$tarball.$$.tmp" . && mv "$tarball.$$.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  local ca=/etc/ssl/certs/ca-certificates.crt
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV SSL_CERT_FILE=$ca" \
    --change "ENV PIP_CERT=$ca" \
    --change "ENV REQUESTS_CA_BUNDLE=$ca" \
    --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
    --change 'CMD ["python3"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
}

up() {
  need_packages
  start_engine
  start_registry
  start_auth_registry
  build_base_image
  write_env docker \
    "export DOCKER_HOST=unix://$SOCK" \
    "export KITARU_TEST_REGISTRY=127.0.0.1:$(cat "$REG_DIR/port")" \
    "export KITARU_TEST_AUTH_REGISTRY=127.0.0.1:$(cat "$DIR/auth-registry/port")" \
    "export KITARU_TEST_BASE_IMAGE=$BASE_IMAGE"
  log "docker: engine $DOCKER_HOST, registry 127.0.0.1:$(cat "$REG_DIR/port"), base image $BASE_IMAGE"
}

down() {
  stop_pidfile "$REG_DIR/registry.pid"
  stop_pidfile "$DIR/auth-registry/registry.pid"
  if engine_up; then
    # Containers of earlier runs would otherwise hold their network and pids.
    ids="$(docker ps -q --filter label=kitaru.exec_id 2>/dev/null || true)"
    [ -z "$ids" ] || docker kill $ids >/dev/null 2>&1 || true
  fi
  stop_pidfile "$PIDFILE"
  # What the engine mounted stays mounted after it stops (its network namespace, and our
  # disk): without this, removing the checkout fails until they are unmounted by hand.
  local m
  for m in "$DIR/exec/netns/default" "$DIR/data"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
  done
  rm -f "$KITARU_SERVICES_DIR/docker.env"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
