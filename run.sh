#!/usr/bin/env bash
# Installs PolicyGrid into .venv and starts the whole system on the embedded default (SQLite, local
# runtime, filesystem broker): portal + worker + beat + a local executor, with demo data.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e './sdk[executor,s3,redis]' -e .
scripts/build_frontend.sh || true   # the pages' JavaScript (npm + esbuild); says so if Node is missing
exec .venv/bin/python manage.py run_embedded "$@"
