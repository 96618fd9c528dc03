#!/usr/bin/env bash
# Deploys under load, five ways, side by side: the same harness
# (cutover-loadtest), the same app (athens + Redis, the local images) and the
# same host, against
#
#   a  cutover (`cutover deploy` through a private `cutover serve`)
#   b  the field report's setup: compose files per color, the deploy script's
#      curl-loop health check, a Caddy config swap and a Caddy restart
#   c  the same with a graceful `caddy reload` (admin API) instead
#   d  the same with nginx and `nginx -s reload`
#   e  the same with HAProxy and its seamless reload (master-worker, SIGUSR2)
#
# See docs/benchmarks.md ("Deploys under load").
#
#   bench/deploy-compare.sh [--deploys N] [--broken-at I] [--setups a,b,c,d,e]
#       [--rate R] [--ws K] [--keepalive C] [--fresh F] [--interval S]
#       [--duration S] [--startup-reps N] [--out DIR] [--no-build]
#
#   --deploys N       deploys per setup (default 20)
#   --broken-at I     which one is broken on purpose (default: the middle one;
#                     `none`: no broken deploy)
#   --setups LIST     default a,b,c,d,e
#   --rate R          HTTP requests per second, all loops together (default 600)
#   --ws K            WebSockets kept open (default 50)
#   --keepalive C     keep-alive request loops (default 20)
#   --fresh F         loops opening a new connection per request (default 4)
#   --interval S      seconds before each deploy (default 5)
#   --duration S      seconds of traffic per setup (default: from the deploy
#                     count, with room for the slowest setup's deploys)
#   --startup-reps N  app start-up measurements (default 5)
#   --out DIR         where the run's files go (default target/deploy-compare/TIME)
#   --no-build        use the existing release binaries and images
#
# Env: COMPARE_PORT_BASE (default 18120; uses the next 5 ports on 127.0.0.1).
# Containers, networks and volumes are named cmp-<setup>-* (cmp-startup-* for
# the start-up measurement) and removed at the end, also on ^C.

# One block, read whole before it runs: a run takes half an hour, and an edit
# of this file meanwhile must not change what the running shell reads next.
{
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CMP_HOME="$CUTOVER_ROOT/bench/deploy-compare"
# shellcheck source=bench/deploy-compare/proxies.sh
. "$CMP_HOME/proxies.sh"
# common.sh made a temp dir; until the full cleanup below is set, remove it
# on a bad argument too.
trap bench_cleanup EXIT

DEPLOYS=20
BROKEN_AT=""
SETUPS="a,b,c,d,e"
RATE=600
WS=50
KEEPALIVE=20
FRESH=4
INTERVAL=5
DURATION=""
STARTUP_REPS=5
OUT=""
BUILD=1

while [ $# -gt 0 ]; do
    case "$1" in
    --deploys) DEPLOYS="$2"; shift 2 ;;
    --broken-at) BROKEN_AT="$2"; shift 2 ;;
    --setups) SETUPS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --ws) WS="$2"; shift 2 ;;
    --keepalive) KEEPALIVE="$2"; shift 2 ;;
    --fresh) FRESH="$2"; shift 2 ;;
    --interval) INTERVAL="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --startup-reps) STARTUP_REPS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-build) BUILD=""; shift ;;
    -h | --help) sed -n '2,36p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" "see bench/deploy-compare.sh --help" ;;
    esac
done
for v in DEPLOYS RATE WS KEEPALIVE FRESH INTERVAL STARTUP_REPS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') must be a whole number, got '${!v}'"
done
[ "$DEPLOYS" -ge 1 ] || die "--deploys must be at least 1"
[ "$STARTUP_REPS" -ge 1 ] || die "--startup-reps must be at least 1"
if [ -z "$BROKEN_AT" ]; then BROKEN_AT=$(((DEPLOYS + 1) / 2)); fi
[ "$BROKEN_AT" = none ] || { [[ "$BROKEN_AT" =~ ^[0-9]+$ ]] && [ "$BROKEN_AT" -ge 1 ] && [ "$BROKEN_AT" -le "$DEPLOYS" ]; } ||
    die "--broken-at must be between 1 and $DEPLOYS, or none, got '$BROKEN_AT'"
