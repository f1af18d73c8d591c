"""Host URIs, read the way libvirt reads them: nothing in a URI may make the portal run, read or write
something on its own server, or hand the remote daemon a parameter the portal did not vet."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portal import errors
from provisioning.consoles import backends
from provisioning.consoles.tickets import ConsoleGrant
from provisioning.models import Host
from provisioning.services import hosts
from provisioning.services.hosts import check_uri
from tests.factories import HostFactory


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A program that leaves a marker file when anything runs it."""
    path = tmp_path / "x.sh"
    path.write_text(f"#!/bin/sh\ntouch {tmp_path / 'ran'}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize(
    "uri",
    [
        # libvirt splits the query on ';' as well as '&' ...
        "qemu+ssh://127.0.0.1/system?no_tty=1;command={script}",
        "qemu+ssh://127.0.0.1/system?no_tty=1&mode=auto;Command={script}",
        # ... percent-decodes names (and stops a C string at a decoded NUL) ...
        "qemu+ssh://127.0.0.1/system?comm%61nd={script}",
        "qemu+ssh://127.0.0.1/system?%63OMMAND={script}",
        "qemu+ssh://127.0.0.1/system?command%00tail={script}",
        # ... and compares them without regard to case.
        "qemu+libssh2://127.0.0.1/system?COMMAND={script}",
        "qemu+ext:///system?command={script}",
        "QEMU+EXT:///system?command={script}",
    ],
)
def test_a_uri_that_would_run_a_program_on_the_portal_server_is_refused(operator, script, uri):
    with pytest.raises(errors.Invalid) as refused:
        hosts.host_register(user=operator, name="evil", uri=uri.format(script=script))
    assert list(refused.value.fields) == ["uri"]
    assert not (script.parent / "ran").exists()  # nothing ran
    assert not Host.objects.exists()


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        # Runs a program of the caller's choice on the remote host, over the portal's ssh key.
        ("qemu+ssh://h.example/system?netcat=/tmp/x.sh", "'netcat'"),
        ("qemu+libssh2://h.example/system?net%63at=/tmp/x.sh", "'netcat'"),
        # A second URI for the remote daemon, out of reach of these checks.
        ("qemu+ssh://h.example/system?name=test:///etc/shadow", "'name'"),
        # Accept any new host key and write it into the known_hosts file (a write anywhere the
        # portal can write), or turn off checking who the host is.
        ("qemu+libssh2://h.example/system?known_hosts=/etc/cron.d/x&known_hosts_verify=auto", "known_hosts_verify"),
        ("qemu+libssh2://h.example/system?known_hosts_verify=ignore", "known_hosts_verify"),
        ("qemu+ssh://h.example/system?known_hosts=/etc/cron.d/x", "'known_hosts'"),
        ("qemu+ssh://h.example/system?no_verify=1", "'no_verify'"),
        ("qemu+tls://h.example/system?no_verify=1", "'no_verify'"),
        # A local credentials file; and anything libvirt would pass on to the remote daemon.
        ("qemu+tls://h.example/system?authfile=/etc/shadow", "'authfile'"),
        ("qemu+ssh://h.example/system?whatever=1", "'whatever'"),
        # A parameter of another transport.
        ("qemu+unix:///system?keyfile=/root/.ssh/id_rsa", "'keyfile'"),
        ("qemu+tls://h.example/system?socket=/run/x", "'socket'"),
        ("test:///default?socket=/run/x", "'socket'"),
        # Values of the wrong form.
        ("qemu+ssh://h.example/system?no_tty=yes", "no_tty"),
        ("qemu+ssh://h.example/system?mode=other", "mode"),
        ("qemu+unix:///system?socket=relative/sock", "socket"),
        ("qemu+unix:///system?socket=/run/a%20b", "socket"),
        ("qemu+libssh2://h.example/system?sshauth=privkey,gssapi", "sshauth"),
        # Ambiguous: which one libvirt would use is not for the portal to guess.
        ("qemu+unix:///system?socket=/run/a&socket=/run/b", "twice"),
        ("qemu+unix:///system?socket=/run/a;SOCKET=/run/b", "twice"),
        ("qemu+unix:///system?=/run/a", "without a name"),
        ("qemu+unix:///system?socket=/run/%zz", "percent"),
        # Parts that an ssh command line could read as options, or that parsers read differently.
        ("qemu+ssh://-oProxyCommand=x/system", "host"),
        ("qemu+ssh://-oProxyCommand=x@h.example/system", "user"),
        ("qemu+ssh://h.example:99999/system", "port"),
        ("qemu+ssh://h.example/system#;command=/tmp/x.sh", "character"),
        ("qemu+ssh://h.example/sys tem", "character"),
        ("qemu+ssh://h.example/system?socket=/run/\u00e9", "character"),
        ("qemu+ssh://user:secret@h.example/system", "user"),
    ],
)
def test_a_parameter_or_part_not_on_the_transports_list_is_refused(uri, reason):
    with pytest.raises(errors.Invalid, match=reason) as refused:
        check_uri(uri)
    assert list(refused.value.fields) == ["uri"]


