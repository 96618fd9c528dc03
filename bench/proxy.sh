#!/usr/bin/env bash
# Proxy overhead: the same origin direct and through cutover, nginx, HAProxy
# and Caddy, on loopback. See docs/benchmarks.md for the method and results.
#
#   bench/proxy.sh [--reps N] [--duration S] [--peers "direct cutover nginx haproxy caddy"]
#                  [--origin loopback|container] [--append] [--build] [--https]
#
#   --reps N       interleaved repetitions; the table shows medians (default 3)
#   --duration S   seconds per load run (default 10)
#   --peers LIST   which paths to measure (default: all five)
#   --origin WHERE loopback (default): the origin nginx on 127.0.0.1; container:
#                  the same nginx in a container on the Docker bridge, every
#                  proxy pointed at its address (needs the engine)
#   --append       also append the result section to docs/benchmarks.md
#   --build        cargo build --release -p cutover first
#   --https        then the HTTPS figures (bench/https.sh, same reps and duration)
#
# Env: BENCH_PORT_BASE (default 18100; uses the next 10 ports), CUTOVER_BIN,
# CONNS (default 50), H2_CLIENTS (10) and H2_STREAMS (10) for h2load.
# Needs root only to install missing packages (scripts/deps.sh bench).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REPS=3
DURATION=10
PEERS="direct cutover nginx haproxy caddy"
ORIGIN_KIND=loopback
APPEND=""
BUILD=""
HTTPS=""
CONNS="${CONNS:-50}"
H2_CLIENTS="${H2_CLIENTS:-10}"
H2_STREAMS="${H2_STREAMS:-10}"

while [ $# -gt 0 ]; do
    case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --peers) PEERS="$2"; shift 2 ;;
    --origin) ORIGIN_KIND="$2"; shift 2 ;;
    --append) APPEND=1; shift ;;
    --build) BUILD=1; shift ;;
    --https) HTTPS=1; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" "see bench/proxy.sh --help" ;;
    esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer, got '$REPS'"
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer, got '$DURATION'"

trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$CUTOVER_ROOT/scripts/deps.sh" bench
if [ -n "$BUILD" ]; then
    log "bench: cargo build --release -p cutover"
    (cd "$CUTOVER_ROOT" && cargo build --release -q -p cutover)
fi

check_ports_free "$ORIGIN_PORT" "$ORIGIN_H2_PORT" "$NGINX_PORT" "$NGINX_H2_PORT" "$HAPROXY_PORT" \
    "$CADDY_PORT" "$CADDY_ADMIN_PORT" "$CUTOVER_PORT"

case "$ORIGIN_KIND" in
loopback)
    ORIGIN="127.0.0.1:$ORIGIN_PORT"
    ORIGIN_H2="127.0.0.1:$ORIGIN_H2_PORT"
    start_origin origin "$ORIGIN_PORT" "$ORIGIN_H2_PORT"
    ;;
container)
    deploy_container_origin
    ORIGIN="$CONTAINER_H1"
    ORIGIN_H2="$CONTAINER_H2"
    ;;
*) die "unknown --origin '$ORIGIN_KIND'" "use loopback or container" ;;
esac

# Which peers run, where each listens, and the PIDs whose RSS and CPU are counted.
declare -A H1_ADDR=([direct]=$ORIGIN [cutover]=127.0.0.1:$CUTOVER_PORT [nginx]=127.0.0.1:$NGINX_PORT
    [haproxy]=127.0.0.1:$HAPROXY_PORT [caddy]=127.0.0.1:$CADDY_PORT)
declare -A H2_ADDR=([direct]=$ORIGIN_H2 [cutover]=127.0.0.1:$CUTOVER_PORT [nginx]=127.0.0.1:$NGINX_H2_PORT
    [haproxy]=127.0.0.1:$HAPROXY_PORT [caddy]=127.0.0.1:$CADDY_PORT)
declare -A MAIN_PID=()
declare -A NOTE=()
active=()
for peer in $PEERS; do
    case "$peer" in
    direct) ;;
    nginx) start_nginx "$ORIGIN"; MAIN_PID[nginx]=$PID_nginx ;;
    haproxy) start_haproxy "$ORIGIN"; MAIN_PID[haproxy]=$PID_haproxy ;;
    caddy) start_caddy "$ORIGIN"; MAIN_PID[caddy]=$PID_caddy ;;
    cutover)
        # With --origin container the daemon runs already, serving the
        # origin it deployed.
        if [ "$ORIGIN_KIND" != container ] && ! start_cutover "$ORIGIN"; then
            log "bench: cutover is not measured: $CUTOVER_UNAVAILABLE"
            NOTE[cutover]="not measured: $CUTOVER_UNAVAILABLE"
            continue
        fi
        MAIN_PID[cutover]=$PID_cutover
        ;;
    *) die "unknown peer '$peer'" "use some of: direct cutover nginx haproxy caddy" ;;
    esac
    body="$(curl -sf --max-time 2 "http://${H1_ADDR[$peer]}/" || true)"
    [ "$body" = "hello" ] || die "$peer answered '$body' instead of the origin's 'hello'"
    active+=("$peer")
