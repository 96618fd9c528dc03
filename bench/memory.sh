#!/usr/bin/env bash
# Memory under load and after it: what a proxy holds while clients stall it
# (HTTP/2 streams with a zero window, large responses over HTTP/1) and what
# it still holds once they are gone. cutover with mimalloc (the build) and
# with glibc's malloc, nginx and HAProxy, against the same nginx origin on
# loopback. See docs/benchmarks.md, "Memory".
#
#   bench/memory.sh [--build]
#
#   --build   build both cutover binaries first (release; the glibc one
#             with --features system-allocator into target/bench-glibc)
#
# Env: BENCH_PORT_BASE (default 18100), CUTOVER_BIN, CUTOVER_GLIBC_BIN.
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BUILD=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=1; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" "see bench/memory.sh --help" ;;
    esac
done
CUTOVER_GLIBC_BIN="${CUTOVER_GLIBC_BIN:-$CUTOVER_ROOT/target/bench-glibc/release/cutover}"
# Seconds after the load before "after" is read: past cutover's
# --upstream-idle-timeout (15 s) and a health probe.
SETTLE=20

trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$CUTOVER_ROOT/scripts/deps.sh" bench
if [ -n "$BUILD" ]; then
    log "bench: building cutover with mimalloc and with glibc's malloc"
    (cd "$CUTOVER_ROOT" && cargo build --release -q -p cutover &&
        cargo build --release -q -p cutover --features system-allocator --target-dir target/bench-glibc)
fi
check_ports_free "$ORIGIN_PORT" "$NGINX_PORT" "$NGINX_H2_PORT" "$HAPROXY_PORT" "$CUTOVER_PORT"
start_origin origin "$ORIGIN_PORT"
ORIGIN="127.0.0.1:$ORIGIN_PORT"

# peak_rss_during PIDS... -- COMMAND: runs COMMAND, sampling the summed RSS
# of PIDS every 200 ms; prints the peak in MiB.
peak_rss_during() {
    local pids=() peak=0 now
    while [ "$1" != "--" ]; do pids+=("$1"); shift; done
    shift
    "$@" >"$BENCH_DIR/load.out" 2>&1 &
    local load=$!
    while kill -0 "$load" 2>/dev/null; do
        now="$(rss_kib "${pids[@]}")"
        if [ "$now" -gt "$peak" ]; then peak="$now"; fi
        sleep 0.2
    done
    wait "$load" || true
    echo $((peak / 1024))
}

mib() { echo $(($(rss_kib "$@") / 1024)); }

ROWS=()
# measure NAME H1_URL H2_URL PIDS...
measure() {
    local name="$1" h1="$2" h2="$3"
    shift 3
    local idle h2_peak h2_after h1_peak h1_after
    idle="$(mib "$@")"
    # 20 connections x 100 streams of 1 MiB that the client never lets in
    # (window 0): the proxy buffers what it read from the origin. Bounded:
    # h2load stops after 8 s.
    h2_peak="$(peak_rss_during "$@" -- timeout -s INT 8 h2load -c20 -m100 -n2000 -w0 -W16 "$h2")"
    sleep "$SETTLE"
    h2_after="$(mib "$@")"
    # 200 HTTP/1.1 connections reading 1 MiB bodies for 8 s.
    h1_peak="$(peak_rss_during "$@" -- wrk -t2 -c200 -d8s "$h1")"
    sleep "$SETTLE"
    h1_after="$(mib "$@")"
    ROWS+=("| $name | $idle | $h2_peak | $h2_after | $h1_peak | $h1_after |")
    log "bench: $name: idle $idle MiB; zero-window h2 peak $h2_peak, after $h2_after; h1 1 MiB bodies peak $h1_peak, after $h1_after"
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

for bin in "$CUTOVER_BIN" "$CUTOVER_GLIBC_BIN"; do
    name="cutover (mimalloc)"
    if [ "$bin" = "$CUTOVER_GLIBC_BIN" ]; then name="cutover (glibc malloc)"; fi
    CUTOVER_BIN="$bin"
    if ! start_cutover "$ORIGIN"; then
        log "bench: $name skipped: $CUTOVER_UNAVAILABLE"
        continue
    fi
    measure "$name" "http://127.0.0.1:$CUTOVER_PORT/big" "http://127.0.0.1:$CUTOVER_PORT/big" "$PID_cutover"
    stop_pid "$PID_cutover"
    rm -rf "$BENCH_DIR/cutover"
done
start_nginx "$ORIGIN"
# shellcheck disable=SC2046
measure nginx "http://127.0.0.1:$NGINX_PORT/big" "http://127.0.0.1:$NGINX_H2_PORT/big" $(server_pids "$PID_nginx")
stop_pid "$PID_nginx"
start_haproxy "$ORIGIN"
measure HAProxy "http://127.0.0.1:$HAPROXY_PORT/big" "http://127.0.0.1:$HAPROXY_PORT/big" "$PID_haproxy"
stop_pid "$PID_haproxy"

echo
echo "RSS in MiB ($NCPU cores, load average at start $LOADAVG_AT_START):"
echo
echo "| proxy | idle | zero-window h2, peak | ${SETTLE} s after | 1 MiB bodies over h1, peak | ${SETTLE} s after |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
