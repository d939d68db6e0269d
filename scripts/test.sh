#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install what is missing, build,
# type-check, lint, and run every test (unit, then end-to-end through the CLI).
set -euo pipefail
cd "$(dirname "$0")/.."

# npm dependencies: install when missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# What the local backend needs from the system (bubblewrap for a private /opt/ml).
bash scripts/test-services.sh install

rm -rf dist   # no stale test files from deleted sources
npx tsc -p .
chmod +x dist/src/cli/main.js
npx eslint .

# pip must not wait on an index it cannot reach: use the machine's local index when there is one.
if [ -z "${PIP_INDEX_URL:-}" ] && [ -d /opt/pypi/simple ]; then
  export PIP_INDEX_URL=file:///opt/pypi/simple
fi
# The AWS SDK must never look for instance credentials at the link-local metadata address from a test.
export AWS_EC2_METADATA_DISABLED=true
# Environments built by the tests are cached here between runs (and thrown away with the clone).
export ALEKSEYLEARN_TEST_CACHE="${ALEKSEYLEARN_TEST_CACHE:-$PWD/.cache/test}"
mkdir -p "$ALEKSEYLEARN_TEST_CACHE"

mapfile -t tests < <(find dist/test -name '*.test.js' | sort)
node --test --test-reporter=spec "${tests[@]}"
