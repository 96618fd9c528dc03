# The host proxies of setups b–e (Caddy, nginx, HAProxy: the Debian
# packages), each in front of one color published on loopback. Sourced by
# bench/deploy-compare.sh (start, stop, RSS) and by deploy-colors.sh (the
# switch). Source it, don't run it.
# shellcheck shell=bash
#
# Needs: CMP_DIR (the setup's work dir; configs, PID files and logs go in
# CMP_DIR/proxy), PROXY_PORT, CADDY_ADMIN_PORT, and CMP_PROXY, one of
# caddy-restart, caddy-reload, nginx, haproxy.

proxy_dir() { echo "$CMP_DIR/proxy"; }

# The PID of the proxy's main process (Caddy; nginx's and HAProxy's master),
# from the file the start wrote, or nothing when it does not run any more.
# The command line must still name this setup's dir, so a reused PID is
# never taken for the proxy.
proxy_pid() {
    local f pid
    f="$(proxy_dir)/main.pid"
    [ -s "$f" ] || return 0
    pid="$(cat "$f")"
    # The redirect comes after 2>/dev/null: a proxy that just exited leaves
    # no /proc entry, and that is an answer, not an error.
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$(proxy_dir)"; then
        echo "$pid"
    fi
}

# proxy_wait_port: until something accepts on PROXY_PORT (at most 10 s).
proxy_wait_port() {
    local i
    for i in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "the proxy did not listen on 127.0.0.1:$PROXY_PORT within 10s (attempt $i)" >&2
    return 1
}

write_caddyfile() {
    local upstream="$1" d
    d="$(proxy_dir)"
    # A catch-all site, as the report's Caddy had, on loopback only.
    cat >"$d/Caddyfile.new" <<EOF
{
    admin 127.0.0.1:$CADDY_ADMIN_PORT
    auto_https off
}
:$PROXY_PORT {
    bind 127.0.0.1
    reverse_proxy 127.0.0.1:$upstream
}
EOF
    mv "$d/Caddyfile.new" "$d/Caddyfile"
}

# What systemd's caddy.service ExecStart runs, with this setup's paths. Caddy
# keeps state under XDG dirs: kept inside the setup's dir.
caddy_start() {
    local d
    d="$(proxy_dir)"
    XDG_DATA_HOME="$d" XDG_CONFIG_HOME="$d" \
        setsid caddy run --config "$d/Caddyfile" --adapter caddyfile </dev/null >>"$d/caddy.log" 2>&1 &
    echo $! >"$d/main.pid"
    # caddy.service is Type=notify: `systemctl restart` returns once Caddy
    # says it is ready, i.e. its config is loaded and the admin API answers.
    local i
    for i in $(seq 1 200); do
        if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$CADDY_ADMIN_PORT/config/"; then return 0; fi
        sleep 0.05
    done
    echo "caddy did not answer on its admin API within 10s (attempt $i); see $d/caddy.log" >&2
    return 1
}

# `systemctl restart caddy`: SIGTERM, up to TimeoutStopSec=5s (caddy.service)
# for it to exit, then SIGKILL; then a new process.
caddy_stop() {
    local pid i
    pid="$(proxy_pid)"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    echo "caddy did not exit within 5s of SIGTERM (checked $i times); killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

write_nginx_conf() {
    local upstream="$1" d
    d="$(proxy_dir)"
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf.new" <<EOF
worker_processes $(nproc);
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp;
    proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp;
    uwsgi_temp_path $d/tmp;
    scgi_temp_path $d/tmp;
    # WebSockets: pass the upgrade on; an empty Connection header otherwise,
    # so upstream connections are kept alive.
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      '';
    }
    upstream athens {
        server 127.0.0.1:$upstream;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass http://athens;
            proxy_http_version 1.1;
            proxy_set_header Host \$host;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_read_timeout 1h;
        }
    }
}
EOF
    mv "$d/nginx.conf.new" "$d/nginx.conf"
}

write_haproxy_cfg() {
    local upstream="$1" d
    d="$(proxy_dir)"
    cat >"$d/haproxy.cfg.new" <<EOF
global
    nbthread $(nproc)
    maxconn 4096
    # The listeners are handed to the new worker at a reload (the master
    # does it over its socketpair; this socket allows it for -x too).
    stats socket $d/haproxy.sock mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$PROXY_PORT
    default_backend athens
backend athens
    server app 127.0.0.1:$upstream
EOF
    mv "$d/haproxy.cfg.new" "$d/haproxy.cfg"
}

# proxy_start UPSTREAM_PORT: the proxy, pointing at that port.
proxy_start() {
    local upstream="$1" d
    d="$(proxy_dir)"
    mkdir -p "$d"
    case "$CMP_PROXY" in
    caddy-*)
        write_caddyfile "$upstream"
        caddy_start
        ;;
    nginx)
        write_nginx_conf "$upstream"
        setsid nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' </dev/null >>"$d/nginx.log" 2>&1 &
        echo $! >"$d/main.pid"
        ;;
    haproxy)
        write_haproxy_cfg "$upstream"
        # haproxy.service: master-worker (-Ws; -W without systemd), master CLI.
        setsid haproxy -W -db -f "$d/haproxy.cfg" -S "$d/master.sock" </dev/null >>"$d/haproxy.log" 2>&1 &
        echo $! >"$d/main.pid"
        ;;
    *)
        echo "unknown proxy '$CMP_PROXY'" >&2
        return 2
        ;;
    esac
    proxy_wait_port
}

# proxy_switch UPSTREAM_PORT: the report's mntbg/mntdg (write the config for
# the new color) and mntms (apply it), done the way each setup applies it.
proxy_switch() {
    local upstream="$1" d pid
    d="$(proxy_dir)"
    case "$CMP_PROXY" in
    caddy-restart)
        write_caddyfile "$upstream"
        caddy_stop
        caddy_start
        ;;
    caddy-reload)
        # caddy.service's ExecReload: a graceful config load through the admin API.
        write_caddyfile "$upstream"
        XDG_DATA_HOME="$d" XDG_CONFIG_HOME="$d" \
            caddy reload --config "$d/Caddyfile" --adapter caddyfile \
            --address "127.0.0.1:$CADDY_ADMIN_PORT" --force >>"$d/caddy.log" 2>&1
        ;;
    nginx)
        write_nginx_conf "$upstream"
        nginx -p "$d" -c "$d/nginx.conf" -s reload >>"$d/nginx.log" 2>&1
        ;;
    haproxy)
        # haproxy.service's ExecReload: check the config, then SIGUSR2 to the
        # master, which starts a new worker with the listeners of the old one
        # (-x over its socketpair) and lets the old one finish its connections.
        write_haproxy_cfg "$upstream"
        haproxy -c -q -f "$d/haproxy.cfg" >>"$d/haproxy.log" 2>&1
        pid="$(proxy_pid)"
        [ -n "$pid" ] || { echo "haproxy's master is not running" >&2; return 1; }
        kill -USR2 "$pid"
        ;;
    esac
}

# proxy_stop: the proxy and every process it left (old workers too).
proxy_stop() {
    local pid i
    pid="$(proxy_pid)"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "the proxy (pid $pid) did not exit within 10s of SIGTERM (checked $i times); killing it" >&2
    fi
    # Each proxy was started with setsid, so its process group holds exactly
    # its processes: nothing it started (a worker) outlives it.
    kill -KILL -- "-$pid" 2>/dev/null || true
}
