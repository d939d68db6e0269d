#!/usr/bin/env bash
# Build, then run every benchmark in bench/; each prints its comparisons.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund
npx tsc -p .
if [ -z "${PIP_INDEX_URL:-}" ] && [ -d /opt/pypi/simple ]; then export PIP_INDEX_URL=file:///opt/pypi/simple; fi
for bench in dist/bench/*.js; do node "$bench"; echo; done
