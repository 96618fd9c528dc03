#!/usr/bin/env bash
# Runs docs/quickstart.md as it is written: every ```sh block that follows a
# `<!-- quickstart -->` line, in order, in one shell, from a temporary folder
# that holds a link to this clone (the page's `cutover/`), then checks what
# the page says its curls answer.
#
#   scripts/quickstart.sh        (as root; scripts/test.sh runs it)
#
# What the page cannot say for CI: the daemon's socket and state go to the
# temporary folder (CUTOVER_SOCKET, CUTOVER_STATE_DIR), and the app builds
# from the local Debian base (BASE=cutover-base:bookworm), since no registry
# is reachable. It installs cutover into /usr/local as the page does.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "scripts/quickstart.sh runs as root" "rerun it with sudo"
page="$CUTOVER_ROOT/docs/quickstart.md"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use 8080 && die "port 8080 on 127.0.0.1 is taken; the quickstart's daemon listens there" \
    "stop what listens there (ss -ltnp 'sport = :8080') and rerun"

work="$(mktemp -d "${TMPDIR:-/tmp}/cutover-quickstart.XXXXXX")"
ln -s "$CUTOVER_ROOT" "$work/cutover"
export CUTOVER_SOCKET="$work/cutover.sock" CUTOVER_STATE_DIR="$work/state" BASE="$BASE_IMAGE"

cleanup() {
    local rc=$?
    set +e
    # After a failure midway: the project and the daemon the page started.
    if [ -S "$CUTOVER_SOCKET" ]; then
        (cd "$work/hello" 2>/dev/null && cutover down >/dev/null 2>&1)
    fi
    pkill -f "cutover serve --listen 127.0.0.1:8080" 2>/dev/null
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

"$CUTOVER_ROOT/scripts/images.sh" base

script="$work/page.sh"
{
    echo 'set -euo pipefail'
    # Root already: the page's sudo keeps this environment.
    echo 'sudo() { "$@"; }'
    awk '
        /^<!-- quickstart -->$/ { armed = 1; next }
        armed && /^```sh$/ { inside = 1; armed = 0; next }
        inside && /^```$/ { inside = 0; print ""; next }
        inside { print }
    ' "$page"
} >"$script"
[ "$(grep -c . "$script")" -gt 10 ] || die "found no quickstart blocks in $page"

log "quickstart: running the commands of docs/quickstart.md in $work"
out="$work/output.log"
(cd "$work" && bash -x "$script") 2>&1 | tee "$out" ||
    die "a command of docs/quickstart.md failed (above)"

# The page's three curls, in order: the first version, the .env edit, the rollback.
answers="$(grep '^hello, ' "$out" | tr '\n' ' ')"
[ "$answers" = "hello, hello hello, bonjour hello, hello " ] ||
    die "the quickstart's curls answered '$answers'" "expected hello, hello / hello, bonjour / hello, hello"
log "quickstart: ok: deployed, rolled out the .env edit, rolled back ($answers)"
