# Shared by bench/proxy.sh and bench/switch.sh: starting the origin and the
# proxies on loopback, each configured the same way (keep-alive to the
# upstream, no access log, one worker or thread per core). Source it.
# shellcheck shell=bash
# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BENCH_PORT_BASE="${BENCH_PORT_BASE:-18100}"
CUTOVER_BIN="${CUTOVER_BIN:-$CUTOVER_ROOT/target/release/cutover}"
NCPU="$(nproc)"
# Before this script adds its own load: how busy the machine was otherwise.
LOADAVG_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
CLK_TCK="$(getconf CLK_TCK)"

BENCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cutover-bench.XXXXXX")"
# Every process this script starts, so cleanup stops exactly those.
BENCH_PIDS=()
# The compose file of the origin cutover deployed (deploy_container_origin),
# taken down at cleanup.
BENCH_PROJECT_FILE=""

bench_cleanup() {
    local pid
    # The deployed origin goes with the daemon that deployed it, before the
    # daemon is stopped.
    if [ -n "${BENCH_PROJECT_FILE:-}" ]; then
        timeout 60 "$CUTOVER_BIN" down -f "$BENCH_PROJECT_FILE" \
            --socket "$BENCH_DIR/cutover/cutover.sock" >/dev/null 2>&1 ||
            log "bench: cutover down of the origin failed; remove it with: cutover down -f $BENCH_PROJECT_FILE"
        BENCH_PROJECT_FILE=""
    fi
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [ -z "${BENCH_KEEP_DIR:-}" ]; then rm -rf "$BENCH_DIR"; fi
}

# After a process is known to have exited, so cleanup never signals a PID
# that may have been reused.
forget_pid() {
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do
        if [ "$p" != "$1" ]; then keep+=("$p"); fi
    done
    BENCH_PIDS=("${keep[@]}")
}

port() { echo $((BENCH_PORT_BASE + $1)); }
# HTTP/1.1 ports; nginx needs a second listener for h2c (prior knowledge).
ORIGIN_PORT=$(port 0)
ORIGIN_H2_PORT=$(port 1)
NGINX_PORT=$(port 2)
NGINX_H2_PORT=$(port 3)
HAPROXY_PORT=$(port 4)
CADDY_PORT=$(port 5)
CADDY_ADMIN_PORT=$(port 6)
CUTOVER_PORT=$(port 7)
GREEN_PORT=$(port 8)
HAPROXY_STATS_SOCK="$BENCH_DIR/haproxy.sock"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports_free() {
    local p
    for p in "$@"; do
        port_free "$p" || die "port $p on 127.0.0.1 is in use" \
            "stop what listens there, or set BENCH_PORT_BASE to another range"
    done
}

