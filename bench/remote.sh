#!/usr/bin/env bash
# What a client command costs over each transport (docs/remote.md): the
# wall time of `cutover history -p bench` (one request) and of `cutover
# status` (three requests on one connection) against one daemon, through
# the Unix socket, through a real sshd on loopback (`ssh://`, a new ssh
# connection per command, as a CI step makes), and through the TLS control
# listener with a token (`https://`).
#
#   bench/remote.sh [REPS]        # default 30 runs of each command per transport
#
# Needs root (sshd lets the test key in as this user), openssh-server and a
# release build (`cargo build --release -p cutover`). Loopback only; every
# loop is bounded by REPS.
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
trap bench_cleanup EXIT

REPS="${1:-30}"
CONTROL_PORT=$(port 30)
SSH_PORT=$(port 31)
check_ports_free "$CONTROL_PORT" "$SSH_PORT"
[ -x "$CUTOVER_BIN" ] || die "$CUTOVER_BIN does not exist" "build it with cargo build --release -p cutover"
[ -x /usr/sbin/sshd ] || die "sshd is not installed" "scripts/deps.sh bench installs openssh-server"

# 1. The daemon, with the TLS control listener.
dir="$BENCH_DIR/cutover"
mkdir -p "$dir/state"
"$CUTOVER_BIN" serve --listen "127.0.0.1:$(port 32)" --socket "$dir/cutover.sock" \
    --state-dir "$dir/state" --control-listen "127.0.0.1:$CONTROL_PORT" --no-access-log \
    >"$dir/serve.log" 2>&1 &
BENCH_PIDS+=($!)
deadline=$((SECONDS + 10))
until [ -S "$dir/cutover.sock" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
[ -S "$dir/cutover.sock" ] || die "cutover serve did not start: $(tail -n 3 "$dir/serve.log")"
token="$("$CUTOVER_BIN" --socket "$dir/cutover.sock" token create --scope read 2>/dev/null)"
fingerprint="$(openssl x509 -noout -fingerprint -sha256 -in "$dir/state/control-tls/cert.pem" | cut -d= -f2)"

# 2. sshd on loopback, with keys made here, running `cutover` from the build.
ssh_dir="$BENCH_DIR/ssh"
mkdir -p "$ssh_dir" /run/sshd
for key in host_key client_key; do ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/$key"; done
cp "$ssh_dir/client_key.pub" "$ssh_dir/authorized_keys"
cat >"$ssh_dir/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $ssh_dir/host_key
PidFile $ssh_dir/sshd.pid
AuthorizedKeysFile $ssh_dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
SetEnv PATH=$(dirname "$CUTOVER_BIN"):/usr/bin:/bin
CONF
/usr/sbin/sshd -D -e -f "$ssh_dir/sshd_config" 2>"$ssh_dir/sshd.log" &
BENCH_PIDS+=($!)
deadline=$((SECONDS + 10))
until ! port_free "$SSH_PORT" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
echo "[127.0.0.1]:$SSH_PORT $(cat "$ssh_dir/host_key.pub")" >"$ssh_dir/known_hosts"
export CUTOVER_SSH_COMMAND="ssh -F /dev/null -i $ssh_dir/client_key -o IdentitiesOnly=yes -o UserKnownHostsFile=$ssh_dir/known_hosts -o StrictHostKeyChecking=yes"
export CUTOVER_CONFIG_DIR="$BENCH_DIR/config"

declare -A HOSTS=(
    [unix]="unix://$dir/cutover.sock"
    [ssh]="ssh://$(id -un)@127.0.0.1:$SSH_PORT$dir/cutover.sock"
    [https]="https://127.0.0.1:$CONTROL_PORT"
)

# run TRANSPORT HOST ARGS...: one timed command, in ms, into the results.
RESULTS="$BENCH_DIR/results"
: >"$RESULTS"
run() {
    local transport="$1" host="$2" what="$3"
    shift 3
    local start end
    start=$(date +%s%N)
    CUTOVER_TOKEN="$token" CUTOVER_TLS_FINGERPRINT="$fingerprint" \
        "$CUTOVER_BIN" --host "$host" "$@" >/dev/null ||
        die "cutover --host $host $* failed"
    end=$(date +%s%N)
    record "$transport" "$what" "$(((end - start) / 1000))"
}

# Interleaved, so a change in the machine's load touches every transport alike.
for _ in $(seq "$REPS"); do
    for t in unix ssh https; do
        run "$t" "${HOSTS[$t]}" history history -p bench --json
        run "$t" "${HOSTS[$t]}" status status --json
    done
done

p90() {
    awk -v p="$1" -v m="$2" '$1 == p && $2 == m {print $3}' "$RESULTS" | sort -g |
        awk '{v[NR] = $1} END {if (NR == 0) exit; i = int(NR * 0.9); if (i < 1) i = 1; print v[i]}'
}
ms() { awk -v v="$1" 'BEGIN {printf "%.1f ms", v / 1000}'; }

echo "# bench/remote.sh: $REPS runs of each command per transport"
machine_summary
echo
echo "| transport | history (1 request), median | p90 | vs unix | status (3 requests), median | p90 | vs unix |"
echo "|---|---|---|---|---|---|---|"
for t in unix ssh https; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" \
        "$(ms "$(median "$t" history)")" "$(ms "$(p90 "$t" history)")" \
        "$(fmt_ratio "$(median "$t" history)" "$(median unix history)")" \
        "$(ms "$(median "$t" status)")" "$(ms "$(p90 "$t" status)")" \
        "$(fmt_ratio "$(median "$t" status)" "$(median unix status)")"
done
