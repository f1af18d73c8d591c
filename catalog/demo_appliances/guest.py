"""What runs inside each appliance: busybox as init, a DHCP hook, and the one page it serves.

The init script loads the network modules, takes a DHCP lease and serves the tier's page with
busybox ``httpd``, which is enough for the portal to prove a stack came up without shipping
real databases or app servers. It prints ``READY_MARKER`` on the serial console once serving.
"""

from __future__ import annotations

from catalog.demo_appliances.appliances import DemoAppliance

READY_MARKER = "DEMO-APPLIANCE-READY"

INIT_TEMPLATE = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
hostname {appliance}

for m in {modules}; do
    insmod /lib/modules/$m.ko || echo "{appliance}: insmod $m failed"
done
ifconfig lo 127.0.0.1 up

# Stays in the background after the first lease so it can renew it.
if ! udhcpc -i eth0 -s /etc/udhcpc.script -t 10 -T 1 -A 1 -n; then
    # The address qemu's user-mode network hands out, so the page is still reachable.
    echo "{appliance}: DHCP failed, using 10.0.2.15"
    ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
    route add default gw 10.0.2.2
fi

if httpd -p {port} -h /www; then
    echo "{ready} {appliance} port {port}"
else
    echo "{appliance}: httpd failed to start on port {port}"
fi

# PID 1 must never exit or the kernel panics.
while true; do sleep 3600; done
"""

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
    deconfig)
        ifconfig "$interface" 0.0.0.0 up
        ;;
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        if [ -n "$router" ]; then
            while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done
            for gw in $router; do route add default gw "$gw" dev "$interface"; done
        fi
        ;;
esac
exit 0
"""

PAGE_TEMPLATE = """<!DOCTYPE html>
<html>
<head><title>{appliance}</title></head>
<body>
<h1>{appliance} appliance</h1>
<p>Role: {role}. Version: {version}.</p>
</body>
</html>
"""


def render_init(appliance: DemoAppliance, modules: tuple[str, ...]) -> str:
    return INIT_TEMPLATE.format(
        appliance=appliance.appliance, port=appliance.port, modules=" ".join(modules), ready=READY_MARKER
    )


def render_page(appliance: DemoAppliance, version: str) -> str:
    return PAGE_TEMPLATE.format(appliance=appliance.appliance, role=appliance.role, version=version)