# wait_http URL [SECONDS]: until URL answers 200.
wait_http() {
    local url="$1" deadline=$((SECONDS + ${2:-10}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if curl -sf -o /dev/null --max-time 1 "$url"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# The origin: nginx with one worker returning a 5-byte body, so that the
# origin is not what limits a proxy. NAME lets switch.sh run two (blue, green).
start_origin() {
    local name="$1" port="$2" h2port="${3:-}" body="${4:-hello}"
    local dir="$BENCH_DIR/$name"
    mkdir -p "$dir"
    head -c 1048576 /dev/zero >"$dir/big.bin"
    local h2listen=""
    if [ -n "$h2port" ]; then h2listen="listen 127.0.0.1:$h2port http2;"; fi
    cat >"$dir/nginx.conf" <<EOF
$(nginx_prelude 1 "$dir")
    server {
        listen 127.0.0.1:$port;
        $h2listen
        default_type text/plain;
        location / { return 200 '$body'; }
        # A large body, for bench/memory.sh.
        location = /big { alias $dir/big.bin; }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    eval "PID_$name=$!"
    wait_http "http://127.0.0.1:$port/" || die "the $name origin did not start" "see $dir/error.log"
}

# nginx_prelude WORKERS DIR: the part of an nginx.conf the origins and the
# proxy share, up to the open `http {` block: logs off, long keep-alive, every
# temp path inside DIR.
nginx_prelude() {
    local dir="$2"
    cat <<EOF
worker_processes $1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
EOF
}

# deploy_container_origin: the same one-worker origin as start_origin, as an
# app that cutover deploys into a container (`cutover deploy` of a compose
# file: its own project network, health-gated, routed by cutover), the way
# cutover is really used. Starts the daemon (start_cutover_daemon) when it
# does not run yet. Sets CONTAINER_H1 and CONTAINER_H2 (IP:port of the
# container's HTTP/1.1 and h2c listeners), where the other proxies point.
deploy_container_origin() {
    ensure_dockerd
    "$CUTOVER_ROOT/scripts/images.sh" nginx >&2
    if [ -z "${PID_cutover:-}" ]; then
        start_cutover_daemon || die "cutover cannot deploy the origin: $CUTOVER_UNAVAILABLE" \
            "build it with cargo build --release -p cutover, or use --origin loopback"
    fi
    local dir="$BENCH_DIR/origin-app" project="cutover-bench-$$"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
$(nginx_prelude 1 /tmp)
    server {
        listen 80;
        listen 81 http2;
        default_type text/plain;
        location / { return 200 'hello'; }
    }
}
EOF
    cat >"$dir/compose.yaml" <<EOF
name: $project
services:
  origin:
    image: $NGINX_IMAGE
    command: ["nginx", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"]
    configs:
      - source: nginx_conf
        target: /etc/nginx/nginx.conf
    x-cutover:
      port: 80
      health: {path: /}
configs:
  nginx_conf:
    file: ./nginx.conf
EOF
    BENCH_PROJECT_FILE="$dir/compose.yaml"
    "$CUTOVER_BIN" deploy -f "$dir/compose.yaml" --socket "$BENCH_DIR/cutover/cutover.sock" \
        >"$dir/deploy.log" 2>&1 ||
        die "cutover deploy of the origin failed: $(tail -n 3 "$dir/deploy.log" | tr '\n' ' ')" \
            "see $dir/deploy.log"
    local id ip
    id="$(docker ps -q --filter "label=cutover.project=$project" --filter "label=cutover.service=origin")"
    [ -n "$id" ] || die "cutover deployed the origin but no container of $project runs" "docker ps -a"
    ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")"
    [ -n "$ip" ] || die "the origin container has no IP address" "docker inspect $id"
    CONTAINER_H1="$ip:80"
    CONTAINER_H2="$ip:81"
    wait_http "http://$CONTAINER_H1/" 20 ||
        die "the origin container does not answer on $CONTAINER_H1" "docker logs $id"
}

start_nginx() {
    local upstream="$1" dir="$BENCH_DIR/nginx"
    mkdir -p "$dir"
    write_nginx_conf "$upstream"
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    PID_nginx=$!
    wait_http "http://127.0.0.1:$NGINX_PORT/" || die "nginx did not start" "see $dir/error.log"
}

# Also used by switch.sh to point nginx at the other color before a reload.
write_nginx_conf() {
    local upstream="$1" dir="$BENCH_DIR/nginx"
    cat >"$dir/nginx.conf.new" <<EOF
$(nginx_prelude "$NCPU" "$dir")
    upstream origin {
        server $upstream;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        listen 127.0.0.1:$NGINX_H2_PORT http2;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    mv "$dir/nginx.conf.new" "$dir/nginx.conf"
}

# haproxy_prelude [GLOBAL_LINE]: the part of a haproxy.cfg every HAProxy
# here shares, up to the frontend: a thread per core, keep-alive both ways.
haproxy_prelude() {
    cat <<EOF
global
    nbthread $NCPU
    maxconn 4096
${1:-}
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
EOF
}

start_haproxy() {
    local upstream="$1" dir="$BENCH_DIR/haproxy"
    mkdir -p "$dir"
    write_haproxy_conf "$upstream"
    haproxy -db -f "$dir/haproxy.cfg" >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    PID_haproxy=$!
    wait_http "http://127.0.0.1:$HAPROXY_PORT/" || die "haproxy did not start" "see $dir/stdout.log"
}

# UPSTREAM is one address, or two (blue green) for the switch test, where
# green starts disabled and the runtime API flips them.
write_haproxy_conf() {
    local blue="$1" green="${2:-}" dir="$BENCH_DIR/haproxy"
    local green_line=""
    if [ -n "$green" ]; then green_line="    server green $green disabled"; fi
    cat >"$dir/haproxy.cfg.new" <<EOF
$(haproxy_prelude "    stats socket $HAPROXY_STATS_SOCK mode 600 level admin expose-fd listeners")
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend be
backend be
    server blue $blue
$green_line
EOF
    mv "$dir/haproxy.cfg.new" "$dir/haproxy.cfg"
}

start_caddy() {
    local upstream="$1" dir="$BENCH_DIR/caddy"
    mkdir -p "$dir"
    write_caddyfile "$upstream"
    # Caddy keeps state under XDG dirs; keep it out of the user's home.
    XDG_DATA_HOME="$dir" XDG_CONFIG_HOME="$dir" \
        caddy run --config "$dir/Caddyfile" --adapter caddyfile >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    PID_caddy=$!
    wait_http "http://127.0.0.1:$CADDY_PORT/" 20 || die "caddy did not start" "see $dir/stdout.log"
}

write_caddyfile() {
    local upstream="$1" dir="$BENCH_DIR/caddy"
    cat >"$dir/Caddyfile" <<EOF
{
    admin 127.0.0.1:$CADDY_ADMIN_PORT
    auto_https off
    servers {
        protocols h1 h2c
    }
}
http://127.0.0.1:$CADDY_PORT {
    reverse_proxy $upstream
}
EOF
}

# cutover: the daemon, then the route through its admin socket. Both return 1
# (with the reason in CUTOVER_UNAVAILABLE) when the binary is missing or does
# not serve, so the peers can still be measured.
CUTOVER_UNAVAILABLE=""
# start_cutover_daemon: `cutover serve` on CUTOVER_PORT, with no route yet.
start_cutover_daemon() {
    local dir="$BENCH_DIR/cutover"
    mkdir -p "$dir/state"
    if [ ! -x "$CUTOVER_BIN" ]; then
        CUTOVER_UNAVAILABLE="$CUTOVER_BIN does not exist (build it with cargo build --release -p cutover)"
        return 1
    fi
    "$CUTOVER_BIN" serve --listen "127.0.0.1:$CUTOVER_PORT" --socket "$dir/cutover.sock" \
        --state-dir "$dir/state" --no-access-log >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=($!)
    PID_cutover=$!
    local deadline=$((SECONDS + 10))
    while [ ! -S "$dir/cutover.sock" ] && [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$PID_cutover" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [ ! -S "$dir/cutover.sock" ]; then
        local how="within 10s"
        if ! kill -0 "$PID_cutover" 2>/dev/null; then
            local code=0
            wait "$PID_cutover" || code=$?
            forget_pid "$PID_cutover"
            how="and exited with status $code"
        fi
        CUTOVER_UNAVAILABLE="cutover serve did not create its socket $how: $(tail -n 3 "$dir/stdout.log" | tr '\n' ' ')"
        return 1
    fi
}

# start_cutover UPSTREAM: the daemon with the bench route pointed at UPSTREAM.
start_cutover() {
    local dir="$BENCH_DIR/cutover"
    start_cutover_daemon || return 1
    if ! cutover_route "$1"; then
        CUTOVER_UNAVAILABLE="PUT /v1/services/bench failed: $(cat "$dir/put.out" 2>/dev/null)"
        return 1
    fi
    if ! wait_http "http://127.0.0.1:$CUTOVER_PORT/" 15; then
        CUTOVER_UNAVAILABLE="cutover did not serve the route within 15s: $(tail -n 3 "$dir/stdout.log" | tr '\n' ' ')"
        return 1
    fi
}

# cutover_route TARGET: points the bench service at TARGET (the switch).
cutover_route() {
    curl -sS -f --max-time 10 --unix-socket "$BENCH_DIR/cutover/cutover.sock" \
        -X PUT http://localhost/v1/services/bench -H 'content-type: application/json' \
        -d "{\"targets\":[\"$1\"],\"health\":{\"path\":\"/\"}}" >"$BENCH_DIR/cutover/put.out" 2>&1
}

# The PIDs of a server: the process and its children (nginx's workers).
server_pids() {
    local pid="$1"
    echo "$pid"
    pgrep -P "$pid" || true
}

# Sum of utime+stime, in clock ticks, of the given processes (all threads).
cpu_ticks() {
    local pid total=0 stat
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        # Fields after the ")" closing the command name: utime is the 12th, stime the 13th.
        stat="${stat##*) }"
        # shellcheck disable=SC2086
        set -- $stat
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# status_kib FIELD PID...: the sum of one /proc/PID/status field in KiB:
# VmRSS (all resident pages, the binary's mapped text among them) or RssAnon
# (the resident pages that are the process's own: heap, stacks, buffers).
status_kib() {
    local field="$1" pid total=0 v
    shift
    for pid in "$@"; do
        v="$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null)" || continue
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Sum of VmRSS in KiB of the given processes.
rss_kib() { status_kib VmRSS "$@"; }

# sample_rss OUTFILE PID...: runs until killed, keeping in OUTFILE the
# maximum VmRSS and the maximum RssAnon, in KiB, on one line.
sample_rss() {
    local out="$1" max=0 max_anon=0 now anon
    shift
    while :; do
        now="$(rss_kib "$@")"
        anon="$(status_kib RssAnon "$@")"
        if [ "$now" -gt "$max" ] || [ "$anon" -gt "$max_anon" ]; then
            max=$((now > max ? now : max))
            max_anon=$((anon > max_anon ? anon : max_anon))
            echo "$max $max_anon" >"$out"
        fi
        sleep 0.2
    done
}

machine_summary() {
    local cpu
    cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    printf -- '- machine: %s CPUs (%s), kernel %s, %s\n' "$NCPU" "$cpu" "$(uname -r)" \
        "$(awk -F= '$1 == "PRETTY_NAME" {gsub(/"/, "", $2); print $2}' /etc/os-release)"
    printf -- '- load average before the run (1, 5, 15 min): %s; at its end: %s\n' \
        "$LOADAVG_AT_START" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf -- '- versions: %s\n' "$(dpkg-query -W -f='${Package} ${Version}, ' nginx haproxy caddy wrk nghttp2-client 2>/dev/null | sed 's/, $//')"
    if [ -x "$CUTOVER_BIN" ]; then
        # The binary may be older than HEAD: say when it was built.
        printf -- '- cutover: %s, binary built %s; HEAD at run time %s%s\n' \
            "$("$CUTOVER_BIN" --version 2>/dev/null || echo "version unknown")" \
            "$(date -u -r "$CUTOVER_BIN" +%Y-%m-%dT%H:%MZ)" \
            "$(git -C "$CUTOVER_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
            "$(if [ -n "$(git -C "$CUTOVER_ROOT" status --porcelain 2>/dev/null)" ]; then echo " (working tree has uncommitted changes)"; fi)"
    fi
}

# Results: one "PEER METRIC VALUE" line per measurement in $RESULTS, which
# the sourcing script sets; the report takes medians over the reps.
record() { echo "$1 $2 $3" >>"$RESULTS"; }

# wrk latency lines look like "     99%    1.20ms": convert to microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 }
        else print "nan" }'
}

# median PEER METRIC: median over the reps, empty when never measured.
median() {
    awk -v p="$1" -v m="$2" '$1 == p && $2 == m {print $3}' "$RESULTS" | sort -g |
        awk '{v[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# spread PEER METRIC: the lowest and highest rep, in thousands.
spread() {
    awk -v p="$1" -v m="$2" '$1 == p && $2 == m {print $3}' "$RESULTS" | sort -g |
        awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) printf "%.1fk–%.1fk", lo / 1000, hi / 1000; else print "–"}'
}
sum_metric() { awk -v p="$1" -v m="$2" '$1 == p && $2 == m {s += $3} END {print s + 0}' "$RESULTS"; }
fmt_k() { awk -v v="$1" 'BEGIN {if (v == "") print "–"; else printf "%.1fk", v / 1000}'; }
fmt_us() {
    awk -v v="$1" 'BEGIN {if (v == "") print "–"; else if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%d µs", v + 0.5}'
}
fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f×", a / b}'; }
