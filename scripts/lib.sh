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
# The end-to-end tests' second libvirt host is reached once over SSH: a private sshd on loopback,
# and nc on the "remote" side to reach that host's socket (see test_hosts_start); Debian's chromium for
# the browser tests (Playwright drives it; it never downloads a browser); Prometheus, which a test
# starts on loopback to scrape /metrics as operators' own would.
TEST_APT_PACKAGES=(openssh-server openssh-client netcat-openbsd util-linux chromium prometheus)

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
  apt_install_without_starting "${TEST_APT_PACKAGES[@]}"
  command -v npm >/dev/null || apt_install nodejs npm
  # The demo builder downloads kernel and busybox packages with apt-get download.
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] || apt-get update -qq
}

# Debian starts a package's service when it is installed. The tests run their own sshd on loopback;
# a system-wide one listening on every address is not ours to start, so forbid starts meanwhile
# (policy-rc.d is Debian's switch for that; a machine that has one already keeps its own).
apt_install_without_starting() {
  local policy=/usr/sbin/policy-rc.d rc=0
  if [ -e "$policy" ]; then apt_install "$@"; return; fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  apt_install "$@" || rc=$?
  rm -f "$policy"
  return "$rc"
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
  # By their default pid files, not by name: the tests' private daemons have the same names.
  pidfile_alive /run/virtlogd.pid virtlogd || virtlogd -d
  pidfile_alive /run/libvirtd.pid libvirtd || libvirtd -d
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

# --- processes by pid file ------------------------------------------------------------------------

# pidfile_alive FILE NAME: the process FILE names is running and is NAME (a stale file may name a reused pid).
pidfile_alive() {
  local pid state
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$state" ] && [ "$state" != Z ]
}

# stop_pidfile FILE NAME: end the process FILE names (if it still is NAME): SIGTERM, SIGKILL after 10 s.
stop_pidfile() {
  local file="$1" name="$2" pid
  if pidfile_alive "$file" "$name"; then
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      pidfile_alive "$file" "$name" || break
      sleep 0.1
    done
    if pidfile_alive "$file" "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$file"
}

# --- more libvirt hosts and an SSH server, for the end-to-end tests -------------------------------

# A private libvirtd beside the system one, as a second host on this machine. It runs in its own mount
# namespace where folders of DIR cover libvirt's configuration and state, so it has its own guests, pools,
# logs and virtlogd; its client sockets stay in DIR/sock, outside those mounts, where the tests reach it:
#   qemu+unix:///system?socket=DIR/sock/libvirt-sock
# No virtlockd: QEMU's default lock manager is "nop". Run again on the same DIR, it starts whatever of
# the two daemons is not running, keeping the host's pools and volumes. Stop it with libvirt_host_stop DIR.
LIBVIRT_HOST_MOUNTS=(etc:/etc/libvirt lib:/var/lib/libvirt run:/run/libvirt log:/var/log/libvirt cache:/var/cache/libvirt)

libvirt_host_uri() { printf 'qemu+unix:///system?socket=%s/sock/libvirt-sock' "$1"; }

libvirt_host_start() {
  # DISPLAY_PORT_MIN: the first VNC port this host's guests may get. Every libvirtd on one machine
  # needs a range of its own, or two daemons hand out the same port and a guest fails to start.
  local dir="$1" display_min="${2:-15900}" uri
  uri="$(libvirt_host_uri "$dir")"
  mkdir -p "$dir"/{etc,lib,run,log,cache,sock}
  # QEMU runs as libvirt-qemu and walks through DIR/lib (its /var/lib/libvirt) to the disks.
  chmod 0755 "$dir" "$dir/lib"
  if [ ! -e "$dir/etc/libvirtd.conf" ]; then
    # The configuration files only: a whole copy of /etc/libvirt would bring the system daemon's guests,
    # storage pools (whose folders do not exist in here) and networks (whose bridges are taken) along.
    cp -a /etc/libvirt/*.conf "$dir/etc/"
    [ ! -d /etc/libvirt/nwfilter ] || cp -a /etc/libvirt/nwfilter "$dir/etc/"
    # libvirt reads the first of repeated settings: drop any the system's configuration sets.
    sed -i '/^[[:space:]]*unix_sock_dir[[:space:]]*=/d' "$dir/etc/libvirtd.conf"
    printf '\n# A test host: its client sockets outside its mount namespace.\nunix_sock_dir = "%s"\n' \
      "$dir/sock" >>"$dir/etc/libvirtd.conf"
    # A host UUID of its own: libvirt refuses to migrate a guest between daemons that share one.
    sed -i '/^[[:space:]]*host_uuid[[:space:]]*=/d' "$dir/etc/libvirtd.conf"
    printf 'host_uuid = "%s"\n' "$(cat /proc/sys/kernel/random/uuid)" >>"$dir/etc/libvirtd.conf"
    sed -i '/^[[:space:]]*remote_\(display\|websocket\)_port_m[ai][nx][[:space:]]*=/d' "$dir/etc/qemu.conf"
    printf '\n# A test host beside the system daemon: VNC ports of its own.\n%s\n%s\n%s\n%s\n' \
      "remote_display_port_min = $display_min" "remote_display_port_max = $((display_min + 499))" \
      "remote_websocket_port_min = $((display_min + 500))" "remote_websocket_port_max = $((display_min + 999))" \
      >>"$dir/etc/qemu.conf"
    # Start from the system daemon's probe of QEMU (libvirt probes again if it no longer matches).
    cp -a /var/cache/libvirt/. "$dir/cache/" 2>/dev/null || true
  fi
  if pidfile_alive "$dir/libvirtd.pid" libvirtd && pidfile_alive "$dir/virtlogd.pid" virtlogd; then
    return 0
  elif pidfile_alive "$dir/virtlogd.pid" virtlogd; then
    # virtlogd keeps the host's mount namespace alive: start libvirtd in it again.
    nsenter --target "$(cat "$dir/virtlogd.pid")" --mount -- libvirtd -d -p "$dir/libvirtd.pid"
  else
    stop_pidfile "$dir/libvirtd.pid" libvirtd
    unshare --mount --propagation private -- sh -ec '
      dir="$1"; shift
      for mount in "$@"; do
        mkdir -p "${mount#*:}"
        mount --bind "$dir/${mount%%:*}" "${mount#*:}"
      done
      virtlogd -d -p "$dir/virtlogd.pid"
      libvirtd -d -p "$dir/libvirtd.pid"
    ' sh "$dir" "${LIBVIRT_HOST_MOUNTS[@]}"
  fi
  for _ in $(seq 1 100); do
    virsh -q -c "$uri" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the test host in $dir did not answer on $uri; its log:" >&2
  tail -n 20 "$dir/log/libvirtd.log" >&2 2>/dev/null || true
  return 1
}

# libvirt_host_stop DIR: end the guests the host still runs (they would outlive libvirtd), then its daemons.
libvirt_host_stop() {
  local dir="$1" uri domain
  uri="$(libvirt_host_uri "$dir")"
  if pidfile_alive "$dir/libvirtd.pid" libvirtd; then
    for domain in $(virsh -q -c "$uri" list --name 2>/dev/null); do
      virsh -q -c "$uri" destroy "$domain" >/dev/null 2>&1 || echo "could not stop guest $domain on $uri" >&2
    done
  fi
  stop_pidfile "$dir/libvirtd.pid" libvirtd
  stop_pidfile "$dir/virtlogd.pid" virtlogd
}

free_loopback_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# An OpenSSH server for one test run: listening on 127.0.0.1 only, on a free port, with its own
# configuration and host key in DIR, and root login only with a key made now (DIR/client_key). Writes
# DIR/known_hosts (that host key) and DIR/port. Stop it with sshd_stop DIR.
sshd_start() {
  local dir="$1" port use_pam=no
  # Without PAM, sshd refuses a locked account ("!" in /etc/shadow) even with a key; with PAM it does
  # not, but PAM's session modules fail in some containers (whose root is "*", not locked).
  case "$(getent shadow root | cut -d: -f2)" in '!'*) use_pam=yes ;; esac
  mkdir -p -m 0700 "$dir"
  # Debian's init script makes sshd's privilege separation folder; nothing has, where none ran.
  mkdir -p -m 0755 /run/sshd
  rm -f "$dir"/host_key* "$dir"/client_key*
  ssh-keygen -q -t ed25519 -N '' -C portal-test-host -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -C portal-test-client -f "$dir/client_key"
  # "restrict": no forwarding, no pty, no agent; the client only runs a command (nc to libvirtd's socket).
  printf 'restrict %s\n' "$(cat "$dir/client_key.pub")" >"$dir/authorized_keys"
  for _ in 1 2 3; do
    port="$(free_loopback_port)"
    printf '%s\n' \
      "ListenAddress 127.0.0.1" \
      "Port $port" \
      "HostKey $dir/host_key" \
      "PidFile $dir/sshd.pid" \
      "AuthorizedKeysFile $dir/authorized_keys" \
      "AllowUsers root" \
      "PermitRootLogin prohibit-password" \
      "PubkeyAuthentication yes" \
      "PasswordAuthentication no" \
      "KbdInteractiveAuthentication no" \
      "UsePAM $use_pam" \
      "X11Forwarding no" \
      "AllowTcpForwarding no" \
      "AllowAgentForwarding no" \
      "PermitTunnel no" \
      "PrintMotd no" >"$dir/sshd_config"
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    for _ in $(seq 1 50); do
      if pidfile_alive "$dir/sshd.pid" sshd; then
        printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
        echo "$port" >"$dir/port"
        _ssh_client_command "$dir"
        return 0
      fi
      sleep 0.1
    done
    # Most likely the port was taken between our look and sshd's bind: try another.
  done
  echo "sshd did not start; its log:" >&2
  tail -n 20 "$dir/sshd.log" >&2 2>/dev/null || true
  return 1
}

sshd_stop() { stop_pidfile "$1/sshd.pid" sshd; }

# DIR/ssh: the OpenSSH client checking the server against DIR/known_hosts only. libvirt's qemu+ssh
# transport runs the ssh binary and, in 9.0, ignores the URI's known_hosts (only its libssh and libssh2
# transports read it); its "command" parameter names the binary to run, so URIs name this one and
# root's own ~/.ssh is neither read nor written.
_ssh_client_command() {
  local dir="$1"
  printf '%s\n' '#!/bin/sh' \
    "exec ssh -F none -o UserKnownHostsFile=$dir/known_hosts -o GlobalKnownHostsFile=none -o StrictHostKeyChecking=yes \"\$@\"" \
    >"$dir/ssh"
  chmod 0755 "$dir/ssh"
}

# The test run's extra hosts: a second libvirtd ("host2") and the SSH server, in a folder of their own
# (one per run, so parallel runs on one machine never meet). Exports what the tests read:
#   PORTAL_TEST_HOSTS_DIR        where fixtures start more private libvirtds of their own
#   PORTAL_TEST_HOST2_SOCKET     host2: qemu+unix:///system?socket=$PORTAL_TEST_HOST2_SOCKET
#   PORTAL_TEST_SSH_PORT, PORTAL_TEST_SSH_KEY, PORTAL_TEST_SSH_KNOWN_HOSTS   root@127.0.0.1 over SSH
#   PORTAL_TEST_SSH_COMMAND      the ssh client for qemu+ssh URIs (command=...), pinned to that known_hosts
# Call test_hosts_stop when done, from a trap on EXIT so that a failing run stops them too.
# Under /var/lib rather than /tmp: guest disks live there (on disk, not tmpfs), and sshd refuses an
# authorized keys file below a world-writable folder.
TEST_HOSTS_PARENT=/var/lib/portal-test

test_hosts_start() {
  local stale
  mkdir -p -m 0755 "$TEST_HOSTS_PARENT"
  # A run killed outright (SIGKILL) cannot stop its hosts. Say so; they may belong to someone else.
  for stale in "$TEST_HOSTS_PARENT"/run.*; do
    [ -e "$stale/owner.pid" ] && ! kill -0 "$(cat "$stale/owner.pid")" 2>/dev/null || continue
    echo "test hosts of a run that ended without stopping them: $stale" >&2
    echo "  stop them with: TEST_HOSTS_DIR=$stale bash -c 'source scripts/lib.sh && test_hosts_stop'" >&2
  done
  TEST_HOSTS_DIR="$(mktemp -d "$TEST_HOSTS_PARENT/run.XXXXXX")"
  chmod 0755 "$TEST_HOSTS_DIR"
  echo "$$" >"$TEST_HOSTS_DIR/owner.pid"
  libvirt_host_start "$TEST_HOSTS_DIR/host2"
  sshd_start "$TEST_HOSTS_DIR/ssh"
  export PORTAL_TEST_HOSTS_DIR="$TEST_HOSTS_DIR"
  export PORTAL_TEST_HOST2_SOCKET="$TEST_HOSTS_DIR/host2/sock/libvirt-sock"
  PORTAL_TEST_SSH_PORT="$(cat "$TEST_HOSTS_DIR/ssh/port")"
  export PORTAL_TEST_SSH_PORT
  export PORTAL_TEST_SSH_KEY="$TEST_HOSTS_DIR/ssh/client_key"
  export PORTAL_TEST_SSH_KNOWN_HOSTS="$TEST_HOSTS_DIR/ssh/known_hosts"
  export PORTAL_TEST_SSH_COMMAND="$TEST_HOSTS_DIR/ssh/ssh"
}

# Stops every libvirtd in the run's folder (host2 and any a test left running) and the SSH server, then
# removes the folder, the hosts' disks with it.
test_hosts_stop() {
  local dir="${TEST_HOSTS_DIR:-}" host
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  for host in "$dir"/*/; do
    host="${host%/}"
    [ -e "$host/libvirtd.pid" ] || [ -e "$host/virtlogd.pid" ] || continue
    libvirt_host_stop "$host"
  done
  [ ! -d "$dir/ssh" ] || sshd_stop "$dir/ssh"
  rm -rf "${dir:?}"
}

manage() { "$VENV/bin/python" manage.py "$@"; }
