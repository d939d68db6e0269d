#!/usr/bin/env bash
# Installs (as root, when missing) the system packages the test suite needs.
# Later backends add their servers here (start/stop); the local backend needs
# only bubblewrap and Python's venv module.
set -euo pipefail

need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

case "${1:-install}" in
  install)
    if [ ${#need[@]} -gt 0 ]; then
      if [ "$(id -u)" = 0 ]; then
        echo "test-services: installing ${need[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
      else
        echo "test-services: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
        exit 1
      fi
    fi
    ;;
  *)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac
