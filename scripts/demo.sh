#!/usr/bin/env bash
# Install everything and run the portal with demo data: SQLite, the local libvirtd, and Redis
# (the worker pushes progress to the browser across processes through it, and it is the
# task broker). An admin account, the local host, the demo appliances and their feed are
# created once; run again, it reuses what exists.
#
# Stopping: Ctrl-C, a TERM to this script, or a TERM to its whole process group (what a service
# manager or `kill -- -PGID` sends) all end the web server and the worker within seconds.
source "$(dirname "$0")/lib.sh"

install_system
install_python
install_assets
start_libvirt
start_redis

PORT="${PORTAL_PORT:-8000}"
export PORTAL_VAR_DIR="${PORTAL_VAR_DIR:-$ROOT/var}"
VAR="$PORTAL_VAR_DIR"
mkdir -p "$VAR"
APPLIANCES="$VAR/demo-appliances"
[ -s "$VAR/secret_key" ] || "$VENV/bin/python" -c "import secrets; print(secrets.token_urlsafe(50))" >"$VAR/secret_key"
export DJANGO_SECRET_KEY="$(cat "$VAR/secret_key")"
export PORTAL_FETCH_FILE_ROOTS="$APPLIANCES"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

manage migrate --noinput -v 0
manage createcachetable  # the sign-in throttle's counters when REDIS_URL is not set
manage collectstatic --noinput -v 0
manage setup_demo --appliances "$APPLIANCES" --build-cache "${PORTAL_DEMO_BUILD_CACHE:-$VAR/cache/demo-build}"

say "starting the workers (django-q2) and the web server (daphne)"
# `manage.py workers` runs every cluster (control, builds, downloads, imports: one queue each, so
# leases and teardowns never wait behind tenants' work) and gets a session of its own: a TERM sent
# to this script's process group must reach only its main process, which passes it to each
# cluster's main process (each then stops its workers in order). A TERM straight to every worker
# process at once leaves a cluster hanging with zombie workers.
setsid "$VENV/bin/python" manage.py workers >"$VAR/worker.log" 2>&1 &
WORKER=$!
"$VENV/bin/daphne" -b 127.0.0.1 -p "$PORT" portal.asgi:application &
WEB=$!

stop_all() {
  trap - INT TERM EXIT
  kill -TERM "$WEB" "$WORKER" 2>/dev/null || true
  # Tasks in flight get ten seconds to finish; anything left then is killed (a task cut short is
  # handed out again by the broker, and the watchdog settles a build that stopped).
  for _ in $(seq 100); do
    kill -0 "$WEB" 2>/dev/null || kill -0 "$WORKER" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$WEB" 2>/dev/null || true
  kill -KILL -- "-$WORKER" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

echo "portal: http://127.0.0.1:$PORT/ (stack endpoints: http://${PORTAL_ENDPOINT_HOST:-localhost}:<port>/)"
cat "$VAR/demo-login"
# Either process ending ends the demo (and stops the other).
wait -n "$WEB" "$WORKER" || true
