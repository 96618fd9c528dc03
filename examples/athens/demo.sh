#!/usr/bin/env bash
# The field report's job, done by cutover on one machine with Docker:
#
#   examples/athens/demo.sh
#
# builds the images (build-local.sh) and cutover, starts a private
# `cutover serve` (its socket and state in a temp folder, the proxy on
# 127.0.0.1), deploys athens 1.0.0 (blue) with Redis, takes an OAuth state
# from it, deploys 2.0.0 (green) while a client keeps calling, checks that
# the visit count went on, the color changed, no request failed and blue's
# OAuth state is accepted by green, prints `cutover status`, then
# `cutover down` and stops the daemon.
#
# ATHENS_PROJECT (default athens) names the project; ATHENS_DEMO_PORT picks
# the proxy port (default: 8080, or the first free one after it).
# `--keep` leaves the project and its daemon running at the end, and says
# how to stop them.
# Exits non-zero, with the daemon's last log lines, if a step fails.
set -euo pipefail
KEEP=""
case "${1:-}" in
--keep) KEEP=1 ;;
"") ;;
*) printf 'usage: %s [--keep]\n' "$0" >&2; exit 2 ;;
esac
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../scripts/lib.sh
. "$ROOT/scripts/lib.sh"

PROJECT="${ATHENS_PROJECT:-athens}"
COMPOSE="$HERE/compose.yaml"
command -v curl >/dev/null 2>&1 || die "curl is not installed" "apt-get install curl"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT="${ATHENS_DEMO_PORT:-}"
if [ -z "$PORT" ]; then
    for p in $(seq 8080 8180); do
        if ! port_in_use "$p"; then
            PORT="$p"
            break
        fi
    done
    [ -n "$PORT" ] || die "no free port in 8080-8180" "set ATHENS_DEMO_PORT"
fi
URL="http://127.0.0.1:$PORT"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/athens-demo.XXXXXX")"
export CUTOVER_SOCKET="$WORK/cutover.sock"
DAEMON_PID=""
DEPLOYED=""
LOAD_PID=""

cleanup() {
    local rc=$?
    set +e
    if [ -n "$LOAD_PID" ]; then kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; fi
    if [ -n "$KEEP" ] && [ "$rc" -eq 0 ]; then
        step "kept running (--keep)"
        echo "athens answers on $URL; its daemon (pid $DAEMON_PID) keeps its socket and state in $WORK."
        echo "Stop both with:"
        echo "  CUTOVER_SOCKET=$CUTOVER_SOCKET $CUTOVER down -f $COMPOSE -p $PROJECT --volumes && kill $DAEMON_PID && rm -rf $WORK"
        exit 0
    fi
    if [ -n "$DEPLOYED" ] && [ -n "$DAEMON_PID" ]; then
        step "cutover down"
        "$CUTOVER" down -f "$COMPOSE" -p "$PROJECT" --volumes
    fi
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        if [ "$rc" -ne 0 ]; then
            printf '\n--- last lines of the daemon log (%s) ---\n' "$WORK/daemon.log" >&2
            tail -n 30 "$WORK/daemon.log" >&2
        fi
        kill -TERM "$DAEMON_PID"
        for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
    # Only a dockerd this script started is stopped.
    stop_dockerd
    exit "$rc"
}
trap cleanup EXIT

# Bold in a terminal; plain lines in CI logs and with NO_COLOR.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    step() { printf '\n==> %s\n' "$*"; }
fi
# The value of a top-level JSON field, without jq: enough for athens' flat answers.
field() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[0-9]*\).*/\1/p" | tr -d '"'; }

cat <<EOF
This demo installs what it runs if missing (Debian's docker.io, debootstrap,
curl; root and the Debian mirror needed), builds a Debian base image, the
example app and cutover, and deploys the app twice through a private cutover
daemon on $URL. A first run takes about 6 to 10 minutes and leaves about 470 MB of
images (cutover-base, athens, Redis); the project's containers, network and
volume are removed at the end.
EOF

# A fresh machine has neither the packages nor a running engine.
step "packages and Docker engine"
"$ROOT/scripts/deps.sh" demo
ensure_dockerd

