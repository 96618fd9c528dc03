#!/usr/bin/env bash
# HTTPS cost: cutover, nginx, HAProxy and Caddy terminating TLS in front of
# the same origin, with the same certificate (ECDSA P-256), on loopback.
# bench/proxy.sh --https runs it after the plain-HTTP figures. See
# docs/benchmarks.md for the method and results.
#
#   bench/https.sh [--reps N] [--duration S] [--peers "cutover nginx haproxy caddy"]
#                  [--append] [--build]
#
# Per peer, interleaved: keep-alive req/s at 50 connections (wrk), new TLS
# connections per second (wrk with Connection: close: a full handshake per
# request, wrk resumes no session), p50 at 1 connection, and HTTP/2 over
# TLS (h2load -c10 -m10).
#
# Env: BENCH_PORT_BASE (default 18100; uses the next 30 ports), CUTOVER_BIN.
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REPS=3
DURATION=10
PEERS="cutover nginx haproxy caddy"
APPEND=""
BUILD=""
CONNS=50

while [ $# -gt 0 ]; do
    case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --peers) PEERS="$2"; shift 2 ;;
    --append) APPEND=1; shift ;;
    --build) BUILD=1; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" "see bench/https.sh --help" ;;
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

declare -A TLS_PORT=([cutover]=$(port 20) [nginx]=$(port 21) [haproxy]=$(port 22) [caddy]=$(port 23))
CUTOVER_HTTP_PORT=$(port 24)
CADDY_ADMIN=$(port 25)
check_ports_free "$ORIGIN_PORT" "${TLS_PORT[@]}" "$CUTOVER_HTTP_PORT" "$CADDY_ADMIN"

ORIGIN="127.0.0.1:$ORIGIN_PORT"
start_origin origin "$ORIGIN_PORT"

# One certificate for all four: P-256, for bench.test and 127.0.0.1.
CERT="$BENCH_DIR/cert.pem"
KEY="$BENCH_DIR/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=bench.test -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" \
    -keyout "$KEY" -out "$CERT" 2>/dev/null
cat "$CERT" "$KEY" >"$BENCH_DIR/combined.pem"

start_tls_nginx() {
    local dir="$BENCH_DIR/nginx-tls"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
$(nginx_prelude "$NCPU" "$dir")
    upstream origin {
        server $ORIGIN;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${TLS_PORT[nginx]} ssl http2;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    MAIN_PID[nginx]=$!
}

start_tls_haproxy() {
    local dir="$BENCH_DIR/haproxy-tls"
    mkdir -p "$dir"
    cat >"$dir/haproxy.cfg" <<EOF
$(haproxy_prelude)
frontend fe
    bind 127.0.0.1:${TLS_PORT[haproxy]} ssl crt $BENCH_DIR/combined.pem alpn h2,http/1.1
    default_backend be
backend be
    server origin $ORIGIN
EOF
    haproxy -db -f "$dir/haproxy.cfg" >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    MAIN_PID[haproxy]=$!
}

start_tls_caddy() {
    local dir="$BENCH_DIR/caddy-tls"
    mkdir -p "$dir"
    cat >"$dir/Caddyfile" <<EOF
{
    admin 127.0.0.1:$CADDY_ADMIN
    auto_https disable_redirects
    default_sni bench.test
}
https://:${TLS_PORT[caddy]} {
    tls $CERT $KEY
    reverse_proxy $ORIGIN
}
EOF
    XDG_DATA_HOME="$dir" XDG_CONFIG_HOME="$dir" \
        caddy run --config "$dir/Caddyfile" --adapter caddyfile >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    MAIN_PID[caddy]=$!
}

start_tls_cutover() {
    local dir="$BENCH_DIR/cutover-tls"
    mkdir -p "$dir/state"
    [ -x "$CUTOVER_BIN" ] || die "$CUTOVER_BIN does not exist" "build it with cargo build --release -p cutover, or pass --build"
    "$CUTOVER_BIN" serve --listen "127.0.0.1:$CUTOVER_HTTP_PORT" --https-listen "127.0.0.1:${TLS_PORT[cutover]}" \
        --socket "$dir/cutover.sock" --state-dir "$dir/state" --no-access-log --no-acme \
        --tls-default-host bench.test >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    MAIN_PID[cutover]=$!
    local deadline=$((SECONDS + 10))
    while [ ! -S "$dir/cutover.sock" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    curl -sS -f --max-time 10 --unix-socket "$dir/cutover.sock" -X PUT http://localhost/v1/services/bench \
        -H 'content-type: application/json' \
        -d "{\"targets\":[\"$ORIGIN\"],\"health\":{\"path\":\"/\"},\"tls\":{\"certificate\":{\"files\":{\"cert\":\"$CERT\",\"key\":\"$KEY\"}},\"redirect\":false}}" \
        >"$dir/put.out" || die "cutover refused the route: $(cat "$dir/put.out")"
}

declare -A MAIN_PID=()
active=()
for peer in $PEERS; do
    case "$peer" in
    cutover) start_tls_cutover ;;
    nginx) start_tls_nginx ;;
    haproxy) start_tls_haproxy ;;
    caddy) start_tls_caddy ;;
    *) die "unknown peer '$peer'" "use some of: cutover nginx haproxy caddy" ;;
    esac
    deadline=$((SECONDS + 20))
    until [ "$(curl -sk --max-time 2 "https://127.0.0.1:${TLS_PORT[$peer]}/" 2>/dev/null)" = "hello" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "$peer did not answer 'hello' over HTTPS" "see $BENCH_DIR/$peer-tls/stdout.log"
        sleep 0.2
    done
    active+=("$peer")
done

RESULTS="$BENCH_DIR/results"
: >"$RESULTS"

# tls_wrk PEER CONNS TAG [HEADER]: one wrk run over HTTPS.
tls_wrk() {
    local peer="$1" conns="$2" tag="$3" header="${4:-}" out="$BENCH_DIR/wrk.out"
    local pids=() before after
    mapfile -t pids < <(server_pids "${MAIN_PID[$peer]}")
    before=$(cpu_ticks "${pids[@]}")
    local extra=()
    if [ -n "$header" ]; then extra=(-H "$header"); fi
    timeout $((DURATION + 30)) wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${extra[@]}" \
        "https://127.0.0.1:${TLS_PORT[$peer]}/" >"$out" 2>&1 || true
    after=$(cpu_ticks "${pids[@]}")
    local rps p50 total errors
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    total="$(awk '/requests in/ {print $1}' "$out")"
    p50="$(awk '$1 == "50%" {print $2}' "$out")"
    errors="$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10} /Non-2xx/ {print $NF}' "$out" |
        awk '{s += $1} END {print s + 0}')"
    if [ -z "$rps" ]; then
        log "bench: wrk against $peer gave no result:"
        cat "$out" >&2
        return 0
    fi
    record "$peer" "${tag}_rps" "$rps"
    record "$peer" "${tag}_p50" "$(to_us "$p50")"
    record "$peer" "${tag}_errors" "$errors"
    local ticks=$((after - before))
    if [ "$ticks" -gt 0 ]; then
        record "$peer" "${tag}_per_cpu" "$(awk -v n="$total" -v t="$ticks" -v hz="$CLK_TCK" 'BEGIN {print n / (t / hz)}')"
    fi
    log "bench:   $peer $tag: $rps req/s, p50 $p50, errors $errors"
}

