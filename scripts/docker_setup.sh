#!/usr/bin/env bash
# Make a Docker engine answer and build the sandbox image (semcoder-sandbox:latest) without a registry.
#
#   bash scripts/docker_setup.sh        # as root; CI runs it after `apt-get install docker.io debootstrap`
#
# 1. If no engine answers, start dockerd in the background (log in $SEMCODER_DOCKERD_LOG) and wait for it.
# 2. If the Dockerfile's base tag (python:3.12-slim) is missing, debootstrap a minimal Debian with python3,
#    pytest and `docker import` it under that tag, so that the build below needs no registry. The tarball
#    is cached in /var/cache/semcoder, so a rerun on the same machine skips debootstrap.
# 3. `docker build` the image from sandbox/Dockerfile (layer cache makes a rebuild take about a second).
# Idempotent: a running engine, an existing base image and cached layers are reused.
#
# Environment (all optional):
#   SEMCODER_SANDBOX_IMAGE  image tag to build                (semcoder-sandbox:latest)
#   SEMCODER_DEBIAN_MIRROR  Debian mirror for debootstrap     (first non-security one in apt's sources)
#   SEMCODER_DOCKERD_ARGS   extra arguments for dockerd       (none)
#   SEMCODER_DOCKERD_LOG    where dockerd logs                (/var/log/semcoder-dockerd.log)
#   SEMCODER_CACHE_DIR      rootfs tarball and build log      (/var/cache/semcoder)
set -euo pipefail

IMAGE="${SEMCODER_SANDBOX_IMAGE:-semcoder-sandbox:latest}"
BASE_TAG="python:3.12-slim" # must match the FROM line of sandbox/Dockerfile
SUITE="bookworm"
PACKAGES="python3,python3-pytest" # pytest: the agent's test driver runs inside the sandbox
ROOTFS_ID="debian-$SUITE-minbase-${PACKAGES//,/-}" # names the cache and labels the imported image
CACHE_DIR="${SEMCODER_CACHE_DIR:-/var/cache/semcoder}"
ROOTFS_TARBALL="$CACHE_DIR/$ROOTFS_ID.tar"
DOCKERD_LOG="${SEMCODER_DOCKERD_LOG:-/var/log/semcoder-dockerd.log}"
ENGINE_TIMEOUT_S=60
REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"

log() { echo "[docker_setup $(date +%T)] $*" >&2; }
die() {
  echo "[docker_setup] ERROR: $*" >&2
  exit 1
}

engine_answers() { docker info >/dev/null 2>&1; }

start_engine() {
  if engine_answers; then
    log "a Docker engine already answers"
    return
  fi
  command -v dockerd >/dev/null || die "dockerd not found; install it with: apt-get install docker.io"
  [[ $EUID -eq 0 ]] || die "no Docker engine answers and starting dockerd needs root"
  log "starting dockerd (log: $DOCKERD_LOG)"
  # setsid: the engine outlives this script and the CI step that ran it. (Without job control the
  # background child is no group leader, so setsid execs in place and $! is dockerd itself.)
  # shellcheck disable=SC2086 # SEMCODER_DOCKERD_ARGS is a list of words on purpose
  setsid dockerd ${SEMCODER_DOCKERD_ARGS:-} >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local dockerd_pid=$! deadline=$((SECONDS + ENGINE_TIMEOUT_S)) problem=""
  until engine_answers; do
    kill -0 "$dockerd_pid" 2>/dev/null || problem="dockerd exited"
    ((SECONDS < deadline)) || problem="dockerd did not answer within ${ENGINE_TIMEOUT_S}s"
    if [[ -n "$problem" ]]; then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      die "$problem (log: $DOCKERD_LOG). Where iptables or overlayfs are missing, retry with" \
        "SEMCODER_DOCKERD_ARGS='--iptables=false --bridge=none' (plus '--storage-driver=vfs')."
    fi
    sleep 0.5
  done
  log "dockerd answers (pid $dockerd_pid)"
}

debian_mirror() {
  if [[ -n "${SEMCODER_DEBIAN_MIRROR:-}" ]]; then
    echo "$SEMCODER_DEBIAN_MIRROR"
    return
  fi
  # deb822 sources (URIs: ...) first, then one-line sources (deb URL suite ...); skip the security archive.
  local mirror
  mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -v security | head -n 1 || true)"
  if [[ -z "$mirror" ]]; then
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" {print $2}' | grep -v security | head -n 1 || true)"
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

build_rootfs_tarball() {
  command -v debootstrap >/dev/null || die "debootstrap not found; install it with: apt-get install debootstrap"
  local mirror rootfs
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d /tmp/semcoder-rootfs.XXXXXX)"
  # shellcheck disable=SC2064 # expand now: the path is local to this function
  trap "rm -rf '$rootfs'" EXIT
  log "debootstrap $SUITE (minbase + $PACKAGES) from $mirror"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    die "debootstrap failed (full log: $rootfs.log)"
  }
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  mkdir -p "$CACHE_DIR"
  # Write under a temporary name so that an interrupted run never leaves a truncated cache behind.
  tar --numeric-owner -C "$rootfs" -cf "$ROOTFS_TARBALL.partial" .
  mv "$ROOTFS_TARBALL.partial" "$ROOTFS_TARBALL"
  rm -rf "$rootfs"
  trap - EXIT
}

# The label of the base image: empty for a real (pulled) image, the rootfs id for one we imported.
base_image_rootfs() {
  docker image inspect --format '{{ index .Config.Labels "semcoder.rootfs" }}' "$BASE_TAG" 2>/dev/null
}

import_base_image() {
  if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    local imported
    imported="$(base_image_rootfs)"
    [[ "$imported" == "<no value>" ]] && imported=""
    if [[ -z "$imported" || "$imported" == "$ROOTFS_ID" ]]; then
      log "base image $BASE_TAG present${imported:+ (imported $imported)}"
      return
    fi
    log "base image $BASE_TAG was imported from $imported; replacing it with $ROOTFS_ID"
  fi
  if [[ -s "$ROOTFS_TARBALL" ]]; then
    log "reusing cached rootfs $ROOTFS_TARBALL"
  else
    build_rootfs_tarball
  fi
  log "docker import -> $BASE_TAG (a debootstrapped Debian $SUITE with $PACKAGES, not the Docker Hub image)"
  docker import --message "semcoder: debootstrap $SUITE minbase + $PACKAGES (offline stand-in)" \
    --change "LABEL semcoder.rootfs=$ROOTFS_ID" "$ROOTFS_TARBALL" "$BASE_TAG" >/dev/null
}

build_sandbox_image() {
  log "docker build -t $IMAGE $REPO_ROOT/sandbox"
  # The classic builder uses the local base image as is; it never asks a registry.
  DOCKER_BUILDKIT=0 docker build --quiet -t "$IMAGE" "$REPO_ROOT/sandbox" >/dev/null 2>"$CACHE_DIR/build.log" || {
    cat "$CACHE_DIR/build.log" >&2
    die "docker build of $IMAGE failed"
  }
  docker run --rm --network none --read-only "$IMAGE" python3 -c \
    'import os, sys, pytest; assert os.getuid() == 10001; print("python", sys.version.split()[0], "pytest", pytest.__version__, "as uid", os.getuid())' |
    sed "s/^/[docker_setup] $IMAGE runs: /" >&2
}

main() {
  local started=$SECONDS
  mkdir -p "$CACHE_DIR"
  start_engine
  import_base_image
  build_sandbox_image
  log "done in $((SECONDS - started))s"
}

main "$@"