@pytest.mark.parametrize(
    "uri",
    [
        "qemu:///system",
        "qemu+unix:///system?socket=/srv/portal/host-b/libvirt-sock",
        "qemu+unix:///system?socket=/srv/portal/host-b/libvirt-sock&mode=direct",
        "qemu+ssh://root@hv1.example.org/system",
        "qemu+ssh://portal@hv1.example.org:2222/system?keyfile=/etc/portal/id_ed25519&no_tty=1&proxy=native",
        "qemu+ssh://portal@[2001:db8::5]/system?mode=legacy",
        "qemu+libssh2://portal@10.0.0.5/system?sshauth=privkey,agent&keyfile=/etc/portal/id_ed25519",
        "qemu+libssh2://root@127.0.0.1:2222/system?socket=/var/lib/portal-test/run.Ab12/h2/libvirt-sock"
        "&keyfile=/var/lib/portal-test/run.Ab12/ssh/client_key&known_hosts=/var/lib/portal-test/run.Ab12/ssh/known_hosts"
        "&known_hosts_verify=normal&sshauth=privkey&proxy=netcat",
        "qemu+tls://hv1.example.org/system?pkipath=/etc/portal/pki&tls_priority=NORMAL:-VERS-ALL:%2BVERS-TLS1.3",
        "qemu+tls://hv1.example.org/system?tls_priority=NORMAL:%25COMPAT",
        "test:///default",
    ],
)
def test_what_each_transport_needs_is_accepted(uri):
    check_uri(uri)


def test_an_operator_may_allow_one_exact_uri(settings):
    settings.HOST_TRANSPORTS = ["qemu:///system"]
    check_uri("qemu:///system")
    with pytest.raises(errors.Invalid, match="transport 'qemu\\+unix' is not allowed"):
        check_uri("qemu+unix:///system?socket=/run/x")


def test_ext_is_refused_even_when_it_is_configured(settings):
    settings.HOST_TRANSPORTS = ["qemu+ext", "qemu+tcp"]
    with pytest.raises(errors.Invalid, match="runs a program"):
        check_uri("qemu+ext:///system")
    check_uri("qemu+tcp://hv1.example.org/system")
    with pytest.raises(errors.Invalid, match="'socket'"):
        check_uri("qemu+tcp://hv1.example.org/system?socket=/x")


def test_a_uri_saved_before_the_rules_tightened_is_not_opened(db, script):
    """A row stored by an older portal (or by hand): the periodic refresh must not run its command."""
    host = HostFactory(name="old", uri=f"qemu+ssh://127.0.0.1/system?no_tty=1;command={script}", healthy=True)
    hosts.host_refresh(host=host)
    assert not (script.parent / "ran").exists()
    saved = Host.objects.get(pk=host.pk)
    assert saved.healthy is False
    assert saved.health_error == "the host's URI is refused: a host URI may not name a command to run (command=)"


def test_a_serial_console_does_not_open_a_uri_the_rules_refuse(script):
    """The console proxy connects to the host itself: the same rules hold there."""
    grant = ConsoleGrant(
        ticket_id=1,
        kind="serial",
        user_id=1,
        instance_id=1,
        stack_id=1,
        host_uri=f"qemu+ssh://127.0.0.1/system?no_tty=1;command={script}",
        console_address="127.0.0.1",
        domain_name="nothing",
        vnc_port=None,
        vnc_password="",
        stack_expires_at=datetime.now(UTC),
    )
    with pytest.raises(backends.ConsoleUnreachable, match="cannot open the serial console"):
        backends.open_serial(grant)
    assert not (script.parent / "ran").exists()
