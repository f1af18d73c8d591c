#!/usr/bin/env bash
# Install everything, start PostgreSQL, Redis and libvirtd, then run the linter and the whole test
# suite (unit tests on libvirt's test driver, end-to-end tests that boot real VMs under qemu:///system,
# and on a second libvirtd started here for the run, reached over a unix socket and over SSH).
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

say "a second libvirt host and an SSH server on loopback, for this run"
# Stopped by their pid files however the run ends (the EXIT trap also runs on Ctrl-C and on a failure).
trap test_hosts_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
test_hosts_start
echo "host2: qemu+unix:///system?socket=$PORTAL_TEST_HOST2_SOCKET; sshd: root@127.0.0.1:$PORTAL_TEST_SSH_PORT"

say "pytest"
"$VENV/bin/python" -m pytest -n 2 --dist loadgroup "$@"

say "pytest on SQLite, the default database: launches, quotas and placement"
# The suite above runs on PostgreSQL; these modules run again on SQLite (WAL, IMMEDIATE transactions,
# a busy timeout: portal/settings.py), parallel launches and a real worker included. Tests of what
# SQLite lacks (row locks) are marked only_on("postgresql") and say so when skipped.
SQLITE_DIR="$ROOT/var/test-sqlite"  # made anew each run
rm -rf "$SQLITE_DIR" && mkdir -p "$SQLITE_DIR"
DATABASE_URL="sqlite:///$SQLITE_DIR/portal.sqlite3" "$VENV/bin/python" -m pytest \
    tests/provisioning/test_placement.py tests/provisioning/test_placement_claims.py \
    tests/provisioning/test_quotas.py tests/provisioning/test_stack_services.py \
    tests/provisioning/test_launch_with_worker.py tests/portal/test_project_quotas.py \
    tests/provisioning/test_stack_life.py
