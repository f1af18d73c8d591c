"""A flavor's disk write limit, in a real guest: libvirt's ``<iotune>`` in the live domain, and ``dd``
inside the guest writing at that rate.

The demo-web appliance runs under qemu:///system (TCG); the test logs in on its serial console as a
person would and writes to its own disk with O_DIRECT (so the guest's page cache cannot absorb the
writes), far from the boot files; ``dd``'s run is timed by the host's clock, from the command sent to
its end reported.
"""

from __future__ import annotations

import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from asgiref.sync import async_to_sync

from provisioning.consoles.tickets import console_ticket_issue
from provisioning.models import Flavor, StackTemplate, Status
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch_template
from provisioning.templates import parse_template
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.test_console import LOGIN_PROMPT, SHELL_PROMPT, _prompted, _until
from tests.provisioning.test_console_helpers import open_console, receive_backlog, socket_headers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MIB = 1024 * 1024
WRITE_LIMIT = 2 * MIB  # bytes per second
WRITTEN_MIB = 10  # about five seconds at the limit: QEMU's short initial burst is lost in it
# The guest's busybox dd reports records, not its rate; the shell reads the guest's clock around it too.
DD_TIMED = re.compile(rb"(\d+)\+0 records out\r\n(?:[^\r\n]*\r\n)*?DD-TOOK ([\d.]+) ([\d.]+)")


def _live_iotune(domain: str) -> dict[str, int]:
    xml = subprocess.run(
        ["virsh", "-c", SYSTEM_URI, "dumpxml", domain], capture_output=True, text=True, check=True
    ).stdout
    root = ET.fromstring(xml)  # noqa: S314 - libvirt's own XML
    disks = [disk for disk in root.iterfind("devices/disk") if disk.find("target[@dev='vda']") is not None]
    iotune = disks[0].find("iotune")
    assert iotune is not None, xml
    return {child.tag: int(child.text or 0) for child in iotune}


async def _closely_until(socket_, seen: bytes, wanted: re.Pattern[bytes], timeout: float) -> bytes:
    """As ``_until``, looking every 20 ms, so the moment ``wanted`` arrives is known that closely."""
    deadline = time.monotonic() + timeout
    while not wanted.search(seen):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{wanted.pattern!r} not seen; the last output: {seen[-400:]!r}")
        if await socket_.receive_nothing(timeout=0.02, interval=0.005):
            continue
        message = await socket_.receive_from(timeout=5)
        if isinstance(message, bytes):
            seen += message
    return seen


def test_dd_in_a_guest_runs_at_its_flavors_disk_write_limit(client, member, project, inline_demo_catalog):
    version = inline_demo_catalog["demo-web"].versions.newest_first().first()
    Flavor.objects.create(
        project=project,
        name="throttled",
        vcpus=version.min_vcpus or 1,
        memory_mib=version.min_ram_mib or 128,
        disk_gib=1,
        disk_write_bytes_sec=WRITE_LIMIT,
    )
    source = "tiers:\n  - name: web\n    appliance: demo-web\n    flavor: throttled\n"
    template = StackTemplate.objects.create(
        project=project, name="throttled-web", source=source, document=parse_template(source).as_json()
    )
    stack = stack_launch_template(user=member, project=project, name="limited", template=template, lease_seconds=900)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    instance = stack.instances.get()
    assert instance.qos == {"disk_write_bytes_sec": WRITE_LIMIT}
    assert _live_iotune(instance.domain_name) == {"write_bytes_sec": WRITE_LIMIT}

    ticket = console_ticket_issue(user=member, instance=instance, kind="serial").ticket
    headers = socket_headers(client, member)
    # 512 MiB into the 1 GiB disk: past the boot files, which the guest no longer needs anyway.
    dd = f"dd if=/dev/zero of=/dev/vda bs=64k count={WRITTEN_MIB * 16} seek=8192 oflag=direct"
    command = f'read s x </proc/uptime; {dd}; read e x </proc/uptime; echo "DD-TOOK $s $e"\r'

    async def write_in_guest() -> bytes:
        socket_, connected, code = await open_console("serial", ticket, headers)
        assert connected, code
        try:
            _note, seen = await receive_backlog(socket_, timeout=30)
            seen = await _until(socket_, seen, LOGIN_PROMPT, timeout=120)
            seen = await _prompted(socket_, seen, LOGIN_PROMPT)
            await socket_.send_to(text_data="root\r")
            seen = await _prompted(socket_, seen, SHELL_PROMPT)
            start = len(seen)
            sent = time.monotonic()
            await socket_.send_to(text_data=command)
            seen = await _closely_until(socket_, seen, DD_TIMED, timeout=60)
            took = time.monotonic() - sent
        finally:
            await socket_.disconnect(timeout=30)
        return seen[start:], took

    output, host_seconds = async_to_sync(write_in_guest)()
    match = DD_TIMED.search(output)
    assert match, output
    assert int(match.group(1)) == WRITTEN_MIB * 16  # every 64 KiB block written
    written, guest_seconds = WRITTEN_MIB * MIB, float(match.group(3)) - float(match.group(2))
    # Judged by the host's clock: a TCG guest's clock may run behind while its vCPU waits. The
    # console's round trip adds a few tens of milliseconds to five seconds.
    rate = written / host_seconds
    print(
        f"dd in the guest: {written} bytes in {host_seconds:.2f} s by the host's clock = {rate / MIB:.2f} MiB/s,"
        f" {guest_seconds:.2f} s by the guest's (limit {WRITE_LIMIT / MIB:.2f} MiB/s)"
    )
    assert abs(rate - WRITE_LIMIT) <= 0.2 * WRITE_LIMIT, f"{rate / MIB:.2f} MiB/s against a limit of 2 MiB/s"

    lifecycle.stack_destroy(user=member, stack=stack)