done

RESULTS="$BENCH_DIR/results"
: >"$RESULTS"

# run_wrk PEER CONNS TAG: one wrk run; records req/s, p50, p99, errors, and
# for proxies the max RSS and the requests per CPU-second of the proxy.
run_wrk() {
    local peer="$1" conns="$2" tag="$3" out="$BENCH_DIR/wrk.out"
    local pids=() sampler="" before=0 after=0
    if [ -n "${MAIN_PID[$peer]:-}" ]; then
        mapfile -t pids < <(server_pids "${MAIN_PID[$peer]}")
        echo "0 0" >"$BENCH_DIR/rss"
        sample_rss "$BENCH_DIR/rss" "${pids[@]}" &
        sampler=$!
        before=$(cpu_ticks "${pids[@]}")
    fi
    # wrk stops itself after DURATION; timeout is only a guard against a hang.
    timeout $((DURATION + 30)) wrk -t1 -c"$conns" -d"${DURATION}s" --latency \
        "http://${H1_ADDR[$peer]}/" >"$out" 2>&1 || true
    if [ -n "$sampler" ]; then
        after=$(cpu_ticks "${pids[@]}")
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
    fi
    local rps p50 p99 total errors
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    total="$(awk '/requests in/ {print $1}' "$out")"
    p50="$(awk '$1 == "50%" {print $2}' "$out")"
    p99="$(awk '$1 == "99%" {print $2}' "$out")"
    errors="$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10} /Non-2xx/ {print $NF}' "$out" |
        awk '{s += $1} END {print s + 0}')"
    if [ -z "$rps" ] || [ -z "$p50" ]; then
        log "bench: wrk against $peer gave no result:"
        cat "$out" >&2
        return 0
    fi
    record "$peer" "${tag}_rps" "$rps"
    record "$peer" "${tag}_p50" "$(to_us "$p50")"
    record "$peer" "${tag}_p99" "$(to_us "$p99")"
    record "$peer" "${tag}_errors" "$errors"
    if [ -n "$sampler" ]; then
        local rss anon
        read -r rss anon <"$BENCH_DIR/rss"
        record "$peer" "${tag}_rss" "$rss"
        record "$peer" "${tag}_anon" "$anon"
        local ticks=$((after - before))
        if [ "$ticks" -gt 0 ]; then
            record "$peer" "${tag}_per_cpu" "$(awk -v n="$total" -v t="$ticks" -v hz="$CLK_TCK" 'BEGIN {print n / (t / hz)}')"
            record "$peer" "${tag}_cores" "$(awk -v t="$ticks" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN {print t / hz / d}')"
        fi
    fi
    log "bench:   $peer $tag: $rps req/s, p50 $p50, p99 $p99, errors $errors"
}

run_h2load() {
    local peer="$1" out="$BENCH_DIR/h2load.out"
    timeout $((DURATION + 30)) h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D"$DURATION" \
        "http://${H2_ADDR[$peer]}/" >"$out" 2>&1 || true
    local rps ok failed
    rps="$(awk '/^finished in/ {gsub(/,/, ""); print $4}' "$out")"
    ok="$(awk '/^requests:/ {print $8}' "$out")"
    failed="$(awk '/^requests:/ {print $10 + $12}' "$out")"
    if [ -z "$rps" ] || [ "${ok:-0}" -eq 0 ]; then
        log "bench:   $peer h2c: no successful request ($(grep -m1 -iE 'error|fail|protocol' "$out" || echo 'no output'))"
        return 0
    fi
    record "$peer" h2_rps "$rps"
    record "$peer" h2_errors "${failed:-0}"
    log "bench:   $peer h2c: $rps req/s, failed $failed"
}

log "bench: ${#active[@]} paths (${active[*]}), $REPS reps, ${DURATION}s per run, interleaved"
for rep in $(seq 1 "$REPS"); do
    log "bench: rep $rep/$REPS"
    for peer in "${active[@]}"; do run_wrk "$peer" "$CONNS" c50; done
    for peer in "${active[@]}"; do run_wrk "$peer" 1 c1; done
    for peer in "${active[@]}"; do run_h2load "$peer"; done
