#!/usr/bin/env bash
# Install everything and run the portal with demo data: SQLite, the local libvirtd, and Redis
# (the worker pushes progress to the browser across processes through it, and it is the
# task broker). An admin account, the local host, the demo appliances and their feed are
# created once; run again, it reuses what exists.
source "$(dirname "$0")/lib.sh"

install_system
install_python
install_assets
start_libvirt
start_redis

PORT="${PORTAL_PORT:-8000}"
APPLIANCES="$ROOT/var/demo-appliances"
[ -s var/secret_key ] || "$VENV/bin/python" -c "import secrets; print(secrets.token_urlsafe(50))" >var/secret_key
export DJANGO_SECRET_KEY="$(cat var/secret_key)"
export PORTAL_FETCH_FILE_ROOTS="$APPLIANCES"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

manage migrate --noinput -v 0
manage collectstatic --noinput -v 0
manage setup_demo --appliances "$APPLIANCES"

say "starting the worker (django-q2) and the web server (daphne)"
"$VENV/bin/python" manage.py qcluster >var/worker.log 2>&1 &
WORKER=$!
# The cluster stops its own worker processes when its main process gets SIGTERM.
trap 'kill -TERM "$WORKER" 2>/dev/null; wait "$WORKER" 2>/dev/null' EXIT
echo "portal: http://127.0.0.1:$PORT/"
cat var/demo-login
"$VENV/bin/daphne" -b 127.0.0.1 -p "$PORT" portal.asgi:application
