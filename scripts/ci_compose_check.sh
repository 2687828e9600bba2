#!/usr/bin/env bash
# CI: compose.yaml is valid, the api image builds offline, and a container of it answers /health and
# repairs a function through the Docker sandbox backend (the configuration compose.yaml deploys).
#
#   bash scripts/ci_compose_check.sh     # as root, after scripts/docker_setup.sh (engine + sandbox image)
#
# Compose validation uses `docker compose config` (v2 plugin) when present, else `docker-compose config`
# (v1, Debian bookworm's `docker-compose` package, installed here with apt when missing and running as root).
# The image build needs no registry: the base tag python:3.12-slim is the stand-in docker_setup.sh imports,
# which has no pip and no route to PyPI, so the wheels are built here (`pip wheel`) into build/api-wheels/
# for the Dockerfile to install from. Environment: SEMCODER_API_IMAGE (semcoder-api:ci).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${SEMCODER_API_IMAGE:-semcoder-api:ci}"
WHEELS="build/api-wheels"
CONTAINER="semcoder-api-ci-$$"
TOKEN="ci-token-$RANDOM$RANDOM"

log() { echo "[ci_compose_check $(date +%T)] $*" >&2; }
die() {
  echo "[ci_compose_check] ERROR: $*" >&2
  exit 1
}

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"
  elif command -v docker-compose >/dev/null; then
    docker-compose "$@"
  else
    die "no Compose: install the docker compose plugin or 'apt-get install docker-compose'"
  fi
}

validate_compose() {
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null && [[ $EUID -eq 0 ]]; then
    log "installing docker-compose (v1) to validate compose.yaml"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  fi
  for profile in "" postgres replicas; do
    SEMCODER_API_TOKEN=ci compose -f compose.yaml ${profile:+--profile "$profile"} config -q ||
      die "compose.yaml is invalid${profile:+ (profile $profile)}"
  done
  local services
  services="$(SEMCODER_API_TOKEN=ci compose -f compose.yaml --profile postgres --profile replicas config --services | sort | tr '\n' ' ')"
  [[ "$services" == "api api-replica postgres vllm " ]] ||
    die "compose.yaml services are '$services', expected api api-replica postgres vllm"
  # The second replica runs the API's image and settings on the Postgres database.
  local replica
  replica="$(SEMCODER_API_TOKEN=ci compose -f compose.yaml --profile postgres --profile replicas config)"
  grep -q "postgresql://semcoder:semcoder@postgres:5432/semcoder" <<<"$replica" ||
    die "the api-replica service is not on the Postgres database"
  # The tensor-parallel option reaches vLLM's command line and the GPU reservation together.
  local rendered
  rendered="$(SEMCODER_API_TOKEN=ci SEMCODER_TP=2 SEMCODER_GPUS=2 compose -f compose.yaml config)"
  grep -q -- "--tensor-parallel-size=2" <<<"$rendered" || die "SEMCODER_TP=2 did not reach vLLM's command"
  grep -Eq "count: '?2'?" <<<"$rendered" || die "SEMCODER_GPUS=2 did not reach the GPU reservation"
  log "compose.yaml is valid (services: $services; SEMCODER_TP/SEMCODER_GPUS reach vLLM)"
}

build_wheels() {
  local image_python host_python
  image_python="$(docker run --rm --network none python:3.12-slim python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  host_python="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  [[ "$image_python" == "$host_python" ]] ||
    die "the base image has Python $image_python but this host $host_python: wheels built here would not fit"
  rm -rf "$WHEELS"
  log "pip wheel '.[postgres]' pip -> $WHEELS (Python $host_python)"
  mkdir -p build
  python3 -m pip wheel -q '.[postgres]' pip -w "$WHEELS" >build/api-wheels.log 2>&1 || {
    tail -n 30 build/api-wheels.log >&2
    die "pip wheel failed (log: build/api-wheels.log)"
  }
}

build_image() {
  log "docker build -t $IMAGE ."
  # --network none: the build must not need one (and the engine may have no bridge).
  DOCKER_BUILDKIT=0 docker build --network none -q -t "$IMAGE" . >/dev/null 2>build/api-image.log || {
    tail -n 30 build/api-image.log >&2
    die "docker build of $IMAGE failed (log: build/api-image.log)"
  }
}

check_container() {
  local port
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # Host networking: the engine may run without a bridge (--bridge=none); the socket gives the Docker backend.
  docker run -d --name "$CONTAINER" --network host -e SEMCODER_API_TOKEN="$TOKEN" \
    -v /var/run/docker.sock:/var/run/docker.sock "$IMAGE" \
    semcoder serve --host 127.0.0.1 --port "$port" >/dev/null
  # A graceful stop lets the server close its sandbox backend, which removes its spare containers.
  # shellcheck disable=SC2064 # expand the container name now
  trap "[[ \$? -eq 0 ]] || docker logs '$CONTAINER' 2>&1 | tail -n 30 >&2; docker stop -t 30 '$CONTAINER' >/dev/null 2>&1; docker rm -f '$CONTAINER' >/dev/null 2>&1 || true" EXIT
  API_URL="http://127.0.0.1:$port" API_TOKEN="$TOKEN" python3 - <<'PY'
import os, sys, time
import httpx

url, auth = os.environ["API_URL"], {"Authorization": f"Bearer {os.environ['API_TOKEN']}"}
deadline = time.monotonic() + 120
while True:
    try:
        health = httpx.get(f"{url}/health", timeout=3)
        if health.status_code == 200:
            break
    except httpx.HTTPError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the api container did not answer /health within 120 s")
    time.sleep(1)
print("[ci_compose_check] /health:", health.json(), file=sys.stderr)
assert httpx.get(f"{url}/v1/repairs", timeout=10).status_code == 401
body = {"code": "def add(a, b):\n    return a - b\n", "model": "none",
        "tests": "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"}
run = httpx.post(f"{url}/v1/repairs", json=body, headers=auth, timeout=30).json()
while (seen := httpx.get(f"{url}/v1/repairs/{run['id']}", headers=auth, timeout=10).json())["status"] in ("queued", "running"):
    if time.monotonic() > deadline + 180:
        sys.exit(f"the repair did not finish: {seen}")
    time.sleep(1)
assert seen["status"] == "fixed", seen
print(f"[ci_compose_check] repair through the Docker sandbox backend: {seen['status']}, "
      f"{seen['executions']} executions", file=sys.stderr)
PY
}

validate_compose
build_wheels
build_image
check_container
log "ok"
