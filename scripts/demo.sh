#!/usr/bin/env bash
# Install everything and run the portal with demo data on embedded defaults (SQLite, the
# django-q2 ORM broker, the local libvirtd): an admin account, the local host, the demo
# appliances and their feed. Run again, it reuses what exists.
source "$(dirname "$0")/lib.sh"

install_system
install_python
install_assets
start_libvirt

PORT="${PORTAL_PORT:-8000}"
APPLIANCES="$ROOT/var/demo-appliances"
[ -s var/secret_key ] || "$VENV/bin/python" -c "import secrets; print(secrets.token_urlsafe(50))" >var/secret_key
export DJANGO_SECRET_KEY="$(cat var/secret_key)"
export PORTAL_FETCH_FILE_ROOTS="$APPLIANCES"

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