BROKEN_ARGS=()
if [ "$BROKEN_AT" != none ]; then BROKEN_ARGS=(--broken-at "$BROKEN_AT"); fi
[ -z "$DURATION" ] || [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] ||
    die "--duration must be a whole number of seconds, got '$DURATION'"
IFS=, read -r -a SETUP_LIST <<<"$SETUPS"
for s in "${SETUP_LIST[@]}"; do
    case "$s" in a | b | c | d | e) ;; *) die "unknown setup '$s'" "use some of: a,b,c,d,e" ;; esac
done

COMPARE_PORT_BASE="${COMPARE_PORT_BASE:-18120}"
PROXY_PORT=$COMPARE_PORT_BASE
CADDY_ADMIN_PORT=$((COMPARE_PORT_BASE + 1))
BLUE_PORT=$((COMPARE_PORT_BASE + 2))
GREEN_PORT=$((COMPARE_PORT_BASE + 3))
STARTUP_PORT=$((COMPARE_PORT_BASE + 4))
export PROXY_PORT CADDY_ADMIN_PORT BLUE_PORT GREEN_PORT REDIS_IMAGE
export DOCKER_IMAGE=athens:local
TARGET_DIR="${CARGO_TARGET_DIR:-$CUTOVER_ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$CUTOVER_ROOT/$TARGET_DIR" ;; esac
CUTOVER_BIN="$TARGET_DIR/release/cutover"
LOADTEST_BIN="$TARGET_DIR/release/cutover-loadtest"
OUT="${OUT:-$TARGET_DIR/deploy-compare/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# A single deploy that runs longer than this is stopped (and counts as failed).
export CMP_DEPLOY_TIMEOUT=180
HEALTH=/api/v1/open/health-check

# How long traffic runs: every deploy must start before it ends (the harness
# skips those that would start later). Per deploy, beyond --interval, about
# twice what the validation run measured (a: 0.4–0.7 s, b–e: 3–5.5 s; b–e
# wait 2 s in their health loop and stop the old color); a broken deploy
# takes the loop's 10 tries in b–e (~41 s), deploy_timeout (10 s) in a.
duration_for() {
    if [ -n "$DURATION" ]; then echo "$DURATION"; return; fi
    local per broken
    case "$1" in
    a) per=5 broken=20 ;;
    *) per=10 broken=50 ;;
    esac
    if [ "$BROKEN_AT" = none ]; then broken=0; fi
    echo $((DEPLOYS * INTERVAL + (DEPLOYS - 1) * per + broken + 10))
}

# ---- cleanup: exactly what this script created ------------------------------

# kill_bg PIDFILE: the background job whose PID is in that file (the harness
# under `timeout`, the RSS sampler), each setup runs in a subshell, so the
# cleanup finds them through their files.
kill_bg() {
    local f="$1" pid
    [ -s "$f" ] || return 0
    pid="$(cat "$f")"
    rm -f "$f"
    kill_pid "$pid"
}
kill_pid() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# docker_rm_labeled LABEL: containers, then networks, then volumes with it.
docker_rm_labeled() {
    local ids
    ids="$(docker ps -aq --filter "label=$1")"
    # shellcheck disable=SC2086
    if [ -n "$ids" ]; then docker rm -f -v $ids >/dev/null 2>&1 || true; fi
    ids="$(docker network ls -q --filter "label=$1")"
    # shellcheck disable=SC2086
    if [ -n "$ids" ]; then docker network rm $ids >/dev/null 2>&1 || true; fi
    ids="$(docker volume ls -q --filter "label=$1")"
    # shellcheck disable=SC2086
    if [ -n "$ids" ]; then docker volume rm -f $ids >/dev/null 2>&1 || true; fi
}

