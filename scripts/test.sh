#!/usr/bin/env bash
# Install everything the test suite needs (a venv with the package and its test extras) and run it.
# Used as is by the README and by .ci/run. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# The UI tests drive Debian's chromium (Playwright never downloads a browser here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Debian's chromium is needed for the UI tests: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

# Its own environment: reinstalling the package never touches the quick start's .venv (a running server).
VENV=${GAMELENS_VENV:-.venv-test}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'

"$VENV/bin/ruff" check .

# pytest exits 5 when it collected no test: that is a failure here. A pass that outlives PASS_LIMIT_S (a hang
# pytest-timeout cannot end, e.g. a worker that never exits) is aborted with SIGABRT, on which every test process
# prints its threads' stacks (faulthandler), and fails: well before the CI's own 90 min, which says nothing.
# `timeout` runs pytest in a process group of its own, out of reach of a terminal's Ctrl-C and of a kill of this
# script's group: this script passes those signals on (timeout hands them to its whole group).
PASS_LIMIT_S=${GAMELENS_TEST_PASS_LIMIT_S:-1500}
run_pytest() {
  set +e
  timeout --signal=ABRT --kill-after=60 "$PASS_LIMIT_S" "$VENV/bin/python" -m pytest "$@" &
  local pid=$!
  trap 'kill -INT "$pid" 2>/dev/null' INT
  trap 'kill -TERM "$pid" 2>/dev/null' TERM HUP
  wait "$pid"
  local status=$?
  while kill -0 "$pid" 2>/dev/null; do  # a signal ends `wait` early: wait for the pass to end on it
    wait "$pid"
    status=$?
  done
  trap - INT TERM HUP
  set -e
  if [ "$status" -eq 5 ]; then echo "no tests ran" >&2; exit 1; fi
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then echo "the pass outlived ${PASS_LIMIT_S} s" >&2; fi
  [ "$status" -eq 0 ] || exit "$status"
}

# Three workers on two cores (GAMELENS_TEST_WORKERS; 0 runs in this process): many tests wait on servers,
# downloads and graces, so a third overlaps those waits. Pass 1 here, one run each: 9 min 13 s on two
# workers (7 min 51 s in the last CI run on two), 6 min 17 s on three, 7 min 6 s on four (beside other
# work); pass 2: 4 min 3 s on three (5 min 34 s on two in that CI run). Fifteenth pass (docs/measured.md):
# pass 1 455 s on three, 462 s on four; pass 2 276 s on three. Thirty-second (each test's databases dropped
# after it, tests/conftest.py _drop_databases): pass 1 548 s on three (709 before), 596 s on four; pass 2 282 s
# (365 before). Thirty-third (one idle connection per test process holds the engine, tests/conftest.py
# _EngineHold), three workers: pass 1 436 s (515 just before, the same hour), pass 2 181 s (282 at the last
# pass, not measured again the same hour).
WORKERS=(-n "${GAMELENS_TEST_WORKERS:-3}")

# 1. The embedded engine through chDB's own driver (the default): every test.
run_pytest "${WORKERS[@]}" "$@"
# 2. Through clickhouse-connect, the server-mode code path (its chdb:// backend drives the same engine
#    in-process; with GAMELENS_TEST_CLICKHOUSE_URL set, that server): the tests of what differs between
#    the two paths (statements, parameters, loads, versions, records, keys, exports). Left out: the files
#    that consume the API from above (page, CLI, schema conformance, README examples, answer cache) or
#    test what happens before it (the link guard's downloads, parameter parsing by fuzzing), and the tests
#    marked `above_the_engine` (faults injected into the Engine object, request bodies, logs, the sending
#    of an export computed whole; a CLI on a data directory, which runs the embedded engine either way):
#    the statements they send are the ones the tests kept here send. Stops during a load stay in: the
#    streamed insert and the staging table's drop go through the transport.
echo "--- again, through clickhouse-connect ---"
ABOVE_THE_ENGINE=(--ignore tests/test_ui.py --ignore tests/test_cli.py --ignore tests/test_schemathesis.py
                  --ignore tests/test_readme.py --ignore tests/test_cache.py --ignore tests/test_link_guard.py
                  --ignore tests/test_fuzz.py -m "not above_the_engine")
GAMELENS_TEST_ENGINE=connect run_pytest "${WORKERS[@]}" "${ABOVE_THE_ENGINE[@]}" "$@"
