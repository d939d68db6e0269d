#!/usr/bin/env bash
# The system side of the test suite.
#
#   install      install (as root, when missing) what the tests need from Debian:
#                bubblewrap (the local backend's private /opt/ml, the Kaggle test
#                server's kernels), the AWS CLI (tests put objects with it),
#                docker.io, docker-registry and debootstrap (the SageMaker tests),
#                skopeo (reads back what the daemonless builder pushes),
#                slurmctld, slurmd, slurm-client, munge and openssh-server (the Slurm
#                backend's test cluster and login node), zsh (shell completion is
#                tested in a real zsh, which also drives bash on a terminal).
#   start DIR    start, on loopback only, the Docker-side servers the SageMaker
#                tests use, and write DIR/env (export lines) naming them:
#                  DOCKER_HOST                      a private dockerd (no bridge, no iptables)
#                  ALEKSEYLEARN_TEST_REGISTRY       a docker-registry standing in for ECR's registry
#                  ALEKSEYLEARN_TEST_REGISTRY_DATA  its storage (a benchmark measures bytes pushed there)
#                  ALEKSEYLEARN_TEST_PIP_INDEX      the machine's wheel index over http, for pip in builds
#                  ALEKSEYLEARN_TEST_BASE_IMAGE     python:3.11-slim, made from Debian packages (no Docker Hub here)
#                dockerd's images and build cache, and the base image's debootstrapped
#                root (a tarball), persist under ${ALEKSEYLEARN_TEST_CACHE:-.cache/test},
#                so only the first start on a clone runs debootstrap (about a minute).
#   stop DIR     stop them again (safe to run twice; never fails).
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
  command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  # The Slurm backend's test cluster (test/servers/slurm-cluster.ts): a controller, node daemons,
  # munge for their authentication and an sshd standing in for the login node.
  command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
  command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
  command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
  command -v munged >/dev/null 2>&1 || need+=(munge)
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
  # `alekseylearn completion zsh` is tested in a real zsh, whose zpty module also types Tab into bash.
  command -v zsh >/dev/null 2>&1 || need+=(zsh)
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

# Does URL answer 2xx? (python3, not curl: a fresh Debian may lack curl.)
http_ok() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"
}

