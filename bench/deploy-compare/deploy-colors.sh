#!/usr/bin/env bash
# Setups b–e of bench/deploy-compare.sh: the field report's final deploy.sh,
# step for step, with only the proxy switch differing per setup (CMP_PROXY):
#
#   caddy-restart  the report: write the new color's Caddyfile, restart Caddy
#   caddy-reload   the same with a graceful `caddy reload` (admin API)
#   nginx          rewrite the upstream, `nginx -s reload`
#   haproxy        rewrite the server, seamless reload (SIGUSR2 to the master)
#
# Run by cutover-loadtest (--deploy-cmd, through deploy-step.sh) with
# APP_VERSION set; LOADTEST_BROKEN=1 makes the health check curl a path
# athens answers 404 on, so this version never turns healthy (the same
# failure setup a gets). Everything else comes from bench/deploy-compare.sh:
# CMP_DIR (the compose files and .env), CMP_PROXY, WAS_NAME, PROJECT_NAME,
# APP_NETWORK, DOCKER_IMAGE, REDIS_IMAGE, BLUE_PORT, GREEN_PORT, PROXY_PORT,
# CADDY_ADMIN_PORT.
#
# Kept from the report on purpose, because it is what is measured: color
# detection by container name, `up -d` of the new color's file next to the
# base file, the health loop (10 tries; the container is Up, 2 s, curl of the
# container IP; else 2 s), the switch, then network disconnect / stop / rm of
# the old color right away, each `|| true`; a failed health check exits 1
# and leaves the new container running. Changed, for this machine only: no
# `docker-compose pull` (no registry; the images are local), names carry the
# setup prefix, curl is bounded (--max-time 2).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/deploy-compare/proxies.sh
. "$HERE/proxies.sh"

: "${CMP_DIR:?}" "${CMP_PROXY:?}" "${WAS_NAME:?}" "${PROJECT_NAME:?}" "${APP_NETWORK:?}"
: "${BLUE_PORT:?}" "${GREEN_PORT:?}" "${APP_VERSION:?}" "${DOCKER_IMAGE:?}" "${REDIS_IMAGE:?}"
export APP_NETWORK WAS_NAME DOCKER_IMAGE REDIS_IMAGE BLUE_PORT GREEN_PORT APP_VERSION
cd "$CMP_DIR" || exit 2

COMPOSE_BIN="docker-compose"
MAX_RETRIES=10
HEALTH_PATH=/api/v1/open/health-check
if [ "${LOADTEST_BROKEN:-}" = 1 ]; then HEALTH_PATH=/api/v1/open/no-such-health-check; fi

# Step 1: the network, when missing.
if ! docker network inspect "$APP_NETWORK" >/dev/null 2>&1; then
    docker network create --label "cmp.setup=$PROJECT_NAME" "$APP_NETWORK"
fi

check_execute_was() {
    docker ps --filter "name=$WAS_NAME-${NEW_COLOR}" --format "{{.Status}}" | grep -q "^Up"
}

check_api_status() {
    local inspect
    inspect=$(docker inspect "$WAS_NAME-${NEW_COLOR}" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
    local endpoint="http://$inspect:8080$HEALTH_PATH"
    curl -s --max-time 2 -o /dev/null -w "%{http_code}" "$endpoint" | grep -q '^200'
}

# Step 2: the running color, from the container names (the report's cut -d-
# -f2 with WAS_NAME=athens; here the prefix has dashes, so it is stripped).
# More than one color running gives a two-line value, as in the report.
CURRENT_COLOR=$(docker ps --filter "name=$WAS_NAME" --format "{{.Names}}" | grep -E 'blue|green' | sed "s/^$WAS_NAME-//")

if [ -z "$CURRENT_COLOR" ]; then
    NEW_COLOR="blue"
else
    NEW_COLOR=$([ "$CURRENT_COLOR" = "blue" ] && echo "green" || echo "blue")
fi

# Step 3.
echo "Deploying new version: $NEW_COLOR ($APP_VERSION)"
$COMPOSE_BIN -p "$PROJECT_NAME" -f docker-compose.yml -f "docker-compose.${NEW_COLOR}.yml" up -d

# Step 4: up to 10 tries.
attempts=0
while [ $attempts -lt $MAX_RETRIES ]; do
    if check_execute_was; then
        sleep 2
        if check_api_status; then
            echo "New version is up and healthy"
            break
        fi
    fi
    attempts=$((attempts + 1))
    sleep 2
done

# Step 5: the new container stays behind.
if [ $attempts -ge $MAX_RETRIES ]; then
    echo "Failed to deploy new version"
    exit 1
fi

# Step 6: mntbg / mntdg, then mntms.
if [ "$NEW_COLOR" = "blue" ]; then
    echo "mb"
    NEW_PORT=$BLUE_PORT
else
    echo "mg"
    NEW_PORT=$GREEN_PORT
fi
proxy_switch "$NEW_PORT" || echo "The proxy switch failed"

# Step 7: the old color, right after the switch.
if [ -n "$CURRENT_COLOR" ]; then
    echo "Removing old version: $CURRENT_COLOR"
    # Unquoted as in the report: two colors running split into two words.
    # shellcheck disable=SC2086
    docker network disconnect "$APP_NETWORK" ${WAS_NAME}-${CURRENT_COLOR} || true
    # shellcheck disable=SC2086
    docker stop ${WAS_NAME}-${CURRENT_COLOR} || echo "Failed to stop container"
    # shellcheck disable=SC2086
    docker rm -f ${WAS_NAME}-${CURRENT_COLOR} || echo "Failed to remove container"
fi

echo "Deployment completed successfully."
