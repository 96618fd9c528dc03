#!/usr/bin/env bash
# Installs cutover on this host from this checkout. Idempotent: run it again
# after a `git pull` to upgrade; a file that did not change is not written.
#
#   sudo scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-system]
#
# 1. the binary: `cargo install --locked --path crates/cutover --root PREFIX`
#    (PREFIX/bin/cutover, PREFIX defaults to /usr/local). With
#    CUTOVER_BINARY=FILE, that file is installed instead of building one.
# 2. the man page and the bash, zsh and fish completions, which the binary
#    generates from its own argument definitions;
# 3. unless --no-system: the `cutover` system user and group (members of the
#    group may use the control socket, so deploy), the user's membership of
#    `docker` when that group exists, and the systemd unit
#    (dist/cutover.service) in /etc/systemd/system. The service is neither
#    enabled nor started: `systemctl enable --now cutover` does that, and
#    `systemctl reload cutover` moves a running daemon to a new binary
#    without an outage (dist/README.md).
#
# --destdir DIR puts every file under DIR instead of / (packaging, tests).
# Needs cargo (Rust 1.89 or newer, from rustup) unless CUTOVER_BINARY is set.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prefix=/usr/local
destdir=""
system=1
while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --destdir) destdir="${2:?--destdir needs a folder}"; shift 2 ;;
    --no-system) system=""; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1'" "see scripts/install.sh --help" ;;
    esac
done
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path, not '$prefix'" ;; esac

changed=()
unchanged=0

# Writes stdin to DEST (under destdir) with MODE, only when it differs.
put() {
    local dest="$destdir$1" mode="$2" tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
        unchanged=$((unchanged + 1))
        rm -f "$tmp"
        return
    fi
    as_root install -D -m "$mode" "$tmp" "$dest"
    rm -f "$tmp"
    changed+=("$1")
}

# 1. The binary.
bin="$prefix/bin/cutover"
if [ -n "${CUTOVER_BINARY:-}" ]; then
    [ -x "$CUTOVER_BINARY" ] || die "CUTOVER_BINARY=$CUTOVER_BINARY is not an executable file"
    built="$CUTOVER_BINARY"
else
    command -v cargo >/dev/null 2>&1 ||
        die "cargo is not installed" "install Rust 1.89 or newer (https://rustup.rs; Debian bookworm's cargo is too old), or set CUTOVER_BINARY to a built cutover"
    staging="$(mktemp -d)"
    trap 'rm -rf "$staging"' EXIT
    log "install: cargo install --locked --path crates/cutover (a few minutes the first time)"
    # Into a staging root, so an unchanged binary is not rewritten; with
    # --path, cargo builds in this workspace's target/, reusing its release
    # build.
    (cd "$CUTOVER_ROOT" && cargo install --locked --path crates/cutover --root "$staging") ||
        die "cargo install failed" "see cargo's message above"
    built="$staging/bin/cutover"
fi
put "$bin" 0755 <"$built"

# What `cutover ARGS...` prints, put at DEST (not in a pipeline: put must
# run in this shell to count).
generated() {
    local dest="$1" out
    shift
    out="$(mktemp)"
    "$built" "$@" >"$out" || die "\`cutover $*\` failed"
    put "$dest" 0644 <"$out"
    rm -f "$out"
}

# 2. Man page and completions, from the binary just installed.
generated "$prefix/share/man/man1/cutover.1" man
generated "$prefix/share/bash-completion/completions/cutover" completions bash
generated "$prefix/share/zsh/site-functions/_cutover" completions zsh
generated "$prefix/share/fish/vendor_completions.d/cutover.fish" completions fish

# 3. The system user, groups and the systemd unit.
if [ -n "$system" ]; then
    if [ -z "$destdir" ]; then
        if ! getent group cutover >/dev/null; then
            as_root groupadd --system cutover
            changed+=("group cutover")
        fi
        if ! getent passwd cutover >/dev/null; then
            as_root useradd --system --gid cutover --no-create-home --shell /usr/sbin/nologin cutover
            changed+=("user cutover")
        fi
        if getent group docker >/dev/null && ! id -nG cutover | tr ' ' '\n' | grep -qx docker; then
            as_root usermod -aG docker cutover
            changed+=("cutover in group docker")
        fi
    fi
    put /etc/systemd/system/cutover.service 0644 < <(sed "s|/usr/local/bin/cutover|$bin|g" "$CUTOVER_ROOT/dist/cutover.service")
    if [ -z "$destdir" ] && [ -d /run/systemd/system ] && [ ${#changed[@]} -gt 0 ]; then
        as_root systemctl daemon-reload
    fi
fi

if [ ${#changed[@]} -eq 0 ]; then
    log "install: nothing to do, all $unchanged files are up to date"
else
    log "install: updated ${changed[*]} ($unchanged files unchanged)"
fi
if [ -n "$system" ] && [ -z "$destdir" ]; then
    log "install: start the daemon with \`systemctl enable --now cutover\` (a running one: \`systemctl reload cutover\`); let a user deploy with \`usermod -aG cutover USER\`"
fi
