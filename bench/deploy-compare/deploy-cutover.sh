#!/usr/bin/env bash
# Setup a of bench/deploy-compare.sh: one `cutover deploy`, run by
# cutover-loadtest (--deploy-cmd, through deploy-step.sh) with APP_VERSION
# set. LOADTEST_BROKEN=1 deploys broken.yaml instead: the same app with a
# health path athens answers 404 on and a short deploy_timeout, so the new
# color never turns healthy and the deploy must fail, leaving the old one.
# From bench/deploy-compare.sh: CMP_DIR (compose.yaml, broken.yaml, .env),
# CUTOVER_BIN, CUTOVER_SOCKET, PROJECT_NAME.
set -euo pipefail
: "${CMP_DIR:?}" "${CUTOVER_BIN:?}" "${CUTOVER_SOCKET:?}" "${PROJECT_NAME:?}" "${APP_VERSION:?}"
export CUTOVER_SOCKET APP_VERSION
file="$CMP_DIR/compose.yaml"
if [ "${LOADTEST_BROKEN:-}" = 1 ]; then file="$CMP_DIR/broken.yaml"; fi
exec "$CUTOVER_BIN" deploy -f "$file" -p "$PROJECT_NAME"
