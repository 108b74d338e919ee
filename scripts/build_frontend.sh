#!/usr/bin/env bash
# Installs the portal pages' JavaScript dependencies from npm (package.json + package-lock.json, exactly as
# locked) and bundles them with esbuild into static/portal/dist, which whitenoise serves. Needs Node 18+ and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "WARNING: npm is missing (Node 18+ is needed): the portal's graph editor, plots and live views will not load" >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
