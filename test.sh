#!/usr/bin/env bash
# Installs PolicyGrid with its test tools into .venv and runs the whole test suite: once on SQLite and
# once on PostgreSQL. PostgreSQL and Redis are started if they are installed but stopped; tests that
# need a service that is not there are reported as skipped with the reason, never silently.
set -uo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || exit 1
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e './sdk[executor,s3,redis]' -e '.[dev]' || exit 1
scripts/build_frontend.sh || exit 1   # the pages' JavaScript, which the browser tests load

# The browser test drives Debian's chromium (Playwright can't download its own browser here).
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
      || echo "WARNING: could not install chromium: the browser test will be SKIPPED"
  else
    echo "WARNING: /usr/bin/chromium is missing and apt-get is unavailable: the browser test will be SKIPPED"
  fi
fi

export POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
.venv/bin/python scripts/ensure_services.py || true

status=0
# The PostgreSQL pass runs beside the SQLite pass, at a lower priority (nice), so that it fills the CPU the
# SQLite pass leaves idle while its embedded systems wait, without slowing their timed tests; its report is
# printed after the SQLite pass's. It uses a Redis database of its own (the next one down) as Celery's broker.
pg_pid=""
if .venv/bin/python scripts/ensure_services.py --check postgres; then
  pg_log="$(mktemp -t policygrid-pg-pass.XXXXXX)"
  echo "=== test suite on PostgreSQL ($POSTGRES_URL): started beside the SQLite pass, report below it ==="
  # Tests that start the embedded system (./run.sh's shape: SQLite by design, whatever DATABASE_URL says) run
  # in the SQLite pass only, as does tests/functions/test_production_stack.py, which runs jobs and functions on
  # PostgreSQL + Redis whatever DATABASE_URL says.
  EMBEDDED_ONLY=(tests/sdk tests/functions tests/jobs/test_local_runtime.py tests/graphs/test_graph_runs.py
                 tests/graphs/test_graph_recovery.py tests/graphs/test_graph_run_api.py
                 tests/graphs/test_graph_run_records.py tests/portal/test_embedded.py tests/portal/test_first_hour.py
                 tests/portal/test_supervision.py tests/portal/test_front.py tests/portal/test_chunked_bodies.py
                 tests/pages/test_browser_functions.py
                 tests/pages/test_browser_graph_runs.py)
  redis_db="${REDIS_URL##*/}"
  DATABASE_URL="$POSTGRES_URL" REDIS_URL="${REDIS_URL%/*}/$(( ${redis_db:-15} > 0 ? ${redis_db:-15} - 1 : 1 ))" \
    nice -n 10 .venv/bin/python -m pytest -p no:cacheprovider "${EMBEDDED_ONLY[@]/#/--ignore=}" "$@" \
    > "$pg_log" 2>&1 &
  pg_pid=$!
else
  echo "SKIPPED: the PostgreSQL run: no server at $POSTGRES_URL (see the line above)"
fi

echo "=== test suite on SQLite ==="
env -u DATABASE_URL .venv/bin/python -m pytest "$@" || status=$?
if [ -n "$pg_pid" ]; then
  wait "$pg_pid" || status=$?
  echo "=== test suite on PostgreSQL ($POSTGRES_URL) ==="
  cat "$pg_log"
  rm -f "$pg_log"
  .venv/bin/python scripts/ensure_services.py --drop-test-databases || true
fi
exit $status
