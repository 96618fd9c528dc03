#!/usr/bin/env bash
# Switching blue→green under load: how many requests fail, and how soon the
# first new client sees green, for cutover and for the usual ways to switch
# nginx, HAProxy and Caddy. See docs/benchmarks.md.
#
#   bench/switch.sh [--reps N] [--duration S] [--methods "..."] [--append]
#
#   --reps N        reps per method (default 3); every rep is listed
#   --duration S    seconds of load per rep; the switch comes halfway (default 10)
#   --methods LIST  default: cutover nginx-reload haproxy-reload haproxy-api caddy-load caddy-restart
#   --append        also append the result section to docs/benchmarks.md
#
# Both origins (nginx, one worker each, 5-byte bodies "blue!" and "green") stay
# up. Load: wrk -t1 -c50 against the proxy, started fresh, pointing at blue.
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REPS=3
DURATION=10
METHODS="cutover nginx-reload haproxy-reload haproxy-api caddy-load caddy-restart"
APPEND=""
CONNS="${CONNS:-50}"
HELPER="$(dirname "${BASH_SOURCE[0]}")/switch_helper.py"

while [ $# -gt 0 ]; do
    case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --methods) METHODS="$2"; shift 2 ;;
    --append) APPEND=1; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" "see bench/switch.sh --help" ;;
    esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer, got '$REPS'"
{ [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] && [ "$DURATION" -ge 4 ]; } ||
    die "--duration must be an integer of at least 4 (seconds), got '$DURATION'"

trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$CUTOVER_ROOT/scripts/deps.sh" bench
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the switch probe" "apt-get install python3"

BLUE_PORT=$ORIGIN_PORT
BLUE="127.0.0.1:$BLUE_PORT"
GREEN="127.0.0.1:$GREEN_PORT"
check_ports_free "$BLUE_PORT" "$GREEN_PORT" "$NGINX_PORT" "$NGINX_H2_PORT" "$HAPROXY_PORT" \
    "$CADDY_PORT" "$CADDY_ADMIN_PORT" "$CUTOVER_PORT"
start_origin blue "$BLUE_PORT" "" "blue!"
start_origin green "$GREEN_PORT" "" "green"

# Each method: start (pointing at blue), port, switch command, stop.
proxy_port() {
    case "$1" in
    cutover) echo "$CUTOVER_PORT" ;;
    nginx-*) echo "$NGINX_PORT" ;;
    haproxy-*) echo "$HAPROXY_PORT" ;;
    caddy-*) echo "$CADDY_PORT" ;;
    esac
}

start_method() {
    case "$1" in
    cutover) start_cutover "$BLUE" ;;
    nginx-reload) start_nginx "$BLUE" ;;
    haproxy-reload) start_haproxy "$BLUE" ;;
    haproxy-api)
        mkdir -p "$BENCH_DIR/haproxy"
        write_haproxy_conf "$BLUE" "$GREEN"
        haproxy -db -f "$BENCH_DIR/haproxy/haproxy.cfg" >"$BENCH_DIR/haproxy/stdout.log" 2>&1 &
        BENCH_PIDS+=($!)
        PID_haproxy=$!
        wait_http "http://127.0.0.1:$HAPROXY_PORT/" || die "haproxy did not start"
        ;;
    caddy-*) start_caddy "$BLUE" ;;
    *) die "unknown method '$1'" "use some of: cutover nginx-reload haproxy-reload haproxy-api caddy-load caddy-restart" ;;
    esac
}

switch_method() {
    case "$1" in
    cutover) cutover_route "$GREEN" ;;
    nginx-reload)
        write_nginx_conf "$GREEN"
        kill -HUP "$PID_nginx"
        ;;
    haproxy-reload)
        # The documented soft reload: a new process with the new config
        # binds, then tells the old one (-sf) to finish and exit.
        write_haproxy_conf "$GREEN"
        haproxy -db -f "$BENCH_DIR/haproxy/haproxy.cfg" -sf "$PID_haproxy" >>"$BENCH_DIR/haproxy/stdout.log" 2>&1 &
        BENCH_PIDS+=($!)
        PID_haproxy=$!
        ;;
    haproxy-api)
        # One connection, two commands: green takes traffic before blue stops.
        echo "enable server be/green; disable server be/blue" |
            socat -t 5 stdio "unix-connect:$HAPROXY_STATS_SOCK" >/dev/null
        ;;
    caddy-load)
        write_caddyfile "$GREEN"
        curl -sf --max-time 10 -X POST "http://127.0.0.1:$CADDY_ADMIN_PORT/load" \
            -H 'Content-Type: text/caddyfile' --data-binary "@$BENCH_DIR/caddy/Caddyfile" >/dev/null
        ;;
    caddy-restart)
        # What the field report's deploy script does: stop Caddy, start it
        # with the new config.
        write_caddyfile "$GREEN"
        stop_pid "$PID_caddy"
        XDG_DATA_HOME="$BENCH_DIR/caddy" XDG_CONFIG_HOME="$BENCH_DIR/caddy" \
            caddy run --config "$BENCH_DIR/caddy/Caddyfile" --adapter caddyfile >>"$BENCH_DIR/caddy/stdout.log" 2>&1 &
        BENCH_PIDS+=($!)
        PID_caddy=$!
        ;;
    esac
}

