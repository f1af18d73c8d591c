#!/usr/bin/env bash
# Install everything, start PostgreSQL, Redis and libvirtd, then run the linter and the whole test
# suite (unit tests on libvirt's test driver, end-to-end tests that boot real VMs under qemu:///system).
source "$(dirname "$0")/lib.sh"

install_system
install_python
install_assets
start_libvirt
start_postgres
start_redis

export DATABASE_URL="${DATABASE_URL:-postgres://portal:portal@127.0.0.1:5432/portal}"
export DJANGO_SETTINGS_MODULE=tests.settings
# Only the cross-process websocket test uses Redis (database 15); the rest runs on embedded layers.
export PORTAL_TEST_REDIS_URL="${PORTAL_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

say "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
say "mypy"
"$VENV/bin/mypy"  # the modules listed under [tool.mypy] files in pyproject.toml
say "migrations are up to date"
manage makemigrations --check --dry-run >/dev/null
say "pytest"
exec "$VENV/bin/python" -m pytest -n 2 --dist loadgroup "$@"
