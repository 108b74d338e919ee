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
echo "=== test suite on SQLite ==="
env -u DATABASE_URL .venv/bin/python -m pytest "$@" || status=$?
if .venv/bin/python scripts/ensure_services.py --check postgres; then
  echo "=== test suite on PostgreSQL ($POSTGRES_URL) ==="
  DATABASE_URL="$POSTGRES_URL" .venv/bin/python -m pytest --ignore=tests/sdk "$@" || status=$?
  .venv/bin/python scripts/ensure_services.py --drop-test-databases || true
else
  echo "SKIPPED: the PostgreSQL run: no server at $POSTGRES_URL (see the line above)"
fi
exit $status
