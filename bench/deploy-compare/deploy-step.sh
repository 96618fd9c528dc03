#!/usr/bin/env bash
# One deploy of bench/deploy-compare.sh, as cutover-loadtest runs it
# (--deploy-cmd): the setup's deploy script, bounded in time, its output
# appended to CMP_DIR/deploys.log, and for the broken deploy
# (LOADTEST_BROKEN=1) the containers it left behind written to
# CMP_DIR/debris.txt: those of the setup's project that exist after it and
# did not before, by ID (cutover renames the old color it keeps for
# rollback: same container, not debris).
#
#   deploy-step.sh SCRIPT       (SCRIPT: deploy-cutover.sh or deploy-colors.sh)
#
# From bench/deploy-compare.sh: CMP_DIR, CMP_LABEL (the label filter that
# finds the project's containers), CMP_DEPLOY_TIMEOUT (seconds).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${CMP_DIR:?}" "${CMP_LABEL:?}" "${CMP_DEPLOY_TIMEOUT:?}"
script="$HERE/$1"

containers() { docker ps -a --no-trunc --filter "label=$CMP_LABEL" --format '{{.ID}}' | sort; }

before="$(containers)"
{
    printf '\n=== %s deploy %s (%s)%s\n' "$(date -u +%H:%M:%S.%N | cut -c1-12)" \
        "${LOADTEST_DEPLOY:-?}" "${APP_VERSION:-?}" "$([ "${LOADTEST_BROKEN:-}" = 1 ] && echo ', broken')"
} >>"$CMP_DIR/deploys.log"
# A hung deploy must not hold the run: the harness waits for every deploy
# it started. timeout runs the script in a process group of its own, so a
# stop of the harness (SIGTERM to this script's group) is passed on to it:
# timeout hands the signal to the whole script, docker-compose included.
timeout --kill-after=10 "$CMP_DEPLOY_TIMEOUT" "$script" >>"$CMP_DIR/deploys.log" 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid"
code=$?
# A trapped signal ends `wait` early; the script's own exit comes later.
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid"
    code=$?
done
printf '=== %s exit %s\n' "$(date -u +%H:%M:%S.%N | cut -c1-12)" "$code" >>"$CMP_DIR/deploys.log"
if [ "${LOADTEST_BROKEN:-}" = 1 ]; then
    : >"$CMP_DIR/debris.txt"
    for id in $(comm -13 <(printf '%s\n' "$before") <(containers)); do
        docker inspect --format '{{slice .Name 1}} ({{.State.Status}})' "$id" >>"$CMP_DIR/debris.txt" 2>/dev/null || true
    done
fi
exit "$code"
