#!/usr/bin/env bash
# A Docker Swarm of several engines on this one machine, for the multi-node
# tests (#15): each node is Debian's dockerd in a container of
# cutover-test-swarm-node (scripts/images.sh swarm-node), with its own
# engine state (a volume), its own address on the swarm's bridge network,
# and its API on a Unix socket in a directory of the host.
#
#   scripts/swarm.sh up NAME [NODES [MANAGERS]]
#                                        NODES engines (default 3), the first
#                                        MANAGERS (default 1) of them managers:
#                                        NAME-n1 starts the swarm, the others
#                                        join as managers, then as workers
#   scripts/swarm.sh load NAME IMAGE...  copies local images into every node
#                                        (no registry is reachable)
#   scripts/swarm.sh sockets NAME        one line per node: NODE SOCKET ADDRESS
#   scripts/swarm.sh down NAME           removes the nodes, their volumes, the
#                                        network and the socket directory
#
# NAME keeps runs apart on a shared engine: everything `up` creates carries
# the label cutover.swarm=NAME, and `down` removes only what carries it.
# The sockets are under $CUTOVER_SWARM_DIR (default /tmp/cutover-swarm)/NAME.
# $CUTOVER_SWARM_DIR/NAME/shared is every node's /srv/cutover: one folder
# all nodes see, as an NFS mount would be (the shared certificate storage
# of dist/swarm/https.yml is its certificates/).
#
# Why not `--privileged`: on some machines (this project's VMs among them)
# the engine's own bounding set lacks CAP_SYS_RESOURCE, and runc refuses a
# privileged container ("unable to apply caps"). A node gets every other
# capability, unconfined seccomp, AppArmor and /proc, and the host's cgroup
# hierarchy, which its dockerd needs to create containers; each node's
# containers go under a cgroup parent of their own (the image's entrypoint).
# Tested on a cgroup v1 host.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SWARM_DIR="${CUTOVER_SWARM_DIR:-/tmp/cutover-swarm}"

CAPS=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
    SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE
    MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ)

usage() {
    die "usage: scripts/swarm.sh up NAME [NODES [MANAGERS]] | load NAME IMAGE... | sockets NAME | down NAME" \
        "see the comment at the top of scripts/swarm.sh"
}

