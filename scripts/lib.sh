# Shared steps of the set-up scripts: install what is missing, start what is not running.
# Sourced by scripts/demo.sh and scripts/test.sh; every step is idempotent and quick when done.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
mkdir -p "$ROOT/var"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Debian packages: the hypervisor stack, the tools the demo appliance builder uses, and
# what libvirt-python and psycopg need to build.
APT_PACKAGES=(
  python3 python3-venv python3-dev gcc pkg-config
  libvirt-dev libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
  syslinux syslinux-common mtools cpio dosfstools
  ca-certificates curl
)

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

install_system() {
  [ "$(id -u)" = 0 ] || { echo "run as root: libvirt's system instance and apt need it" >&2; exit 1; }
  apt_install "${APT_PACKAGES[@]}"
  command -v npm >/dev/null || apt_install nodejs npm
  # The demo builder downloads kernel and busybox packages with apt-get download.
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] || apt-get update -qq
}

install_python() {
  local stamp="$VENV/.installed" wanted
  wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  [ -x "$VENV/bin/python" ] || { say "creating virtualenv"; python3 -m venv "$VENV"; }
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "installing Python packages"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q ".[test]"
    echo "$wanted" >"$stamp"
  fi
}

install_assets() {
  local stamp="node_modules/.installed" wanted
  wanted="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "installing browser assets (npm)"
    npm ci --no-audit --no-fund --silent
    echo "$wanted" >"$stamp"
  fi
}

# Debian's udev rules give /dev/kvm to the kvm group; machines without udev leave it root-only.
# QEMU (running as libvirt-qemu) then cannot open it and libvirt re-probes QEMU's capabilities
# on every define, turning a 0.5 s start into a minute or more.
kvm_device_permissions() {
  if [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
    chown root:kvm /dev/kvm
    chmod 0660 /dev/kvm
  fi
}

start_libvirt() {
  kvm_device_permissions
  if virsh -c qemu:///system version >/dev/null 2>&1; then return; fi
  say "starting virtlogd and libvirtd"
  mkdir -p /var/log/libvirt /var/lib/libvirt/images
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  for _ in $(seq 1 50); do
    virsh -c qemu:///system version >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "libvirtd did not answer on qemu:///system" >&2
  exit 1
}

start_postgres() {
  apt_install postgresql
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    local version
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    [ -n "$version" ] || { echo "no PostgreSQL cluster found in /etc/postgresql" >&2; exit 1; }
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
  # A password role works both where pg_hba says "trust" and on Debian's default (scram for TCP).
  runuser -u postgres -- psql -qtA -c "SELECT 1 FROM pg_roles WHERE rolname='portal'" | grep -q 1 ||
    runuser -u postgres -- psql -q -c "CREATE ROLE portal LOGIN PASSWORD 'portal' CREATEDB"
  runuser -u postgres -- psql -qtA -c "SELECT 1 FROM pg_database WHERE datname='portal'" | grep -q 1 ||
    runuser -u postgres -- createdb -O portal portal
}

start_redis() {
  apt_install redis-server
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/portal.log
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 0.2; done
    echo "Redis did not answer on 127.0.0.1:6379" >&2
    exit 1
  fi
}

manage() { "$VENV/bin/python" manage.py "$@"; }
