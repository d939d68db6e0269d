#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install what is missing, build,
# type-check, lint, and run every test (unit, then end-to-end through the CLI).
set -euo pipefail
cd "$(dirname "$0")/.."

# --busy: run the suite on a machine made busy on purpose, one CPU hog per core for the whole run, as on a user's laptop
# or a shared CI runner (tests must assert nothing that depends on timing).
busy=false
if [ "${1:-}" = "--busy" ]; then busy=true; fi

# npm dependencies: install when missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# What the tests need from the system (bubblewrap, the AWS CLI, Docker, a registry, debootstrap).
bash scripts/test-services.sh install

rm -rf dist   # no stale test files from deleted sources
npx tsc -p .
chmod +x dist/src/cli/main.js
npx eslint .
# Formatting is checked, not hoped for: `npm run format` fixes what this names.
npx prettier --check "**/*.{ts,js}"

# pip must not wait on an index it cannot reach: use the machine's local index when there is one.
if [ -z "${PIP_INDEX_URL:-}" ] && [ -d /opt/pypi/simple ]; then
  export PIP_INDEX_URL=file:///opt/pypi/simple
fi
# The AWS SDK must never look for instance credentials at the link-local metadata address from a test.
export AWS_EC2_METADATA_DISABLED=true
# The pinned AWS SDK runs on Node 20; its notice about future releases is noise in test output.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
# Environments built by the tests are cached here between runs (and thrown away with the clone).
export ALEKSEYLEARN_TEST_CACHE="${ALEKSEYLEARN_TEST_CACHE:-$PWD/.cache/test}"
mkdir -p "$ALEKSEYLEARN_TEST_CACHE"

# The job runtime (runtime/: the Python that runs inside every job) is linted with ruff and tested with pytest,
# both installed from the pip index into a cached virtual environment of the suite's own (with nbclient and ipykernel,
# which the notebook runner's tests run a real kernel with).
runtime_tools="$ALEKSEYLEARN_TEST_CACHE/runtime-tools"
if [ ! -x "$runtime_tools/bin/ruff" ] || ! "$runtime_tools/bin/python" -c "import pytest, nbclient, ipykernel" 2>/dev/null; then
  rm -rf "$runtime_tools"
  python3 -m venv "$runtime_tools"
  "$runtime_tools/bin/pip" install --quiet --disable-pip-version-check ruff pytest nbclient ipykernel
fi
(cd runtime && "$runtime_tools/bin/ruff" check . && "$runtime_tools/bin/ruff" format --check . && "$runtime_tools/bin/pytest" -q -p no:cacheprovider)

# The Docker-side servers (dockerd, a registry, the wheel index over http, a base image), on
# loopback, stopped however the run ends.
services=$(mktemp -d /tmp/alekseylearn-services-XXXXXX)
# Every temporary folder the tests make (os.tmpdir(), and the programs they start) goes under one folder of the run's
# own, removed when the run ends however it ends: a test that forgets its folder cannot fill the machine's /tmp run
# after run (a developer's machine gathered 50 GB that way, and CI's /tmp can be small).
suite_tmp=$(mktemp -d /tmp/alekseylearn-suite-XXXXXX)
hogs=()
cleanup() {
  if [ "${#hogs[@]}" -gt 0 ]; then kill "${hogs[@]}" 2>/dev/null || true; fi
  bash scripts/test-services.sh stop "$services"
  rm -rf "$services"
  echo "test.sh: the tests' temporary files came to $(du -sh "$suite_tmp" 2>/dev/null | cut -f1); removed"
  rm -rf "$suite_tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bash scripts/test-services.sh start "$services"
# shellcheck disable=SC1091
source "$services/env"

if $busy; then
  for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    hogs+=("$!")
  done
  echo "test.sh: $(nproc) CPU hogs running (--busy)"
fi

mapfile -t tests < <(find dist/test -name '*.test.js' | sort)
# Files run three at a time: most of an end-to-end test is waiting (on a container, a poll, a server), and every
# file starts its own servers on free ports with its own state folder, so files share nothing but the machine.
# Each file has its own limit (fileTimeLimit, at most 30 minutes), well under CI's 90. Node's --test-timeout
# applies to a whole file when files run side by side, so it is set to that same 30 minutes, not to one test's share.
TMPDIR="$suite_tmp" node --test --test-reporter=spec --test-timeout=1800000 --test-concurrency="${ALEKSEYLEARN_TEST_CONCURRENCY:-3}" "${tests[@]}"
