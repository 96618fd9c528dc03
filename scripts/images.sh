#!/usr/bin/env bash
# Builds the local Docker images the integration tests use. Nothing is pulled
# from a registry: the base is a debootstrap of Debian bookworm, imported.
#
#   scripts/images.sh [all]    base, redis, nginx, origin and swarm-node
#   scripts/images.sh base     cutover-base:bookworm only
#   scripts/images.sh redis    cutover-test-redis (redis-server from Debian)
#   scripts/images.sh nginx    cutover-test-nginx (nginx from Debian)
#   scripts/images.sh origin   cutover-test-origin (the cutover-origin test binary)
#   scripts/images.sh swarm-node  cutover-test-swarm-node (Debian's docker.io, for scripts/swarm.sh)
#
# Needs a reachable Docker engine (scripts/test.sh starts one if needed).
# Creating the base the first time needs root and a few minutes; the
# debootstrap tarball is cached in $XDG_CACHE_HOME/cutover (~/.cache/cutover).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIRROR="${CUTOVER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_TARBALL="$CUTOVER_CACHE/bookworm-minbase.tar.gz"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

BASE_CHECKED=""
build_base() {
    [ -z "$BASE_CHECKED" ] || return 0
    BASE_CHECKED=1
    if image_exists "$BASE_IMAGE"; then
        log "images: $BASE_IMAGE exists"
        return 0
    fi
    mkdir -p "$CUTOVER_CACHE"
    # Tests running in parallel may all find the base missing; one builds it,
    # the others wait and then find it.
    exec 9>"$CUTOVER_CACHE/base.lock"
    flock -w 1800 9 || die "waited 30 min for another build of $BASE_IMAGE" \
        "remove $CUTOVER_CACHE/base.lock if no build is running"
    if image_exists "$BASE_IMAGE"; then
        log "images: $BASE_IMAGE was built meanwhile"
        exec 9>&-
        return 0
    fi
    if [ ! -s "$BASE_TARBALL" ]; then
        command -v debootstrap >/dev/null 2>&1 ||
            die "debootstrap is not installed, needed to create $BASE_IMAGE" "run scripts/deps.sh"
        [ "$(id -u)" -eq 0 ] ||
            die "creating $BASE_IMAGE runs debootstrap, which needs root" \
                "run 'sudo scripts/images.sh base' once; later runs reuse $BASE_TARBALL"
        local work
        work="$(mktemp -d "${TMPDIR:-/var/tmp}/cutover-debootstrap.XXXXXX")"
        # The trap would be lost when this function returns, so clean up explicitly.
        log "images: debootstrap bookworm (minbase) from $MIRROR, a few minutes"
        if ! debootstrap --variant=minbase bookworm "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
            tail -n 30 "$work/debootstrap.log" >&2 || true
            rm -rf "$work"
            die "debootstrap failed (last lines above)" "check that $MIRROR is reachable"
        fi
        # Downloaded .debs and package lists are not needed in the image: a build
        # that installs packages runs apt-get update itself.
        tar --numeric-owner -C "$work/root" \
            --exclude='./var/cache/apt/archives/*.deb' \
            --exclude='./var/lib/apt/lists/*_*' \
            -czf "$work/base.tar.gz" .
        # Rename, so an interrupted run never leaves a truncated cache.
        mv "$work/base.tar.gz" "$BASE_TARBALL.tmp.$$"
        mv "$BASE_TARBALL.tmp.$$" "$BASE_TARBALL"
        rm -rf "$work"
        log "images: cached $BASE_TARBALL"
    else
        log "images: using cached $BASE_TARBALL"
    fi
    docker import --change 'CMD ["/bin/bash"]' "$BASE_TARBALL" "$BASE_IMAGE" >/dev/null ||
        die "docker import of $BASE_TARBALL failed" "delete the tarball to recreate it"
    exec 9>&-
    log "images: imported $BASE_IMAGE"
}

docker_build() {
    local tag="$1" context="$2"
    log "images: building $tag"
    local out
    if ! out="$(docker build -q -t "$tag" "$context" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "docker build of $tag failed (output above)" \
            "rerun 'docker build -t $tag $context' to see every step"
    fi
    log "images: $tag is ${out##*:}"
}

build_redis() {
    build_base
    docker_build "$REDIS_IMAGE" "$CUTOVER_ROOT/scripts/images/redis"
}

build_nginx() {
    build_base
    docker_build "$NGINX_IMAGE" "$CUTOVER_ROOT/scripts/images/nginx"
}

build_swarm_node() {
    build_base
    docker_build "$SWARM_NODE_IMAGE" "$CUTOVER_ROOT/scripts/images/swarm-node"
}

build_origin() {
    build_base
    log "images: cargo build -p cutover-test --bin cutover-origin"
    (cd "$CUTOVER_ROOT" && cargo build -q -p cutover-test --bin cutover-origin) ||
        die "could not build the cutover-origin binary" "see the cargo output above"
    local bin="${CARGO_TARGET_DIR:-$CUTOVER_ROOT/target}/debug/cutover-origin"
    [ -x "$bin" ] || die "cargo built cutover-origin but $bin is missing" \
        "set CARGO_TARGET_DIR to the target directory cargo uses"
    # A small context: the Dockerfile and the binary, not the whole workspace.
    ORIGIN_CTX="$(mktemp -d)"
    cp "$CUTOVER_ROOT/scripts/images/origin/Dockerfile" "$bin" "$ORIGIN_CTX/"
    docker_build "$ORIGIN_IMAGE" "$ORIGIN_CTX"
}

ORIGIN_CTX=""
trap 'if [ -n "$ORIGIN_CTX" ]; then rm -rf "$ORIGIN_CTX"; fi' EXIT

docker_reachable || die "no Docker engine is reachable" \
    "start dockerd, or run scripts/test.sh, which starts one when needed"

case "${1:-all}" in
base) build_base ;;
redis) build_redis ;;
nginx) build_nginx ;;
origin) build_origin ;;
swarm-node) build_swarm_node ;;
all)
    build_base
    build_redis
    build_nginx
    build_origin
    build_swarm_node
    ;;
*) die "unknown image '$1'" "use one of: base, redis, nginx, origin, swarm-node, all" ;;
esac
