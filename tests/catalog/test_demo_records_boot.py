"""The real db appliance under QEMU: its records are on its disk, and the ACPI power button stops it cleanly.

The image is built from the Debian packages (cached in ``var/cache/demo-build``) and booted by
QEMU directly, with no libvirt: a copy-on-write overlay larger than the image, as the portal makes,
and a restricted user-mode NIC whose one forwarded port is on 127.0.0.1. Without a config drive the
db serves standalone, which is all this needs. The guest is stopped through the QEMU monitor's
``system_powerdown`` (the ACPI power button, as libvirt's shutdown presses it) and must power
itself off; booted again on the same overlay, it must still hold its records.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from catalog.demo_appliances import build_demo_appliances
from catalog.demo_appliances.appliances import DEMO_DB
from tests.e2e.conftest import BUILD_CACHE
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

BOOT_TIMEOUT = 180


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def db_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("demo-images")
    build_demo_appliances(out_dir=out_dir, base_url="http://127.0.0.1/", work_dir=BUILD_CACHE, log=lambda _: None)
    return out_dir / DEMO_DB.filename


class Guest:
    def __init__(self, process: subprocess.Popen[bytes], port: int, console: Path, monitor: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.console = console
        self.monitor = monitor

    def request(self, path: str, body: bytes | None = None, content_type: str = "text/plain") -> tuple[int, str]:
        headers = {"Content-Type": content_type} if body is not None else {}
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_until_serving(self) -> None:
        def serving() -> bool:
            try:
                return self.request("/records")[0] == 200
            except OSError:  # QEMU accepts the connection before the guest listens, then drops it
                return False

        wait_for(serving, timeout=BOOT_TIMEOUT, interval=0.5, what="the db appliance to serve its records")

    def press_power_button(self) -> None:
        """``system_powerdown`` on the human monitor, which reads a command only after its prompt."""
        with socket.socket(socket.AF_UNIX) as monitor:
            monitor.settimeout(30)
            monitor.connect(str(self.monitor))
            read_until_prompt(monitor)
            monitor.sendall(b"system_powerdown\n")
            read_until_prompt(monitor)

    def console_text(self) -> str:
        return self.console.read_text(errors="replace")


def read_until_prompt(monitor: socket.socket) -> None:
    said = b""
    while not said.endswith(b"(qemu) "):
        chunk = monitor.recv(4096)
        if not chunk:
            raise AssertionError(f"the QEMU monitor closed: {said!r}")
        said += chunk


@contextmanager
def booted(image: Path, overlay: Path, run_dir: Path, name: str) -> Iterator[Guest]:
    """QEMU (TCG) on ``overlay``; killed by its pid on the way out if it is still running."""
    port = _free_port()
    console = run_dir / f"{name}.console"
    monitor = run_dir / f"{name}.monitor"
    if not overlay.exists():
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2", str(overlay), "1G"],
            check=True,
        )
    errors = (run_dir / f"{name}.stderr").open("wb")
    command = [
        *("qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "128", "-display", "none", "-no-reboot"),
        *("-serial", f"file:{console}", "-monitor", f"unix:{monitor},server,nowait"),
        *("-drive", f"file={overlay},format=qcow2,if=virtio"),
        *("-netdev", f"user,id=public,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:{DEMO_DB.port}"),
        *("-device", "virtio-net-pci,netdev=public"),
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    try:
        yield Guest(process, port, console, monitor)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        errors.close()


def test_records_survive_an_acpi_power_off_and_a_new_boot(db_image: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "db-overlay.qcow2"
    records = ["order 1001: 3 teapots", "<script>alert('x')</script> & co"]

    with booted(db_image, overlay, tmp_path, "first") as guest:
        guest.wait_until_serving()
        assert guest.request("/records") == (200, "")
        # Refused without a trace: control characters, several lines, too long, not text/plain.
        assert guest.request("/records", b"bell\x07")[0] == 400
        assert guest.request("/records", b"one\ntwo\n")[0] == 400
        assert guest.request("/records", b"x" * 501)[0] == 413
        assert guest.request("/records", b"x", content_type="application/json")[0] == 415
        for record in records:
            assert guest.request("/records", record.encode() + b"\n") == (201, "record saved\n")
        assert guest.request("/records") == (200, "".join(f"{record}\n" for record in records))
        page = guest.request("/")[1]
        assert "<li>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</li>" in page
        assert "<script>" not in page

        guest.press_power_button()
        assert guest.process.wait(timeout=BOOT_TIMEOUT) == 0
        console = guest.console_text()
        assert "power button pressed: flushing the disks, then powering off" in console
        assert "demo-db: powering off" in console

    with booted(db_image, overlay, tmp_path, "second") as guest:
        guest.wait_until_serving()
        assert guest.request("/records") == (200, "".join(f"{record}\n" for record in records))
        assert "record log: 2 records" in guest.console_text()
        guest.press_power_button()
        assert guest.process.wait(timeout=BOOT_TIMEOUT) == 0