# teardown SETUP: the proxy (or cutover serve) and the setup's containers,
# networks and volumes. Safe to call twice and for a setup that never ran.
teardown() {
    local s="$1"
    CMP_DIR="$OUT/$s"
    [ -d "$CMP_DIR" ] || return 0
    if [ "$s" = a ]; then
        if [ -S "$CMP_DIR/proxy/cutover.sock" ] && [ -n "$(proxy_pid)" ]; then
            CUTOVER_SOCKET="$CMP_DIR/proxy/cutover.sock" timeout 120 "$CUTOVER_BIN" down \
                -f "$CMP_DIR/compose.yaml" -p cmp-a --volumes >>"$CMP_DIR/teardown.log" 2>&1 || true
        fi
        proxy_stop 2>>"$CMP_DIR/teardown.log"
        docker_rm_labeled cutover.project=cmp-a
    else
        proxy_stop 2>>"$CMP_DIR/teardown.log"
        if [ -f "$CMP_DIR/docker-compose.yml" ]; then
            (cd "$CMP_DIR" && WAS_NAME="cmp-$s-athens" APP_NETWORK="cmp-$s-app-network" APP_VERSION=down \
                timeout 120 docker-compose -p "cmp-$s" -f docker-compose.yml -f docker-compose.blue.yml \
                -f docker-compose.green.yml down -v --remove-orphans) >>"$CMP_DIR/teardown.log" 2>&1 || true
        fi
        docker_rm_labeled "com.docker.compose.project=cmp-$s"
        docker_rm_labeled "cmp.setup=cmp-$s"
    fi
}

