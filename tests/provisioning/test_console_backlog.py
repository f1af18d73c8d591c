"""The serial console's backlog: its log's name and place, the text the API shows, who may read it,
the replay on the serial socket, and the driver's reads and deletes on a test:// node."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from asgiref.sync import async_to_sync

from provisioning.consoles import backends, backlog
from provisioning.consoles.backlog import (
    BACKLOG_BYTES,
    console_log_path,
    console_log_volume_name,
    readable_text,
)
from provisioning.consoles.serial_socket import OVERLAP_LIMIT_BYTES, overlap
from provisioning.consoles.tickets import console_ticket_issue
from provisioning.drivers import ConsoleLog, HostUnreachable, InvalidRequest, NotFound
from provisioning.drivers.domain_xml import build_volume_xml
from provisioning.models import Instance
from tests.provisioning.libvirt_doubles import NODE_POOL
from tests.provisioning.test_console_helpers import (
    FakeSerialConsole,
    make_running_instance,
    open_console,
    receive_backlog,
    socket_headers,
)

# --- the text shown as a log ----------------------------------------------------------------------


def test_terminal_control_sequences_and_control_characters_are_taken_out():
    raw = (
        b"\x1b[2J\x1b[1;31mred\x1b[0m line\r\n"  # CSI: clear, colours
        b"\x1b]0;title\x07after title\r\n"  # OSC: window title
        b"\x1bcreset\x1b(B\tand tab\r\n"
        b"bell\x07 nul\x00 del\x7f c1\xc2\x9b end\r\n"
        b"overwritten\rcarriage\n"
    )
    assert readable_text(raw) == ("red line\nafter title\nreset\tand tab\nbell nul del c1 end\noverwritten\ncarriage\n")


def test_a_character_cut_by_the_cap_or_bytes_that_are_not_utf8_do_not_break_the_text():
    assert readable_text("héllo".encode()[:2] + b"\xff ok") == "h\ufffd\ufffd ok"


def test_markup_stays_text():
    # Rendered as text by the page (textContent) and as a JSON string by the API: nothing to escape here.
    assert readable_text(b"<script>alert(1)</script>") == "<script>alert(1)</script>"


# --- where the log is kept --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_log_is_named_after_the_disk_and_kept_beside_it(project):
    instance = make_running_instance(project)
    Instance.objects.filter(pk=instance.pk).update(volume_name="dep-p1-s2-i3.qcow2")
    instance.refresh_from_db()
    assert console_log_volume_name(instance) == "dep-p1-s2-i3-console.log"
    path = console_log_path(instance=instance, disk_path="/var/lib/libvirt/images/pool/dep-p1-s2-i3.qcow2")
    assert path == "/var/lib/libvirt/images/pool/dep-p1-s2-i3-console.log"


@pytest.mark.django_db
def test_an_instance_without_a_disk_has_no_log_name(project):
    with pytest.raises(ValueError, match="no disk volume"):
        console_log_volume_name(make_running_instance(project))


# --- overlap of the log and the live output ---------------------------------------------------------


@pytest.mark.parametrize(
    ("log", "live", "expected"),
    [
        (b"boot\r\ndemo-web login: ", b"demo-web login: ", 16),
        (b"boot\r\ndemo-web login: ", b"login: root\r\n", 7),
        (b"boot\r\n", b"new output", 0),
        (b"", b"anything", 0),
        (b"anything", b"", 0),
    ],
)
def test_live_output_the_log_holds_already_is_counted(log, live, expected):
    assert overlap(log, live) == expected


def test_overlap_is_looked_for_over_a_bounded_length():
    same = b"x" * (OVERLAP_LIMIT_BYTES * 4)
    assert overlap(same, same) == OVERLAP_LIMIT_BYTES


# --- the API ----------------------------------------------------------------------------------------


class LogDriver:
    """What ``console_backlog`` asks of a driver, answering from ``logs`` (name -> bytes)."""

    def __init__(self, logs: dict[str, bytes], error: Exception | None = None) -> None:
        self.logs = logs
        self.error = error
        self.asked: list[tuple[str, str, int]] = []

    def read_console_log(self, *, pool: str, name: str, max_bytes: int) -> ConsoleLog:
        self.asked.append((pool, name, max_bytes))
        if self.error is not None:
            raise self.error
        if name not in self.logs:
            raise NotFound(f"volume '{name}' not found")
        data = self.logs[name]
        return ConsoleLog(data=data[-max_bytes:], size_bytes=len(data), truncated=len(data) > max_bytes)


@pytest.fixture
def log_driver(monkeypatch):
    driver = LogDriver({})

    @contextmanager
    def driver_for(host):
        yield driver

    monkeypatch.setattr(backlog, "driver_for", driver_for)
    return driver


@pytest.fixture
def placed(project):
    instance = make_running_instance(project)
    Instance.objects.filter(pk=instance.pk).update(volume_name=f"e2e-p{project.pk}-s{instance.stack_id}-i9.qcow2")
    instance.refresh_from_db()
    return instance


def log_url(instance) -> str:
    return f"/api/v1/instances/{instance.pk}/console-log/"


@pytest.mark.django_db
def test_another_projects_instance_log_is_not_found(api, outsider, placed, log_driver):
    log_driver.logs[console_log_volume_name(placed)] = b"root secret typed here\r\n"
    response = api(outsider).get(log_url(placed))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert log_driver.asked == []


@pytest.mark.django_db
def test_a_viewer_may_not_read_the_log_and_anonymous_callers_are_not_authenticated(api, viewer, placed, log_driver):
    response = api(viewer).get(log_url(placed))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert api().get(log_url(placed)).status_code == 401
    assert log_driver.asked == []


@pytest.mark.django_db
def test_a_member_reads_the_logs_end_as_text(api, member, placed, log_driver):
    log_driver.logs[console_log_volume_name(placed)] = b"x" * BACKLOG_BYTES + b"\x1b[1mdemo-web login: \x1b[0m"
    body = api(member).get(log_url(placed)).json()
    assert body["text"].endswith("demo-web login: ")
    assert "\x1b" not in body["text"]
    assert body["truncated"] is True
    assert body["size_bytes"] == BACKLOG_BYTES + len(b"\x1b[1mdemo-web login: \x1b[0m")
    assert body["available"] is True
    assert body["reason"] == ""
    assert log_driver.asked == [(placed.host.storage_pool, console_log_volume_name(placed), BACKLOG_BYTES)]


@pytest.mark.django_db
def test_no_log_or_no_answer_from_the_host_is_said_in_the_portals_words(api, member, placed, log_driver):
    body = api(member).get(log_url(placed)).json()
    assert body == {
        "text": "",
        "truncated": False,
        "size_bytes": 0,
        "available": False,
        "reason": "the host keeps no console log for it",
    }
    log_driver.error = HostUnreachable("host 'h' did not answer", detail="/etc/libvirt/secret.conf: denied")
    body = api(member).get(log_url(placed)).json()
    assert body["available"] is False
    assert body["reason"] == "the host did not answer"
    assert "secret" not in json.dumps(body)


@pytest.mark.django_db
def test_an_instance_not_placed_yet_has_no_log(api, member, project, log_driver):
    instance = make_running_instance(project)  # no disk volume yet
    body = api(member).get(log_url(instance)).json()
    assert body["available"] is False
    assert log_driver.asked == []


# --- the serial socket replays the log before the live output ----------------------------------------


class ConsoleWrittenToMeanwhile(FakeSerialConsole):
    """The guest writes while its log is read: the live stream and the log both hold those bytes."""

    def backlog(self, *, pool, name):
        self.feed(b"demo-web login: ")
        self.closed.wait(0.3)  # the reading thread takes it meanwhile
        return super().backlog(pool=pool, name=name)


@pytest.mark.django_db(transaction=True)
def test_the_serial_socket_sends_the_backlog_first_then_the_live_output_once(client, member, placed, monkeypatch):
    console = ConsoleWrittenToMeanwhile(backlog_data=b"[    0.5] Linux booting\r\ndemo-web login: ")
    monkeypatch.setattr(backends, "open_serial", lambda grant: console)
    ticket = console_ticket_issue(user=member, instance=placed, kind="serial").ticket
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("serial", ticket, headers)
        assert connected
        note, replayed = await receive_backlog(socket_)
        console.feed(b"root\r\n")
        live = await socket_.receive_from(timeout=5)
        await socket_.disconnect()
        return note, replayed, live

    note, replayed, live = async_to_sync(scenario)()
    assert note == {"type": "backlog", "bytes": len(replayed), "truncated": False, "available": True, "reason": ""}
    assert replayed == b"[    0.5] Linux booting\r\ndemo-web login: "
    assert live == b"root\r\n"  # the prompt written during the read is not shown twice
    assert console.backlogs_read == [(placed.host.storage_pool, console_log_volume_name(placed))]


@pytest.mark.django_db(transaction=True)
def test_a_console_whose_log_cannot_be_read_still_opens(client, member, project, monkeypatch):
    instance = make_running_instance(project)  # no disk volume: the grant names no log
    monkeypatch.setattr(backends, "open_serial", lambda grant: NoLogConsole())
    ticket = console_ticket_issue(user=member, instance=instance, kind="serial").ticket
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("serial", ticket, headers)
        assert connected
        note, replayed = await receive_backlog(socket_)
        await socket_.disconnect()
        return note, replayed

    note, replayed = async_to_sync(scenario)()
    assert note["available"] is False
    assert note["reason"] == "the host keeps no console log for it"
    assert replayed == b""


class NoLogConsole(FakeSerialConsole):
    """A fake console with the real console's ``backlog`` (a grant that names no log never reaches libvirt)."""

    def backlog(self, *, pool, name):
        return backends.SerialConsole.backlog(self, pool=pool, name=name)  # type: ignore[arg-type]