step "build the images (build-local.sh)"
"$HERE/build-local.sh"

step "build cutover (cargo's progress below; a few minutes the first time)"
# Release, like the app: the dependencies they share are built once.
(cd "$ROOT" && cargo build --release -p cutover) || die "cargo could not build cutover"
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
CUTOVER="$target_dir/release/cutover"

step "cutover serve --listen 127.0.0.1:$PORT (state in $WORK)"
"$CUTOVER" serve --listen "127.0.0.1:$PORT" --state-dir "$WORK/state" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 100); do
    [ -S "$CUTOVER_SOCKET" ] && "$CUTOVER" status >/dev/null 2>&1 && break
    kill -0 "$DAEMON_PID" 2>/dev/null || die "cutover serve exited" "see $WORK/daemon.log above"
    sleep 0.2
done
"$CUTOVER" status >/dev/null || die "the daemon did not answer on $CUTOVER_SOCKET within 20s"

step "deploy athens 1.0.0"
DEPLOYED=1
APP_VERSION=1.0.0 "$CUTOVER" deploy -f "$COMPOSE" -p "$PROJECT" --version-label 1.0.0

step "three visits through the proxy"
for _ in 1 2 3; do curl -fsS "$URL/api/v1/visits"; echo; done
before="$(curl -fsS "$URL/api/v1/visits")"
echo "$before"
count_before="$(field count <<<"$before")"
instance_before="$(field instance <<<"$before")"

step "an OAuth login starts on 1.0.0"
location="$(curl -fsS -o /dev/null -w '%{redirect_url}' "$URL/api/v1/open/oauth/start")"
[ -n "$location" ] || die "/api/v1/open/oauth/start did not redirect"
echo "redirected to $location"

step "deploy athens 2.0.0 to the other color while a client calls /api/v1/visits"
# Bounded: at most 3000 requests, ending when the deploy is done.
(
    ok=0 failed=0
    for _ in $(seq 1 3000); do
        [ -e "$WORK/stop-load" ] && break
        if curl -fsS -o /dev/null --max-time 5 "$URL/api/v1/visits"; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
    done
    echo "$ok $failed" >"$WORK/load-result"
) &
LOAD_PID=$!
APP_VERSION=2.0.0 "$CUTOVER" deploy -f "$COMPOSE" -p "$PROJECT" --version-label 2.0.0
touch "$WORK/stop-load"
wait "$LOAD_PID"
LOAD_PID=""
read -r load_ok load_failed <"$WORK/load-result"
echo "requests during the deploy: $load_ok answered, $load_failed failed"

step "visits after the switch"
after="$(curl -fsS "$URL/api/v1/visits")"
echo "$after"

step "the OAuth callback lands on 2.0.0 with 1.0.0's state"
callback="$(curl -sS -w '\n%{http_code}' "$URL${location#"$URL"}")"
echo "$callback"
again="$(curl -sS -o /dev/null -w '%{http_code}' "$URL${location#"$URL"}")"
echo "the same state again: HTTP $again"

step "cutover status"
"$CUTOVER" status -f "$COMPOSE" -p "$PROJECT"

step "checks"
fail=0
check() {
    if [ "$1" = ok ]; then printf '  ok    %s\n' "$2"; else printf '  FAIL  %s\n' "$2"; fail=1; fi
}
[ "$(field version <<<"$after")" = 2.0.0 ] && r=ok || r=no
check "$r" "the proxy now serves 2.0.0"
[ "$(field instance <<<"$after")" != "$instance_before" ] && r=ok || r=no
check "$r" "a different container answers (the other color)"
[ "$(field count <<<"$after")" -gt "$((count_before + load_ok))" ] && r=ok || r=no
check "$r" "the visit count went on (Redis kept it)"
[ "$load_failed" -eq 0 ] && r=ok || r=no
check "$r" "no request failed during the deploy ($load_ok answered)"
[ "${callback##*$'\n'}" = 200 ] && r=ok || r=no
check "$r" "green accepted the OAuth state blue issued"
[ "$again" = 400 ] && r=ok || r=no
check "$r" "the state was single-use"
[ "$fail" -eq 0 ] || die "some checks failed (above)"
step "done: cleaning up"