stop_pid() {
    local pid="$1" deadline=$((SECONDS + 10))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

stop_method() {
    local pid
    for pid in "${PID_cutover:-}" "${PID_nginx:-}" "${PID_haproxy:-}" "${PID_caddy:-}"; do
        if [ -n "$pid" ]; then stop_pid "$pid"; fi
    done
    # The old HAProxy of a -sf reload exits by itself; wait for every proxy
    # process still holding a port before the next rep.
    local deadline=$((SECONDS + 15))
    while [ "$SECONDS" -lt "$deadline" ] &&
        ! { port_free "$NGINX_PORT" && port_free "$HAPROXY_PORT" && port_free "$CADDY_PORT" && port_free "$CUTOVER_PORT"; }; do
        sleep 0.1
    done
    PID_cutover="" PID_nginx="" PID_haproxy="" PID_caddy=""
    rm -rf "$BENCH_DIR/cutover" "$BENCH_DIR/nginx" "$BENCH_DIR/haproxy" "$BENCH_DIR/caddy"
}

RESULTS="$BENCH_DIR/switch-results"
: >"$RESULTS"
declare -A NOTE=()

# One rep: load for DURATION, switch at the half, count client errors.
run_rep() {
    local method="$1" rep="$2" port out="$BENCH_DIR/wrk.out"
    port="$(proxy_port "$method")"
    if ! start_method "$method"; then
        NOTE[$method]="${CUTOVER_UNAVAILABLE:-did not start}"
        log "bench: $method not measured: ${NOTE[$method]}"
        stop_method
        return 1
    fi
    local body
    body="$(curl -sf --max-time 2 "http://127.0.0.1:$port/" || true)"
    [ "$body" = "blue!" ] || die "$method served '$body' before the switch instead of blue's 'blue!'"
    timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/" >"$out" 2>&1 &
    local wrk_pid=$!
    BENCH_PIDS+=("$wrk_pid")
    sleep "$(awk -v d="$DURATION" 'BEGIN {print d / 2}')"
    rm -f "$BENCH_DIR/probe.ready"
    python3 "$HELPER" probe "http://127.0.0.1:$port/" green "$BENCH_DIR/probe.ready" $((DURATION / 2 - 1)) \
        >"$BENCH_DIR/probe.out" &
    local probe_pid=$!
    local deadline=$((SECONDS + 3))
    while [ ! -e "$BENCH_DIR/probe.ready" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.01; done
    local t0
    t0="$(date +%s%N)"
    switch_method "$method" || log "bench: the $method switch command failed"
    wait "$probe_pid" || true
    wait "$wrk_pid" || true
    forget_pid "$wrk_pid"
    local t_green errors total green_ms="–"
    t_green="$(cat "$BENCH_DIR/probe.out")"
    if [ -n "$t_green" ]; then green_ms="$(awk -v a="$t_green" -v b="$t0" 'BEGIN {printf "%.0f", (a - b) / 1e6}')"; fi
    errors="$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10} /Non-2xx/ {print $NF}' "$out" |
        awk '{s += $1} END {print s + 0}')"
    total="$(awk '/requests in/ {print $1}' "$out")"
    echo "$method $rep $errors $green_ms ${total:-0}" >>"$RESULTS"
    log "bench:   $method rep $rep: $errors errors of ${total:-?} requests, first green ${green_ms} ms after the command"
    stop_method
}

log "bench: switch test, methods: $METHODS; $REPS reps, ${DURATION}s each, switch at $((DURATION / 2))s"
for rep in $(seq 1 "$REPS"); do
    for method in $METHODS; do
        [ -z "${NOTE[$method]:-}" ] || continue
        run_rep "$method" "$rep" || true
    done
done

report() {
    echo "### Switch run of $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    machine_summary
    echo "- method: wrk -t1 -c$CONNS for ${DURATION}s against the proxy, switch at $((DURATION / 2))s;" \
        "first green = first response with green's body to a fresh connection, after the switch command started"
    echo
    echo "| method | errors seen by the client, per rep | requests per rep | first green response after the command |"
    echo "|---|---|---|---|"
    local method
    for method in $METHODS; do
        if [ -n "${NOTE[$method]:-}" ]; then
            echo "| $method | not measured: ${NOTE[$method]} | – | – |"
            continue
        fi
        awk -v m="$method" '$1 == m {
                e = e (e == "" ? "" : " / ") $3
                r = r (r == "" ? "" : " / ") $5
                if ($4 != "–") { v = $4 + 0; if (min == "" || v < min) min = v; if (max == "" || v > max) max = v } else missing++
            }
            END {
                g = (min == "") ? "never within the run" : (min == max ? min " ms" : min "–" max " ms")
                if (missing && min != "") g = g " (" missing " reps never)"
                printf "| %s | %s | %s | %s |\n", m, e, r, g
            }' "$RESULTS"
    done
    echo
}

table="$(report)"
printf '\n%s\n' "$table"
if [ -n "$APPEND" ]; then
    printf '\n%s\n' "$table" >>"$CUTOVER_ROOT/docs/benchmarks.md"
    log "bench: appended to docs/benchmarks.md"
fi