# Run by the EXIT trap.
# shellcheck disable=SC2317
cleanup() {
    local code=$?
    local s
    for s in a b c d e; do
        kill_bg "$OUT/$s/harness.pid"
        kill_bg "$OUT/$s/rss.pid"
        teardown "$s"
    done
    docker_rm_labeled cmp.setup=cmp-startup
    bench_cleanup
    if [ "$code" -ne 0 ]; then log "compare: stopped (exit $code); the run's files are in $OUT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- preparation ------------------------------------------------------------

"$CUTOVER_ROOT/scripts/deps.sh" bench ||
    die "the bench packages are missing" "run scripts/deps.sh bench as root"
ensure_dockerd
for p in "$PROXY_PORT" "$CADDY_ADMIN_PORT" "$BLUE_PORT" "$GREEN_PORT" "$STARTUP_PORT"; do
    port_free "$p" || die "port $p on 127.0.0.1 is in use" \
        "stop what listens there, or set COMPARE_PORT_BASE to another range"
done
for s in a b c d e startup; do
    [ -z "$(docker ps -aq --filter "name=^cmp-$s-")" ] ||
        die "containers named cmp-$s-* exist already (another run of this script?)" \
            "remove them (docker ps -a --filter name=cmp-$s-) or wait for that run to end"
done

if [ -n "$BUILD" ]; then
    "$CUTOVER_ROOT/examples/athens/build-local.sh"
    log "compare: cargo build --release -p cutover -p cutover-loadtest"
    (cd "$CUTOVER_ROOT" && cargo build --release -q -p cutover -p cutover-loadtest) ||
        die "cargo could not build cutover and cutover-loadtest" "see the cargo output above"
fi
for b in "$CUTOVER_BIN" "$LOADTEST_BIN"; do
    [ -x "$b" ] || die "$b is missing" "run without --no-build, or set CARGO_TARGET_DIR"
done
docker image inspect "$DOCKER_IMAGE" "$REDIS_IMAGE" >/dev/null 2>&1 ||
    die "the images $DOCKER_IMAGE and $REDIS_IMAGE are missing" "run examples/athens/build-local.sh"

# ---- the app's own start-up time --------------------------------------------

# From `docker start` of a fresh athens container (Redis up) to its first 200
# on the health path, polled every 10 ms: what any deploy has to wait for.
measure_startup() {
    local net=cmp-startup-net lbl=cmp.setup=cmp-startup i t0 t1 ok
    docker network create --label "$lbl" "$net" >/dev/null
    docker run -d --name cmp-startup-redis --label "$lbl" --network "$net" "$REDIS_IMAGE" \
        redis-server --protected-mode no >/dev/null
    for i in $(seq 1 300); do
        if [ "$(docker exec cmp-startup-redis redis-cli ping 2>/dev/null)" = PONG ]; then break; fi
        sleep 0.1
    done
    for i in $(seq 1 "$STARTUP_REPS"); do
        docker create --name cmp-startup-athens --label "$lbl" --network "$net" \
            -p "127.0.0.1:$STARTUP_PORT:8080" -e REDIS_HOST=cmp-startup-redis "$DOCKER_IMAGE" >/dev/null
        t0=$(date +%s%N)
        docker start cmp-startup-athens >/dev/null
        ok=""
        for _ in $(seq 1 3000); do
            if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$STARTUP_PORT$HEALTH"; then ok=1; break; fi
            sleep 0.01
        done
        t1=$(date +%s%N)
        docker rm -f cmp-startup-athens >/dev/null
        [ -n "$ok" ] || die "athens did not answer its health check within 30 s of docker start" \
            "check the image: docker run --rm $DOCKER_IMAGE"
        echo $(((t1 - t0) / 1000000)) >>"$OUT/startup_ms.txt"
    done
    docker_rm_labeled "$lbl"
}
: >"$OUT/startup_ms.txt"
log "compare: the app's start-up time, $STARTUP_REPS times"
measure_startup
STARTUP_MS="$(sort -n "$OUT/startup_ms.txt" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')"
log "compare: start-up median ${STARTUP_MS} ms ($(tr '\n' ' ' <"$OUT/startup_ms.txt")ms)"

# ---- per setup --------------------------------------------------------------

# Sum of RSS of a process and all its descendants (nginx's and HAProxy's
# workers, old ones still draining included).
tree_rss_kib() {
    local pids=("$1") i=0 child
    while [ "$i" -lt "${#pids[@]}" ]; do
        for child in $(pgrep -P "${pids[$i]}" || true); do pids+=("$child"); done
        i=$((i + 1))
    done
    rss_kib "${pids[@]}"
}

# sample_proxy_rss SECONDS: every second, the proxy's current process tree
# (a restart changes the PID; proxy_pid follows it); the maximum goes to
# CMP_DIR/rss_max_kib. Ends by itself after SECONDS.
sample_proxy_rss() {
    local max=0 now pid deadline=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$deadline" ]; do
        pid="$(proxy_pid)"
        if [ -n "$pid" ]; then
            now="$(tree_rss_kib "$pid")"
            if [ "$now" -gt "$max" ]; then max=$now; echo "$max" >"$CMP_DIR/rss_max_kib"; fi
        fi
        sleep 1
    done
}

prepare_a() {
    local athens="$CUTOVER_ROOT/examples/athens" good
    # Drains finish within the run: the old color's WebSockets get their 1012
    # close 10 s after a switch (the example's default is 30 s).
    good="$(sed 's/^\( *websocket_drain_timeout:\).*/\1 10s/' "$athens/compose.yaml")"
    grep -q '^ *websocket_drain_timeout: 10s$' <<<"$good" ||
        die "examples/athens/compose.yaml has no websocket_drain_timeout line to set"
    printf '%s\n' "$good" >"$CMP_DIR/compose.yaml"
    # The broken version: a health path athens answers 404 on, so the new
    # color never turns healthy; cutover gives up after deploy_timeout.
    sed -e "s#^\( *path:\) $HEALTH\$#\1 /api/v1/open/no-such-health-check#" \
        -e 's/^\( *\)\(websocket_drain_timeout: 10s\)$/\1\2\n\1deploy_timeout: 10s/' \
        "$CMP_DIR/compose.yaml" >"$CMP_DIR/broken.yaml"
    { grep -q 'no-such-health-check' "$CMP_DIR/broken.yaml" && grep -q 'deploy_timeout: 10s' "$CMP_DIR/broken.yaml"; } ||
        die "could not derive the broken compose file from examples/athens/compose.yaml"
    cp "$athens/.env" "$CMP_DIR/.env"

    mkdir -p "$CMP_DIR/proxy/state"
    export CUTOVER_BIN CUTOVER_SOCKET="$CMP_DIR/proxy/cutover.sock" PROJECT_NAME=cmp-a
    export CMP_LABEL=cutover.project=cmp-a
    setsid "$CUTOVER_BIN" serve --listen "127.0.0.1:$PROXY_PORT" --socket "$CUTOVER_SOCKET" \
        --state-dir "$CMP_DIR/proxy/state" --no-access-log </dev/null >"$CMP_DIR/proxy/serve.log" 2>&1 &
    local pid=$! i
    echo "$pid" >"$CMP_DIR/proxy/main.pid"
    for i in $(seq 1 100); do
        if [ -S "$CUTOVER_SOCKET" ] && "$CUTOVER_BIN" status >/dev/null 2>&1; then break; fi
        # kill -0, not proxy_pid: until the child has exec'd, its command
        # line is still this script's, which proxy_pid would not recognize.
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$CMP_DIR/proxy/serve.log" >&2; return 1; }
        sleep 0.2
    done
    APP_VERSION=v0 "$CMP_HOME/deploy-cutover.sh" >>"$CMP_DIR/deploys.log" 2>&1
    DEPLOY_SCRIPT=deploy-cutover.sh
}

prepare_colors() {
    local s="$1"
    cp "$CMP_HOME/docker-compose.yml" "$CMP_HOME/docker-compose.blue.yml" \
        "$CMP_HOME/docker-compose.green.yml" "$CMP_DIR/"
    # The report's .env, read by the color files' env_file.
    printf 'REDIS_HOST=redis\nREDIS_PORT=6379\n' >"$CMP_DIR/.env"
    case "$s" in
    b) CMP_PROXY=caddy-restart ;;
    c) CMP_PROXY=caddy-reload ;;
    d) CMP_PROXY=nginx ;;
    e) CMP_PROXY=haproxy ;;
    esac
    export CMP_PROXY WAS_NAME="cmp-$s-athens" PROJECT_NAME="cmp-$s" APP_NETWORK="cmp-$s-app-network"
    export CMP_LABEL="com.docker.compose.project=cmp-$s"
    # The first deploy finds no color running and deploys blue.
    proxy_start "$BLUE_PORT"
    APP_VERSION=v0 "$CMP_HOME/deploy-colors.sh" >>"$CMP_DIR/deploys.log" 2>&1
    DEPLOY_SCRIPT=deploy-colors.sh
}

