# Shared helpers for the scripts in this directory. Source it, don't run it.
# shellcheck shell=bash

CUTOVER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CUTOVER_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cutover"
# Logs of background daemons and test runs go under target/ so they are
# gitignored and easy to collect as CI artifacts.
CUTOVER_LOG_DIR="${CUTOVER_LOG_DIR:-$CUTOVER_ROOT/target/cutover-logs}"
# The image names are shared with crates/cutover-test/src/images.rs.
BASE_IMAGE="cutover-base:bookworm"
REDIS_IMAGE="cutover-test-redis:latest"
ORIGIN_IMAGE="cutover-test-origin:latest"
NGINX_IMAGE="cutover-test-nginx:latest"
SWARM_NODE_IMAGE="cutover-test-swarm-node:latest"
export CUTOVER_ROOT CUTOVER_CACHE CUTOVER_LOG_DIR BASE_IMAGE REDIS_IMAGE ORIGIN_IMAGE NGINX_IMAGE SWARM_NODE_IMAGE

# Plain lines with a UTC timestamp: readable in CI logs, no control characters.
log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
    printf 'error: %s\n' "$1" >&2
    if [ $# -gt 1 ]; then printf 'hint: %s\n' "$2" >&2; fi
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "'$1' needs root and sudo is not installed" "rerun this script as root"
    fi
}

# Bounded: a wedged engine must not hang a CI run.
docker_reachable() { timeout 20 docker info >/dev/null 2>&1; }

# Set by ensure_dockerd when this shell started the daemon, so only that one
# is stopped again; a developer's own dockerd is left alone.
CUTOVER_STARTED_DOCKERD_PID=""

ensure_dockerd() {
    command -v docker >/dev/null 2>&1 ||
        die "the docker CLI is not installed" "run scripts/deps.sh, or install docker.io"
    if docker_reachable; then
        log "docker: using the running engine"
        return 0
    fi
    # With DOCKER_HOST set, a local dockerd process says nothing about that engine.
    if [ -z "${DOCKER_HOST:-}" ] && pgrep -x dockerd >/dev/null 2>&1; then
        # Someone else's dockerd is still starting up: wait for it, don't start a second one.
        log "docker: a dockerd is running but not answering yet, waiting for it"
        wait_for_docker 60 "" || die "the running dockerd did not answer within 60s" \
            "check its log, or stop it and rerun this script to start a fresh one"
        return 0
    fi
    command -v dockerd >/dev/null 2>&1 ||
        die "dockerd is not installed and no Docker engine is reachable" "run scripts/deps.sh"
    [ "$(id -u)" -eq 0 ] ||
        die "no Docker engine is reachable and starting dockerd needs root" \
            "start Docker yourself (e.g. sudo systemctl start docker), or rerun as root"
    mkdir -p "$CUTOVER_LOG_DIR"
    local dlog="$CUTOVER_LOG_DIR/dockerd.log"
    log "docker: starting dockerd, log in $dlog"
    # setsid: the daemon must not get the terminal's signals (^C in the test run),
    # the EXIT trap stops it in order.
    local args=()
    case "${DOCKER_HOST:-}" in
    unix://*) args=(-H "$DOCKER_HOST") ;;
    "") ;;
    *) die "DOCKER_HOST=$DOCKER_HOST is not reachable and is not a local socket" \
        "start that engine, or unset DOCKER_HOST to use a local dockerd" ;;
    esac
    setsid dockerd "${args[@]}" >"$dlog" 2>&1 </dev/null &
    CUTOVER_STARTED_DOCKERD_PID=$!
    if ! wait_for_docker 60 "$CUTOVER_STARTED_DOCKERD_PID"; then
        tail -n 30 "$dlog" >&2 || true
        stop_dockerd
        die "dockerd did not answer within 60s (its last log lines are above)" \
            "the full log is $dlog"
    fi
    log "docker: dockerd is up (pid $CUTOVER_STARTED_DOCKERD_PID)"
}

# wait_for_docker SECONDS [PID]: polls the engine; gives up early if PID exits.
wait_for_docker() {
    local deadline=$((SECONDS + $1)) pid="${2:-}"
    while [ "$SECONDS" -lt "$deadline" ]; do
        docker_reachable && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.5
    done
    return 1
}

stop_dockerd() {
    local pid="$CUTOVER_STARTED_DOCKERD_PID"
    [ -n "$pid" ] || return 0
    CUTOVER_STARTED_DOCKERD_PID=""
    kill -0 "$pid" 2>/dev/null || return 0
    log "docker: stopping the dockerd this script started (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "docker: dockerd did not stop within 30s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
