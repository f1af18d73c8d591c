"""The demo appliances' consoles: the kernel and init write to the screen and the serial port, the
serial port offers a root login, and the catalog says so. Booting them is the end-to-end tests' job."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from catalog.demo_appliances.appliances import CONSOLE_NOTE, demo_appliances
from catalog.demo_appliances.disk import KERNEL_CMDLINE, syslinux_cfg
from catalog.demo_appliances.guest import ROOTFS, rootfs_files

CONSOLE_LIBRARY = ROOTFS / "lib" / "demo" / "console.sh"


def test_the_kernel_writes_to_the_screen_and_the_serial_port_which_is_dev_console():
    consoles = [word.split("=", 1)[1] for word in KERNEL_CMDLINE.split() if word.startswith("console=")]
    assert consoles == ["tty0", "ttyS0"]  # the last one named is /dev/console, where init writes
    assert "console=tty0 console=ttyS0" in syslinux_cfg(1024)


def test_init_copies_its_output_to_both_consoles_before_anything_else_prints():
    init = rootfs_files()["init"].decode()
    first_output = init.index("load_modules $MODULES")
    assert init.index(". /lib/demo/console.sh") < init.index("show_on_both_consoles") < first_output
    # The login starts once the tier serves, so it costs the page nothing.
    assert init.index('log "$READY_MARKER $APPLIANCE port $PORT"') < init.index("serial_login &")


def test_what_init_prints_reaches_the_serial_console_and_the_screen(tmp_path: Path):
    screen = tmp_path / "tty1"
    screen.write_text("")
    script = (
        f". {CONSOLE_LIBRARY}\n"
        "show_on_both_consoles || exit 9\n"
        "echo 'demo-web: from init'\n"
        "echo 'from a failing command' >&2\n"
        "exec >/dev/null 2>&1\n"  # closes the pipe, so tee finishes
        "wait\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SCREEN_TTY": str(screen), "CONSOLE_PIPE": str(tmp_path / "pipe")}
    serial = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=20, check=True)
    expected = "demo-web: from init\nfrom a failing command\n"
    assert serial.stdout == expected
    assert screen.read_text() == expected


def test_without_a_screen_the_serial_console_still_gets_everything(tmp_path: Path):
    script = f". {CONSOLE_LIBRARY}\nshow_on_both_consoles\necho still here\nexec >/dev/null 2>&1\nwait\n"
    env = {"PATH": "/usr/bin:/bin", "SCREEN_TTY": str(tmp_path / "no" / "tty1"), "CONSOLE_PIPE": str(tmp_path / "p")}
    serial = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=20, check=True)
    assert serial.stdout == "still here\n"


def test_the_only_account_is_root_with_no_password_and_a_shell():
    files = rootfs_files()
    accounts = files["etc/passwd"].decode().splitlines()
    assert accounts == ["root::0:0:root:/:/bin/sh"]
    assert "root" in files["etc/issue"].decode()
    assert "no password" in files["etc/motd"].decode()
    assert "PS1=" in files["etc/profile"].decode()
    assert "getty -L 115200" in CONSOLE_LIBRARY.read_text()


@pytest.mark.parametrize("appliance", demo_appliances(include_probe=True), ids=lambda a: a.appliance)
def test_every_catalog_page_says_the_serial_console_has_a_root_login_without_password(appliance):
    assert appliance.description.endswith(CONSOLE_NOTE)
    assert "root login with no password" in appliance.description
