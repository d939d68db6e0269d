#!/usr/bin/env bash
# The system side of the test suite.
#
#   install      install (as root, when missing) what the tests need from Debian:
#                bubblewrap (the local backend's private /opt/ml, the Kaggle test
#                server's kernels), the AWS CLI (tests put objects with it),
#                docker.io, docker-registry and debootstrap (the SageMaker tests).
#   start DIR    start, on loopback only, the Docker-side servers the SageMaker
#                tests use, and write DIR/env (export lines) naming them:
#                  DOCKER_HOST                      a private dockerd (no bridge, no iptables)
#                  ALEKSEYLEARN_TEST_REGISTRY       a docker-registry standing in for ECR's registry
#                  ALEKSEYLEARN_TEST_REGISTRY_DATA  its storage (a benchmark measures bytes pushed there)
#                  ALEKSEYLEARN_TEST_PIP_INDEX      the machine's wheel index over http, for pip in builds
#                  ALEKSEYLEARN_TEST_BASE_IMAGE     python:3.11-slim, made from Debian packages (no Docker Hub here)
#   stop DIR     stop them again (safe to run twice).
#
# moto comes with the machine and is never reinstalled; moto, s3rver and the
# Kaggle and SageMaker test servers are started by the tests themselves.
set -euo pipefail

say() { echo "test-services: $*" >&2; }

install() {
  local need=()
  command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  command -v aws >/dev/null 2>&1 || need+=(awscli)
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  if ! command -v moto_server >/dev/null 2>&1; then
    say "moto_server is missing; this machine kind ships it (pip package moto)"
    exit 1
  fi
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      say "installing ${need[*]}"
      # Packages must not start their daemons (a system dockerd, a registry on :5000): the tests start their own.
      local guard=""
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod +x "$guard"
      fi
      local status=0
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } || status=$?
      [ -z "$guard" ] || rm -f "$guard"
      [ "$status" = 0 ] || exit "$status"
    else
      say "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root"
      exit 1
    fi
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_until() { # SECONDS WHAT COMMAND...
  local limit=$1 what=$2
  shift 2
  for _ in $(seq $((limit * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  say "$what did not come up within ${limit}s"
  return 1
}

# The Debian mirror apt uses, for debootstrap.
mirror() {
  local uri
  uri=$(grep -hsE '^URIs:|^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -m1 -E 'debian/?( |$)' | sed -E 's/^URIs: *//; s/^deb +(\[[^]]*\] +)?//; s/ .*//')
  echo "${uri:-http://deb.debian.org/debian}"
}

start() {
  local dir=$1 cache
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  cache="${ALEKSEYLEARN_TEST_CACHE:-$PWD/.cache/test}"
  mkdir -p "$cache"
  : >"$dir/env"

  # A private dockerd. Its images and build cache persist in the test cache (a rerun on the same
  # clone rebuilds nothing); no bridge and no iptables rules: builds and containers use the host's
  # network, on loopback.
  local exec_root
  exec_root=$(mktemp -d /tmp/alekseylearn-dx-XXXXXX)
  echo "$exec_root" >"$dir/exec-root"
  say "starting dockerd"
  dockerd --host "unix://$dir/docker.sock" --data-root "$cache/docker" --exec-root "$exec_root" \
    --pidfile "$dir/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
    >"$dir/dockerd.log" 2>&1 &
  export DOCKER_HOST="unix://$dir/docker.sock"
  if ! wait_until 60 dockerd docker version --format '{{.Server.Version}}'; then
    tail -20 "$dir/dockerd.log" >&2
    return 1
  fi
  echo "export DOCKER_HOST=$DOCKER_HOST" >>"$dir/env"

  # A registry for ECR's: plain http on loopback (Docker allows that for 127.0.0.0/8).
  local port
  port=$(free_port)
  mkdir -p "$dir/registry"
  cat >"$dir/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  wait_until 30 docker-registry curl -fsS "http://127.0.0.1:$port/v2/"
  echo "export ALEKSEYLEARN_TEST_REGISTRY=127.0.0.1:$port" >>"$dir/env"
  echo "export ALEKSEYLEARN_TEST_REGISTRY_DATA=$dir/registry" >>"$dir/env"

  # The machine's wheel index over http, so pip inside an image build can reach it.
  local index
  index=$(pip config get global.index-url 2>/dev/null || true)
  index=${index#file://}
  [ -d "$index" ] || index=/opt/pypi/simple
  port=$(free_port)
  python3 -m http.server --bind 127.0.0.1 --directory "$(dirname "$index")" "$port" >"$dir/pip-index.log" 2>&1 &
  echo $! >"$dir/pip-index.pid"
  wait_until 30 "the wheel index" curl -fsS "http://127.0.0.1:$port/$(basename "$index")/"
  echo "export ALEKSEYLEARN_TEST_PIP_INDEX=http://127.0.0.1:$port/$(basename "$index")" >>"$dir/env"

  # The base image, with no Docker Hub: a minimal Debian 12 with Python, made once by debootstrap and
  # kept as a tarball in the test cache, imported under the name the product defaults to.
  local packages="python3,python3-venv,python3-pip,ca-certificates"
  local rootfs="$cache/base-image/bookworm-$(echo "$packages" | md5sum | cut -c1-8).tar"
  if ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
    if [ ! -f "$rootfs" ]; then
      say "building the base image with debootstrap (once per cache; about a minute)"
      local root
      root=$(mktemp -d /tmp/alekseylearn-rootfs-XXXXXX)
      debootstrap --variant=minbase --include="$packages" bookworm "$root" "$(mirror)" >"$dir/debootstrap.log" 2>&1 ||
        { tail -20 "$dir/debootstrap.log" >&2; rm -rf "$root"; return 1; }
      rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
      mkdir -p "$(dirname "$rootfs")"
      tar -C "$root" -cf "$rootfs.tmp" . && mv "$rootfs.tmp" "$rootfs"
      rm -rf "$root"
    fi
    say "importing the base image"
    docker import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' "$rootfs" python:3.11-slim >/dev/null
  fi
  docker tag python:3.11-slim alekseylearn-test/python:3.11
  echo "export ALEKSEYLEARN_TEST_BASE_IMAGE=python:3.11-slim" >>"$dir/env"
  say "ready ($dir/env)"
}

stop_pid() { # PIDFILE
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -S "$dir/docker.sock" ] && [ -f "$dir/dockerd.pid" ]; then
    local running
    running=$(DOCKER_HOST="unix://$dir/docker.sock" docker ps -q 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$running" ] || DOCKER_HOST="unix://$dir/docker.sock" docker rm -f $running >/dev/null 2>&1 || true
  fi
  stop_pid "$dir/registry.pid"
  stop_pid "$dir/pip-index.pid"
  stop_pid "$dir/dockerd.pid"
  if [ -f "$dir/exec-root" ]; then
    local exec_root
    exec_root=$(cat "$dir/exec-root")
    grep -o " $exec_root[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
    rm -rf "$exec_root" "$dir/exec-root"
  fi
}

case "${1:-install}" in
  install) install ;;
  start) start "${2:?usage: $0 start DIR}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  *)
    echo "usage: $0 install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