tls_h2load() {
    local peer="$1" out="$BENCH_DIR/h2load.out"
    timeout $((DURATION + 30)) h2load -t1 -c10 -m10 -D"$DURATION" \
        "https://127.0.0.1:${TLS_PORT[$peer]}/" >"$out" 2>&1 || true
    local rps ok failed
    rps="$(awk '/^finished in/ {gsub(/,/, ""); print $4}' "$out")"
    ok="$(awk '/^requests:/ {print $8}' "$out")"
    failed="$(awk '/^requests:/ {print $10 + $12}' "$out")"
    if [ -z "$rps" ] || [ "${ok:-0}" -eq 0 ]; then
        log "bench:   $peer h2: no successful request ($(grep -m1 -iE 'error|fail|protocol' "$out" || echo 'no output'))"
        return 0
    fi
    record "$peer" h2_rps "$rps"
    record "$peer" h2_errors "${failed:-0}"
    log "bench:   $peer h2: $rps req/s, failed $failed"
}

log "bench: HTTPS, ${#active[@]} proxies (${active[*]}), $REPS reps, ${DURATION}s per run, interleaved"
for rep in $(seq 1 "$REPS"); do
    log "bench: rep $rep/$REPS"
    for peer in "${active[@]}"; do tls_wrk "$peer" "$CONNS" keepalive; done
    for peer in "${active[@]}"; do tls_wrk "$peer" "$CONNS" handshake "Connection: close"; done
    for peer in "${active[@]}"; do tls_wrk "$peer" 1 c1; done
    for peer in "${active[@]}"; do tls_h2load "$peer"; done
done

report() {
    local c_ka c_hs c_h2
    c_ka="$(median cutover keepalive_rps)"
    c_hs="$(median cutover handshake_rps)"
    c_h2="$(median cutover h2_rps)"
    echo "### HTTPS run of $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    machine_summary
    echo "- method: one ECDSA P-256 certificate for all; wrk -t1 over TLS, ${DURATION}s per run:" \
        "$CONNS keep-alive connections, $CONNS with \`Connection: close\` (a full handshake per request)," \
        "and 1 connection; h2load -t1 -c10 -m10 (h2 by ALPN); medians of $REPS interleaved reps, spread min–max"
    echo
    echo "| proxy | keep-alive req/s, $CONNS conns | spread | cutover vs it | req per CPU-second | new TLS connections/s | cutover vs it | p50, 1 conn | h2 req/s | cutover vs it |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    local peer
    for peer in cutover nginx haproxy caddy; do
        [[ " ${active[*]} " == *" $peer "* ]] || continue
        local ka hs h2
        ka="$(median "$peer" keepalive_rps)"
        hs="$(median "$peer" handshake_rps)"
        h2="$(median "$peer" h2_rps)"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$peer" "$(fmt_k "$ka")" "$(spread "$peer" keepalive_rps)" "$(fmt_ratio "$c_ka" "$ka")" \
            "$(fmt_k "$(median "$peer" keepalive_per_cpu)")" \
            "$(fmt_k "$hs")" "$(fmt_ratio "$c_hs" "$hs")" "$(fmt_us "$(median "$peer" c1_p50)")" \
            "$(fmt_k "$h2")" "$(fmt_ratio "$c_h2" "$h2")"
    done
    echo
    local errors="" e
    for peer in "${active[@]}"; do
        e=$(($(sum_metric "$peer" keepalive_errors) + $(sum_metric "$peer" c1_errors) + $(sum_metric "$peer" h2_errors)))
        if [ "$e" -gt 0 ]; then errors="$errors $peer: $e;"; fi
    done
    echo "Client errors over the keep-alive, 1-connection and h2 runs:${errors:- none}"
    echo
}

table="$(report)"
printf '\n%s\n' "$table"
if [ -n "$APPEND" ]; then
    printf '\n%s\n' "$table" >>"$CUTOVER_ROOT/docs/benchmarks.md"
    log "bench: appended to docs/benchmarks.md"
fi
