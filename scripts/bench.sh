#!/usr/bin/env bash
# Build, then run every benchmark in bench/; each prints its comparisons.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund
npx tsc -p .
if [ -z "${PIP_INDEX_URL:-}" ] && [ -d /opt/pypi/simple ]; then export PIP_INDEX_URL=file:///opt/pypi/simple; fi
export AWS_EC2_METADATA_DISABLED=true AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
export ALEKSEYLEARN_TEST_CACHE="${ALEKSEYLEARN_TEST_CACHE:-$PWD/.cache/test}"
# The Docker-side servers the resubmission benchmark pushes to (as in `npm test`).
bash scripts/test-services.sh install
services=$(mktemp -d /tmp/alekseylearn-services-XXXXXX)
trap 'bash scripts/test-services.sh stop "$services"; rm -rf "$services"' EXIT
trap 'exit 130' INT TERM
bash scripts/test-services.sh start "$services"
# shellcheck disable=SC1091
source "$services/env"
for bench in dist/bench/*.js; do node "$bench"; echo; done