wait_until() { # SECONDS WHAT PID LOG COMMAND...: poll COMMAND; give up early when PID (the server) exits, showing LOG.
  local limit=$1 what=$2 pid=$3 log=$4
  shift 4
  for _ in $(seq $((limit * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -n "$pid" ] && ! alive "$pid"; then
      say "$what exited while starting; the end of $log:"
      tail -20 "$log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  say "$what did not come up within ${limit}s; the end of $log:"
  tail -20 "$log" >&2 || true
  return 1
}

# The Debian mirror apt uses for bookworm, for debootstrap (one-line .list and deb822 .sources files).
mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $i ~ /\]$/) i++; if ($(i + 1) == "bookworm") { print $i; exit } }')
  if [ -z "$uri" ]; then
    uri=$(for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && cat "$f" && echo; done |
      awk 'function flush() { if (deb && enabled && suite && uris != "") { split(uris, u, " "); print u[1]; found = 1 } deb = 0; enabled = 1; suite = 0; uris = "" }
        BEGIN { enabled = 1 }
        found { exit }
        /^[ \t]*$/ { flush(); next }
        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
        tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
        tolower($1) == "uris:" { $1 = ""; uris = $0 }
        END { if (!found) flush() }')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# The machine's local wheel index (a PEP 503 tree): the first file:// index in pip's configuration, else /opt/pypi/simple.
wheel_index() {
  local url
  for url in $(python3 -m pip config get global.index-url 2>/dev/null) $(python3 -m pip config get global.extra-index-url 2>/dev/null) file:///opt/pypi/simple; do
    case "$url" in file://*) ;; *) continue ;; esac
    url=${url#file://}
    url=${url%/}
    if [ -d "$url" ]; then echo "$url"; return 0; fi
  done
  return 1
}

# Unmount whatever is mounted at or below PATH (deepest first); never fails.
unmount_under() {
  local mount
  awk -v root="$1" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/mounts 2>/dev/null | sort -r |
    while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
  return 0
}

start() {
  local dir=$1 cache
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  cache="${ALEKSEYLEARN_TEST_CACHE:-$PWD/.cache/test}"
  mkdir -p "$cache"
  cache=$(cd "$cache" && pwd)
  : >"$dir/env"

  # A private dockerd. Its images and build cache persist in the test cache (a rerun on the same
  # clone rebuilds nothing); a lock keeps two runs on one clone (npm test and npm run bench) from
  # sharing a data root: the second gets its own. No bridge, no iptables rules, no ip_forward
  # sysctl: builds and containers use the host's network, on loopback.
  local data_root="" candidate
  for candidate in "$cache/docker" "$cache/docker-2" "$cache/docker-3" "$cache/docker-4"; do
    mkdir -p "$candidate"
    exec 9>>"$candidate.lock"
    if flock -n 9; then data_root=$candidate && break; fi
    exec 9>&-
  done
  [ -n "$data_root" ] || { say "every dockerd data root under $cache is in use by another run"; return 1; }
  [ "$data_root" = "$cache/docker" ] || say "$cache/docker is in use by another run; using $data_root"
  echo "$data_root" >"$dir/data-root"
  local exec_root
  exec_root=$(mktemp -d /tmp/alekseylearn-dx-XXXXXX) # short: containerd's socket path must fit in 108 bytes
  echo "$exec_root" >"$dir/exec-root"
  say "starting dockerd (data root $data_root)"
  # dockerd inherits fd 9, so the data root stays locked for as long as it (and its containerd) runs.
  dockerd --host "unix://$dir/docker.sock" --data-root "$data_root" --exec-root "$exec_root" \
    --pidfile "$dir/dockerd.pid" --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
    >"$dir/dockerd.log" 2>&1 &
  echo $! >"$dir/dockerd.launched.pid"
  exec 9>&-
  export DOCKER_HOST="unix://$dir/docker.sock"
  wait_until 60 dockerd "$(cat "$dir/dockerd.launched.pid")" "$dir/dockerd.log" docker version --format '{{.Server.Version}}'
  [ ! -f "$exec_root/containerd/containerd.pid" ] || cp "$exec_root/containerd/containerd.pid" "$dir/containerd.pid"
  echo "export DOCKER_HOST=$DOCKER_HOST" >>"$dir/env"

  # A registry for ECR's: plain http on loopback (Docker allows that for 127.0.0.0/8).
  local port
  port=$(free_port)
  mkdir -p "$dir/registry"
  cat >"$dir/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
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
  wait_until 30 docker-registry "$!" "$dir/registry.log" http_ok "http://127.0.0.1:$port/v2/"
  say "registry on 127.0.0.1:$port"
  echo "export ALEKSEYLEARN_TEST_REGISTRY=127.0.0.1:$port" >>"$dir/env"
  echo "export ALEKSEYLEARN_TEST_REGISTRY_DATA=$dir/registry" >>"$dir/env"

  # The machine's wheel index over http, so pip inside an image build can reach it.
  local index
  index=$(wheel_index) || { say "no local wheel index (pip config list names none, and /opt/pypi/simple is missing)"; return 1; }
  port=$(free_port)
  python3 -m http.server --bind 127.0.0.1 --directory "$(dirname "$index")" "$port" >"$dir/pip-index.log" 2>&1 &
  echo $! >"$dir/pip-index.pid"
  wait_until 30 "the wheel index" "$!" "$dir/pip-index.log" http_ok "http://127.0.0.1:$port/$(basename "$index")/"
  say "wheel index $index on http://127.0.0.1:$port/$(basename "$index")"
  echo "export ALEKSEYLEARN_TEST_PIP_INDEX=http://127.0.0.1:$port/$(basename "$index")" >>"$dir/env"

  # The base image, with no Docker Hub: a minimal Debian 12 with Python, made once by debootstrap and
  # kept as a tarball in the test cache, imported under the name the product defaults to.
  local packages="python3,python3-venv,python3-pip,ca-certificates" key rootfs
  key="bookworm-$(echo "$packages" | md5sum | cut -c1-8)"
  rootfs="$cache/base-image/$key.tar"
  if [ "$(docker image inspect --format '{{index .Config.Labels "alekseylearn.base"}}' python:3.11-slim 2>/dev/null)" != "$key" ]; then
    if [ ! -f "$rootfs" ]; then
      local root source
      source=$(mirror)
      say "building the base image with debootstrap from $source (once per cache; about a minute)"
      root=$(mktemp -d /tmp/alekseylearn-rootfs-XXXXXX)
      if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$source" >"$dir/debootstrap.log" 2>&1; then
        say "debootstrap failed; the end of $dir/debootstrap.log:"
        tail -20 "$dir/debootstrap.log" >&2 || true
        unmount_under "$root"
        rm -rf --one-file-system "$root"
        return 1
      fi
      unmount_under "$root"
      rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
      mkdir -p "$(dirname "$rootfs")"
      tar -C "$root" --one-file-system -cf "$rootfs.$$.tmp" . && mv "$rootfs.$$.tmp" "$rootfs"
      rm -rf --one-file-system "$root"
    fi
    say "importing the base image"
    docker import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' --change "LABEL alekseylearn.base=$key" \
      "$rootfs" python:3.11-slim >/dev/null
  fi
  docker tag python:3.11-slim alekseylearn-test/python:3.11
  echo "export ALEKSEYLEARN_TEST_BASE_IMAGE=python:3.11-slim" >>"$dir/env"
  say "ready in ${SECONDS}s ($dir/env)"
  if [ "${2:-}" = "--all" ]; then start_all "$dir"; fi
}

# --all (npm run services): every test server of the tests too (moto and the SageMaker test server, the Vertex AI, Cloud
# Storage and Artifact Registry test servers, the Kaggle API test server), started by test/servers/run-all.ts, and the
# environment a person exports to run `alekseylearn fit` against each backend by hand.
start_all() {
  local dir=$1
  [ -f dist/test/servers/run-all.js ] || { say "building (npm run build)"; npm run build >/dev/null; }
  # shellcheck disable=SC1091
  source "$dir/env"
  rm -f "$dir/servers.ready"
  ALEKSEYLEARN_TEST_CACHE="$cache" PIP_INDEX_URL="${PIP_INDEX_URL:-$ALEKSEYLEARN_TEST_PIP_INDEX}" \
    node dist/test/servers/run-all.js "$dir" >"$dir/servers.log" 2>&1 &
  echo $! >"$dir/servers.pid"
  wait_until 600 "the test servers" "$!" "$dir/servers.log" test -f "$dir/servers.ready"
  local backend
  cat >&2 <<EOF2
test-services: every test server is up (${SECONDS}s in all). To run fit by hand against one, in this shell:
EOF2
  for backend in sagemaker vertex kaggle; do
    echo "  source $dir/$backend.env" >&2
  done
  cat >&2 <<EOF2
then, for example:
  npx alekseylearn fit examples/iris/train.py --config.output_path=s3://bucket/sagemaker/runs   # after sagemaker.env
  npx alekseylearn fit examples/iris/train.py --config.output_path=gs://bucket/runs             # after vertex.env
  npx alekseylearn fit examples/iris/train.py --backend kaggle                                  # after kaggle.env
  npx alekseylearn doctor --backend sagemaker --config.output_path=s3://bucket/sagemaker/runs
Stop everything with: bash scripts/test-services.sh stop $dir
EOF2
}

# Is PID running? (A zombie is not: an init that reaps slowly must not make stop wait.)
alive() {
  kill -0 "$1" 2>/dev/null && ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null
}

stop_pid() { # PIDFILE [SECONDS]: TERM, wait, then KILL; never fails.
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  if [ -n "$pid" ] && alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq $((${2:-10} * 10))); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      say "pid $pid ($1) did not stop within ${2:-10}s; killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$1"
  return 0
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -S "$dir/docker.sock" ]; then
    # Containers first (a dockerd with running containers is slow to stop and leaves mounts behind).
    local containers
    containers=$(DOCKER_HOST="unix://$dir/docker.sock" timeout 20 docker ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$containers" ] || DOCKER_HOST="unix://$dir/docker.sock" timeout 60 docker rm -f $containers >/dev/null 2>&1 || true
  fi
  stop_pid "$dir/servers.pid" 30
  stop_pid "$dir/registry.pid"
  stop_pid "$dir/pip-index.pid"
  stop_pid "$dir/dockerd.pid" 30
  stop_pid "$dir/dockerd.launched.pid" 30
  stop_pid "$dir/containerd.pid" 10
  if [ -f "$dir/exec-root" ]; then
    local exec_root
    exec_root=$(cat "$dir/exec-root" 2>/dev/null || true)
    case "$exec_root" in
      /tmp/alekseylearn-dx-*)
        unmount_under "$exec_root"
        rm -rf --one-file-system "$exec_root" 2>/dev/null || true
        ;;
    esac
    rm -f "$dir/exec-root"
  fi
  if [ -f "$dir/data-root" ]; then
    # Only ours: the lock on it was held by the dockerd just stopped.
    unmount_under "$(cat "$dir/data-root" 2>/dev/null || echo /nonexistent)"
    rm -f "$dir/data-root"
  fi
  rm -f "$dir/docker.sock"
  return 0
}

case "${1:-install}" in
  install) install ;;
  start) start "${2:?usage: $0 start DIR [--all]}" "${3:-}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" || true ;;
  *)
    echo "usage: $0 install | start DIR [--all] | stop DIR" >&2
    exit 2
    ;;
esac