# --- the driver on a test:// node ---------------------------------------------------------------------


def test_reading_a_log_the_pool_does_not_hold_is_not_found(driver):
    with pytest.raises(NotFound):
        driver.read_console_log(pool=NODE_POOL, name="nobody-console.log", max_bytes=1024)


@pytest.mark.parametrize("max_bytes", [0, -1])
def test_a_read_of_no_bytes_is_refused(driver, max_bytes):
    with pytest.raises(InvalidRequest):
        driver.read_console_log(pool=NODE_POOL, name="x-console.log", max_bytes=max_bytes)


def test_a_log_on_a_host_that_keeps_no_bytes_reads_empty(driver, opener):
    driver.list_volumes(pool=NODE_POOL)  # connects
    opener.conn.storagePoolLookupByName(NODE_POOL).createXML(build_volume_xml("i1-console.log", 1, "raw"), 0)
    log = driver.read_console_log(pool=NODE_POOL, name="i1-console.log", max_bytes=1024)
    assert log == ConsoleLog(data=b"", size_bytes=0, truncated=False)


def test_deleting_a_log_takes_its_rotated_parts_and_nothing_else(driver, opener):
    driver.list_volumes(pool=NODE_POOL)
    pool = opener.conn.storagePoolLookupByName(NODE_POOL)
    names = ["i1-console.log", "i1-console.log.0", "i1-console.log.1", "i1-console.log.old", "i11-console.log"]
    for name in names:
        pool.createXML(build_volume_xml(name, 1, "raw"), 0)
    driver.delete_console_log(pool=NODE_POOL, name="i1-console.log")
    assert sorted(v.name for v in driver.list_volumes(pool=NODE_POOL)) == ["i1-console.log.old", "i11-console.log"]
    driver.delete_console_log(pool=NODE_POOL, name="i1-console.log")  # gone already: not an error


def test_deleting_a_log_in_a_missing_pool_is_an_error(driver):
    with pytest.raises(NotFound):
        driver.delete_console_log(pool="no-such-pool", name="i1-console.log")
