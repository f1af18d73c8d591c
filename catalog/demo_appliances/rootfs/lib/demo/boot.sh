# Boot steps: kernel modules, the NoCloud config drive, and the NICs.
#
# NICs are found by MAC address, never by name or order: the stack NIC is the one whose MAC the
# config drive names (a private network with no DHCP, so it gets the static address the portal
# chose); every other Ethernet NIC is a public one, configured by DHCP (QEMU user networking).
# The paths are variables so that tests can run these functions on the build machine.
: "${SYS_NET:=/sys/class/net}"
: "${CIDATA_DIR:=/cidata}"
# Where the portal attaches the drive; a drive labelled cidata is found wherever it is.
: "${CIDATA_DEVICE:=/dev/vdb}"
# The address QEMU's user networking hands out, used when its DHCP does not answer.
USER_NET_ADDRESS=10.0.2.15
USER_NET_GATEWAY=10.0.2.2

log() {
    echo "[$(cut -d' ' -f1 /proc/uptime 2>/dev/null)] $APPLIANCE: $*"
}

lower() {
    printf '%s' "$1" | tr 'A-Z' 'a-z'
}

# busybox insmod neither resolves dependencies nor decompresses: the build lists plain module
# files in load order.
load_modules() {
    for module in "$@"; do
        insmod "/lib/modules/$module.ko" || log "insmod $module failed"
    done
}

# Mount the config drive read-only and source its portal.env. Fails, so that the appliance serves
# standalone, when there is no drive, it is not ISO 9660, or it holds no portal.env.
read_config_drive() {
    local device
    device=$(findfs LABEL=cidata 2>/dev/null) || device=$CIDATA_DEVICE
    if [ ! -b "$device" ]; then
        log "no config drive: serving standalone"
        return 1
    fi
    mkdir -p "$CIDATA_DIR"
    if ! mount -t iso9660 -o ro "$device" "$CIDATA_DIR"; then
        log "$device is not an ISO 9660 config drive: serving standalone"
        return 1
    fi
    load_portal_env "$CIDATA_DIR/portal.env"
}

# The portal quotes every value (shlex.quote), so sourcing the file only assigns variables.
load_portal_env() {
    if [ ! -f "$1" ]; then
        log "the config drive has no portal.env: serving standalone"
        return 1
    fi
    . "$1"
    if [ -z "$PORTAL_INSTANCE" ]; then
        log "portal.env names no instance: serving standalone"
        return 1
    fi
}

# Names of the Ethernet NICs (type 1 excludes lo and tunnels), one a line.
ethernet_nics() {
    local dir
    for dir in "$SYS_NET"/*; do
        [ "$(cat "$dir/type" 2>/dev/null)" = 1 ] && echo "${dir##*/}"
    done
}

nic_address() {
    lower "$(cat "$SYS_NET/$1/address" 2>/dev/null)"
}

nic_with_mac() {
    local nic want
    want=$(lower "$1")
    for nic in $(ethernet_nics); do
        if [ "$(nic_address "$nic")" = "$want" ]; then
            echo "$nic"
            return 0
        fi
    done
    return 1
}

configure_stack_nic() {
    local nic
    if ! nic=$(nic_with_mac "$PORTAL_MAC"); then
        log "no NIC has the stack MAC $PORTAL_MAC"
        return 1
    fi
    ip link set "$nic" up
    ip addr add "$PORTAL_ADDRESS/$PORTAL_PREFIX" dev "$nic"
    log "stack NIC $nic ($PORTAL_MAC) has $PORTAL_ADDRESS/$PORTAL_PREFIX"
}

# DHCP on every Ethernet NIC but the stack NIC ($1, a MAC, may be empty). udhcpc stays in the
# background after the first lease so it can renew it.
configure_public_nics() {
    local nic stack_mac fallback
    stack_mac=$(lower "$1")
    fallback=yes
    for nic in $(ethernet_nics); do
        [ -n "$stack_mac" ] && [ "$(nic_address "$nic")" = "$stack_mac" ] && continue
        ip link set "$nic" up
        if udhcpc -i "$nic" -s /etc/udhcpc.script -t 10 -T 1 -A 1 -n; then
            continue
        fi
        # One NIC at most takes the user-network address, so the page is still reachable.
        if [ -n "$fallback" ]; then
            log "DHCP failed on $nic, using $USER_NET_ADDRESS"
            ifconfig "$nic" "$USER_NET_ADDRESS" netmask 255.255.255.0 up
            route add default gw "$USER_NET_GATEWAY"
            fallback=
        else
            log "DHCP failed on $nic"
        fi
    done
}