run_setup() {
    local s="$1" dur
    export CMP_DIR="$OUT/$s"
    mkdir -p "$CMP_DIR/proxy"
    dur="$(duration_for "$s")"
    log "compare: setup $s: bringing it up (Redis, the first color, the proxy)"
    local ok=1
    if [ "$s" = a ]; then prepare_a || ok=""; else prepare_colors "$s" || ok=""; fi
    if [ -n "$ok" ] && ! wait_http "http://127.0.0.1:$PROXY_PORT/api/v1/visits" 30; then ok=""; fi
    if [ -z "$ok" ]; then
        echo "the first deploy (v0) did not serve through the proxy; see $CMP_DIR/deploys.log" >"$CMP_DIR/not-measured.txt"
        log "compare: setup $s not measured: $(cat "$CMP_DIR/not-measured.txt")"
        tail -n 20 "$CMP_DIR/deploys.log" >&2 || true
        teardown "$s"
        return 0
    fi
    log "compare: setup $s: ${dur}s of load (${RATE} req/s, $WS WebSockets), $DEPLOYS deploys, broken: $BROKEN_AT"
    sample_proxy_rss $((dur + CMP_DEPLOY_TIMEOUT + 60)) &
    echo $! >"$CMP_DIR/rss.pid"
    # The harness waits for every deploy it started; each is bounded by
    # CMP_DEPLOY_TIMEOUT, so this bound is never what ends a sane run.
    timeout --kill-after=30 $((dur + 2 * CMP_DEPLOY_TIMEOUT + 60)) "$LOADTEST_BIN" \
        --url "http://127.0.0.1:$PROXY_PORT" --duration "${dur}s" \
        --keepalive "$KEEPALIVE" --fresh "$FRESH" --ws "$WS" --rate "$RATE" \
        --deploys "$DEPLOYS" --deploy-interval "${INTERVAL}s" "${BROKEN_ARGS[@]}" \
        --version-env APP_VERSION --json "$CMP_DIR/report.json" --markdown "$CMP_DIR/report.md" \
        --deploy-cmd "'$CMP_HOME/deploy-step.sh' $DEPLOY_SCRIPT" \
        >"$CMP_DIR/loadtest.out" 2>"$CMP_DIR/loadtest.err" &
    local harness=$!
    echo "$harness" >"$CMP_DIR/harness.pid"
    local code=0
    wait "$harness" || code=$?
    rm -f "$CMP_DIR/harness.pid"
    kill_bg "$CMP_DIR/rss.pid"
    if [ "$code" -ne 0 ]; then
        log "compare: setup $s: cutover-loadtest exited $code; see $CMP_DIR/loadtest.err"
        if [ ! -s "$CMP_DIR/report.json" ]; then
            echo "cutover-loadtest exited $code: $(tail -n 3 "$CMP_DIR/loadtest.err" | tr '\n' ' ')" >"$CMP_DIR/not-measured.txt"
        fi
    fi
    log "compare: setup $s: done, tearing down"
    teardown "$s"
}