valid_name() {
    [[ "$1" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] ||
        die "swarm name '$1' is not valid" "use up to 31 lowercase letters, digits and dashes"
}

nodes_of() {
    docker ps -a --filter "label=cutover.swarm=$1" --format '{{.Names}}' | sort
}

# node_socket NAME NODE: the host path of a node's API socket.
node_socket() { echo "$SWARM_DIR/$1/${2#"$1"-}/docker.sock"; }

node_ip() {
    docker inspect -f "{{(index .NetworkSettings.Networks \"$1-net\").IPAddress}}" "$2"
}

# inner NAME NODE ARGS...: the docker CLI against one node's engine.
inner() {
    local name="$1" node="$2"
    shift 2
    docker -H "unix://$(node_socket "$name" "$node")" "$@"
}

up() {
    local name="$1" count="${2:-3}" managers="${3:-1}"
    valid_name "$name"
    [[ "$count" =~ ^[1-9]$ ]] || die "NODES must be 1 to 9, not '$count'" "three is what the tests use"
    if ! [[ "$managers" =~ ^[1-9]$ ]] || [ "$managers" -gt "$count" ]; then
        die "MANAGERS must be 1 to NODES ($count), not '$managers'" "an odd count keeps a raft majority: 1 or 3"
    fi
    [ -z "$(nodes_of "$name")" ] ||
        die "a swarm named '$name' exists already" "run 'scripts/swarm.sh down $name' first"
    "$CUTOVER_ROOT/scripts/images.sh" swarm-node
    # A swarm that did not come up whole is not left behind. The name is
    # expanded now (it is checked to be [a-z0-9-]): the trap runs after
    # this function's locals are gone.
    # shellcheck disable=SC2064
    trap "down $name >/dev/null 2>&1" EXIT
    local caps=() c
    for c in "${CAPS[@]}"; do caps+=(--cap-add "$c"); done
    docker network create --label "cutover.swarm=$name" "$name-net" >/dev/null
    local i
    mkdir -p "$SWARM_DIR/$name/shared/certificates"
    for i in $(seq 1 "$count"); do
        mkdir -p "$SWARM_DIR/$name/n$i"
        docker run -d --name "$name-n$i" --hostname "$name-n$i" --network "$name-net" \
            --label "cutover.swarm=$name" "${caps[@]}" \
            --security-opt apparmor=unconfined --security-opt seccomp=unconfined \
            --security-opt systempaths=unconfined \
            -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$SWARM_DIR/$name/n$i:/cutover" \
            -v "$SWARM_DIR/$name/shared:/srv/cutover" \
            --tmpfs /run "$SWARM_NODE_IMAGE" --host=unix:///cutover/docker.sock >/dev/null
    done
    for i in $(seq 1 "$count"); do
        local deadline=$((SECONDS + 60))
        until inner "$name" "$name-n$i" info >/dev/null 2>&1; do
            [ "$SECONDS" -lt "$deadline" ] ||
                die "the engine of $name-n$i did not answer in 60 s" "see 'docker logs $name-n$i'"
            sleep 0.5
        done
    done
    local manager_ip token role
    manager_ip="$(node_ip "$name" "$name-n1")"
    inner "$name" "$name-n1" swarm init --advertise-addr "$manager_ip" >/dev/null
    for i in $(seq 2 "$count"); do
        role=worker
        [ "$i" -gt "$managers" ] || role=manager
        token="$(inner "$name" "$name-n1" swarm join-token -q "$role")"
        inner "$name" "$name-n$i" swarm join --advertise-addr "$(node_ip "$name" "$name-n$i")" \
            --token "$token" "$manager_ip:2377" >/dev/null
    done
    trap - EXIT
    log "swarm: $name is up: $count nodes, $managers managers, $name-n1 at $manager_ip"
    sockets "$name"
}

load() {
    local name="$1" node nodes
    shift
    [ $# -gt 0 ] || usage
    mapfile -t nodes < <(nodes_of "$name")
    [ ${#nodes[@]} -gt 0 ] || die "no swarm named '$name'" "start one with 'scripts/swarm.sh up $name'"
    local archive
    archive="$(mktemp "${TMPDIR:-/tmp}/cutover-swarm-images.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -f '$archive'" EXIT
    docker save "$@" -o "$archive"
    for node in "${nodes[@]}"; do
        inner "$name" "$node" load -q -i /dev/stdin <"$archive" >/dev/null
    done
    rm -f "$archive"
    log "swarm: loaded $* into ${#nodes[@]} nodes of $name"
}

sockets() {
    local name="$1" node
    for node in $(nodes_of "$name"); do
        echo "$node $(node_socket "$name" "$node") $(node_ip "$name" "$node")"
    done
}

down() {
    local name="$1" node
    valid_name "$name"
    for node in $(nodes_of "$name"); do
        docker rm -f -v "$node" >/dev/null
    done
    docker network ls -q --filter "label=cutover.swarm=$name" | while read -r net; do
        docker network rm "$net" >/dev/null
    done
    rm -rf "${SWARM_DIR:?}/$name"
    # The nodes' containers died with them; their cgroups stay behind, empty.
    find /sys/fs/cgroup -maxdepth 2 -type d -name "cutover-swarm-$name-n*" 2>/dev/null |
        while read -r dir; do find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
    log "swarm: $name is down"
}

[ $# -ge 2 ] || usage
command="$1"
shift
case "$command" in
up) up "$@" ;;
load) load "$@" ;;
sockets) sockets "$1" ;;
down) down "$1" ;;
*) usage ;;
esac
