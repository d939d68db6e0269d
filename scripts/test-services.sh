#!/usr/bin/env bash
# Installs (as root, when missing) the system packages the test suite needs:
# bubblewrap (the local backend's private /opt/ml and the Kaggle test server's
# kernels) and the AWS CLI (the S3 tests put objects with it). moto comes with
# the machine and is never reinstalled; the servers themselves (moto, s3rver,
# the Kaggle API test server) are started and stopped by the tests, on loopback.
set -euo pipefail

need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v aws >/dev/null 2>&1 || need+=(awscli)
if ! command -v moto_server >/dev/null 2>&1; then
  echo "test-services: moto_server is missing; this machine kind ships it (pip package moto)" >&2
  exit 1
fi

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