started="$(date -u +%Y-%m-%dT%H:%MZ)"
for s in "${SETUP_LIST[@]}"; do
    # Each setup in its own subshell: the variables one exports for its
    # deploy script never reach the next. In the background with `wait`, so
    # that a signal to this shell runs its cleanup at once, not after the
    # setup's whole run.
    code=0
    (run_setup "$s") &
    wait $! || code=$?
    if [ "$code" -ne 0 ]; then log "compare: setup $s stopped early (exit $code); see $OUT/$s"; fi
    teardown "$s"
done

# ---- the table --------------------------------------------------------------

{
    echo "### Deploys under load, run of $started (\`bench/deploy-compare.sh\`)"
    echo
    machine_summary
    printf -- '- memory: %s MiB; deploy tooling: %s; Docker engine %s\n' \
        "$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)" \
        "$(dpkg-query -W -f='${Package} ${Version}, ' docker.io docker-compose 2>/dev/null | sed 's/, $//')" \
        "$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)"
    echo "- load: cutover-loadtest, $RATE req/s over $KEEPALIVE keep-alive and $FRESH fresh-connection loops," \
        "$WS WebSockets, an OAuth flow every 2 s; $DEPLOYS deploys per setup, $INTERVAL s apart;" \
        "$(if [ "$BROKEN_AT" = none ]; then echo "none broken"; else echo "deploy $BROKEN_AT broken on purpose"; fi)"
    echo "- app start-up (docker start to first 200 on $HEALTH, Redis up, median of $STARTUP_REPS): ${STARTUP_MS} ms" \
        "($(tr '\n' ' ' <"$OUT/startup_ms.txt" | sed 's/ $//') ms)"
    echo
    python3 "$CMP_HOME/table.py" "$OUT" "$STARTUP_MS" "${SETUP_LIST[@]}"
} >"$OUT/table.md"
printf '\n'
cat "$OUT/table.md"
log "compare: the table is in $OUT/table.md; per setup: report.json, report.md, deploys.log"
exit 0
}
