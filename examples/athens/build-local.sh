#!/usr/bin/env bash
# Builds the athens image on this machine without pulling anything:
#
#   examples/athens/build-local.sh
#
# 1. the base image (cutover-base:bookworm) and the Redis image
#    (cutover-test-redis) with scripts/images.sh, from a cached debootstrap;
# 2. the athens binary: cargo build --release -p athens;
# 3. athens:local and athens:<version> from Dockerfile.local (COPY only);
# 4. examples/athens/.env pointing the compose file at those two images.
#
# Safe to rerun; each step reuses what is already there. ATHENS_VERSION sets
# the second tag (default: git describe).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../scripts/lib.sh
. "$ROOT/scripts/lib.sh"

command -v docker >/dev/null 2>&1 ||
    die "the docker CLI is not installed" "run scripts/deps.sh, or install docker.io"
docker_reachable || die "no Docker engine is reachable" \
    "start dockerd (e.g. sudo systemctl start docker) and rerun"

"$ROOT/scripts/images.sh" redis # builds the base first when it is missing

log "athens: cargo build --release -p athens"
(cd "$ROOT" && cargo build --release -p athens) ||
    die "cargo could not build athens" "see the cargo output above"
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
bin="$target_dir/release/athens"
[ -x "$bin" ] || die "cargo built athens but $bin is missing" \
    "set CARGO_TARGET_DIR to the target directory cargo uses"

version="${ATHENS_VERSION:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)}"
# A Docker tag allows [A-Za-z0-9_.-], up to 128 characters.
tag="$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-' | cut -c1-128)"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$HERE/Dockerfile.local" "$bin" "$ctx/"
log "athens: docker build athens:local athens:$tag"
# --network none: nothing in Dockerfile.local needs the network, and a
# dockerd without a default bridge cannot give a build one anyway.
if ! out="$(docker build -q --network none -f "$ctx/Dockerfile.local" \
    --build-arg "BASE=$BASE_IMAGE" --build-arg "VERSION=$version" \
    -t athens:local -t "athens:$tag" "$ctx" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "docker build of athens:local failed (output above)" \
        "check that $BASE_IMAGE exists: docker image inspect $BASE_IMAGE"
fi
log "athens: athens:local is ${out##*:}"

# Only a .env this script wrote is rewritten; a user's own is left alone.
marker="# Written by examples/athens/build-local.sh"
envfile="$HERE/.env"
if [ ! -e "$envfile" ] || head -n 1 "$envfile" | grep -qxF "$marker"; then
    cat >"$envfile" <<ENV
$marker
# The images it built, read by cutover when it loads compose.yaml
# (interpolation only: nothing here reaches a container's environment).
ATHENS_IMAGE=athens:local
REDIS_IMAGE=$REDIS_IMAGE
ENV
    log "athens: wrote $envfile (ATHENS_IMAGE=athens:local, REDIS_IMAGE=$REDIS_IMAGE)"
else
    log "athens: $envfile exists and was not written by this script; left alone"
    log "athens: deploy with ATHENS_IMAGE=athens:local REDIS_IMAGE=$REDIS_IMAGE in the environment"
fi