done

fmt_added() {
    awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "") print "–"; else if (a == b) print "0"; else printf "%+d µs", a - b + (a >= b ? 0.5 : -0.5)}'
}
fmt_mib() { awk -v v="$1" 'BEGIN {if (v == "") print "–"; else printf "%.1f MiB", v / 1024}'; }
fmt_cores() { awk -v v="$1" 'BEGIN {if (v == "") print "–"; else printf "%.2f", v}'; }

report() {
    local d_rps d_p50 n_rps n_h2 c_rps c_h2
    d_rps="$(median direct c50_rps)"
    d_p50="$(median direct c1_p50)"
    n_rps="$(median nginx c50_rps)"
    n_h2="$(median nginx h2_rps)"
    c_rps="$(median cutover c50_rps)"
    c_h2="$(median cutover h2_rps)"
    echo "### Run of $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    machine_summary
    echo "- method: wrk -t1, ${DURATION}s per run, $CONNS connections and 1 connection;" \
        "h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS (h2c, prior knowledge), ${DURATION}s;" \
        "medians of $REPS interleaved reps"
    case "$ORIGIN_KIND" in
    loopback) echo "- origin: nginx, 1 worker, on 127.0.0.1:$ORIGIN_PORT" ;;
    container) echo "- origin: nginx, 1 worker, deployed by cutover into a container (its project's network) at $ORIGIN; every other proxy points there" ;;
    esac
    echo
    echo "| path | req/s, $CONNS conns | spread | vs direct | vs nginx | cutover vs it | proxy CPU, cores | req per CPU-second | p99, $CONNS conns | p50, 1 conn | added p50 | p99, 1 conn | h2c req/s | h2c spread | h2c vs nginx | cutover vs it, h2c | RSS under load | own memory under load |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    local peer
    for peer in direct cutover nginx haproxy caddy; do
        [[ " $PEERS " == *" $peer "* ]] || continue
        if [ -n "${NOTE[$peer]:-}" ]; then
            echo "| $peer | not measured (see below) | – | – | – | – | – | – | – | – | – | – | – | – | – | – | – | – |"
            continue
        fi
        local rps p50 h2
        rps="$(median "$peer" c50_rps)"
        p50="$(median "$peer" c1_p50)"
        h2="$(median "$peer" h2_rps)"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$peer" "$(fmt_k "$rps")" "$(spread "$peer" c50_rps)" \
            "$(fmt_ratio "$rps" "$d_rps")" "$(fmt_ratio "$rps" "$n_rps")" "$(fmt_ratio "$c_rps" "$rps")" \
            "$(fmt_cores "$(median "$peer" c50_cores)")" "$(fmt_k "$(median "$peer" c50_per_cpu)")" \
            "$(fmt_us "$(median "$peer" c50_p99)")" \
            "$(fmt_us "$p50")" "$(fmt_added "$p50" "$d_p50")" "$(fmt_us "$(median "$peer" c1_p99)")" \
            "$(fmt_k "$h2")" "$(spread "$peer" h2_rps)" "$(fmt_ratio "$h2" "$n_h2")" "$(fmt_ratio "$c_h2" "$h2")" \
            "$(fmt_mib "$(median "$peer" c50_rss)")" "$(fmt_mib "$(median "$peer" c50_anon)")"
    done
    echo
    local errors="" e
    for peer in "${active[@]}"; do
        e=$(($(sum_metric "$peer" c50_errors) + $(sum_metric "$peer" c1_errors) + $(sum_metric "$peer" h2_errors)))
        if [ "$e" -gt 0 ]; then errors="$errors $peer: $e;"; fi
    done
    echo "Client errors over all runs (socket errors, non-2xx, failed h2 requests):${errors:- none}"
    for peer in "${!NOTE[@]}"; do echo "- $peer: ${NOTE[$peer]}"; done
    echo
}

table="$(report)"
printf '\n%s\n' "$table"
if [ -n "$APPEND" ]; then
    printf '\n%s\n' "$table" >>"$CUTOVER_ROOT/docs/benchmarks.md"
    log "bench: appended to docs/benchmarks.md"
fi
if [ -n "$HTTPS" ]; then
    bench_cleanup
    "$CUTOVER_ROOT/bench/https.sh" --reps "$REPS" --duration "$DURATION" ${APPEND:+--append}
fi
