"""Which libvirt URIs a host may be registered with, each part read the way libvirt reads it.

libvirt does more with a URI than connect: some parameters name programs it runs on the portal
server, files it reads or writes there, or checks it skips, and any parameter it does not know is
passed on to the remote daemon. So a host URI is accepted only when every part is known to be
harmless; anything else is refused, never guessed at:

* The scheme is a transport operators allow (``PORTAL_HOST_TRANSPORTS``; an entry holding ``://``
  allows that one URI exactly), and never ``ext``, which runs ``command=`` on the portal server.
* The user, host and port look like a user name, a host name or IP literal, and a port: nothing an
  ssh command line could take for an option, and no password.
* Only printable ASCII, no fragment: where parsers disagree about a URI, someone can hide a part.
* The query is split the way libvirt's ``virURIParseParams`` splits it, on ``&`` and on ``;`` (it
  splits on ``;`` only after the last ``&``; splitting on both sees every name it can see). Names
  and values are percent-decoded (``comm%61nd`` is ``command``; ``+`` stays a plus, as in libvirt),
  a decoded name must be exactly one on the transport's list (compared without regard to case, as
  libvirt compares them, so a decoded NUL cannot cut a name short), its value must have the
  expected form, and no name may appear twice (libvirt would silently take the last).

What each transport may take (``ALLOWED_PARAMETERS``):

* ``ssh``: ``socket``, ``mode``, ``proxy``, ``keyfile``, ``no_tty``;
* ``libssh2`` and ``libssh``: ``socket``, ``mode``, ``proxy``, ``keyfile``, ``sshauth``,
  ``known_hosts`` (the file the host's key is checked against) and ``known_hosts_verify=normal``;
* ``tls`` (also a URI with a host and no transport): ``pkipath``, ``tls_priority``;
* ``unix`` (also a URI with neither host nor transport): ``socket``, ``mode``;
* ``tcp`` and libvirt's ``test`` driver: nothing.

Refused everywhere, on purpose:

* ``command``: the program run in place of ssh (or by ``ext``), on the portal server, as the portal.
* ``netcat``: a program run on the remote host through the portal's ssh key; libvirt's own choice
  there (``virt-ssh-helper`` or ``nc``, see ``proxy``) is all the portal needs.
* ``name``: a second URI for the remote daemon to open, out of reach of these checks (the path of
  the URI already chooses the driver: ``qemu+ssh://h/system`` opens ``qemu:///system``).
* ``known_hosts_verify`` other than ``normal``: ``auto`` accepts any key a host shows the first
  time and writes it into the ``known_hosts`` file (a write anywhere the portal may write), and
  ``ignore`` skips the check. With ``normal`` libvirt asks the caller about an unknown key; the
  portal gives it nobody to ask, so the connection fails and nothing is written.
* ``no_verify``: it stops checking who the host is (ssh host key, TLS certificate), and the portal
  sends images and console passwords to it. Add the host's key or CA instead.
* ``authfile`` (a credentials file read on the portal server), ``auth``, ``no_sanity``, and any
  other name (libvirt would pass it on to the remote daemon).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from django.conf import settings

from portal import errors

# The parts of ``scheme://[user@]host[:port][/path][?query]``, split at the characters that end them.
_URI = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    r"(?:(?P<user>[^@/?]*)@)?"
    r"(?P<host>\[[^\]/?]*\]|[^:/?]*)"
    r"(?::(?P<port>[^/?]*))?"
    r"(?P<path>/[^?]*)?"
    r"(?:\?(?P<query>.*))?",
    re.DOTALL,
)
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PATH = re.compile(r"/[A-Za-z0-9._~/+@-]*")
_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _one_of(*choices: str) -> Callable[[str], bool]:
    return lambda value: value in choices


def _absolute_path(value: str) -> bool:
    return _PATH.fullmatch(value) is not None


def _ssh_auth_methods(value: str) -> bool:
    return all(method in {"agent", "privkey", "password", "keyboard-interactive"} for method in value.split(","))


def _tls_priority(value: str) -> bool:
    # GnuTLS priority strings: keywords joined by ':' with '+', '-', '!' or '%' in front.
    return re.fullmatch(r"[A-Za-z0-9:+%!._-]+", value) is not None


@dataclass(frozen=True)
class _Parameter:
    check: Callable[[str], bool]
    expected: str


_PARAMETERS = {
    "socket": _Parameter(_absolute_path, "an absolute path"),
    "keyfile": _Parameter(_absolute_path, "an absolute path"),
    "pkipath": _Parameter(_absolute_path, "an absolute path"),
    "mode": _Parameter(_one_of("auto", "legacy", "direct"), "auto, legacy or direct"),
    "proxy": _Parameter(_one_of("auto", "netcat", "native"), "auto, netcat or native"),
    "no_tty": _Parameter(_one_of("0", "1"), "0 or 1"),
    "known_hosts": _Parameter(_absolute_path, "an absolute path"),
    "known_hosts_verify": _Parameter(_one_of("normal"), "normal (auto and ignore accept any host key)"),
    "sshauth": _Parameter(_ssh_auth_methods, "agent, privkey, password or keyboard-interactive, comma-separated"),
    "tls_priority": _Parameter(_tls_priority, "a GnuTLS priority string"),
}
_SSH = frozenset({"socket", "mode", "proxy", "keyfile"})
ALLOWED_PARAMETERS: dict[str, frozenset[str]] = {
    "ssh": _SSH | {"no_tty"},
    "libssh2": _SSH | {"sshauth", "known_hosts", "known_hosts_verify"},
    "libssh": _SSH | {"sshauth", "known_hosts", "known_hosts_verify"},
    "tls": frozenset({"pkipath", "tls_priority"}),
    "unix": frozenset({"socket", "mode"}),
    "tcp": frozenset(),
    "test": frozenset(),
}
"""The parameters each transport may carry; every other name is refused (see the module's docstring)."""


def _refuse(message: str) -> errors.Invalid:
    return errors.Invalid.for_field("uri", message)


def check_uri(uri: str) -> None:
    """Refuse a libvirt URI the portal must not open; see the module's docstring for exactly what passes."""
    allowed = list(settings.HOST_TRANSPORTS)
    if uri in allowed:  # an operator allowed this very URI
        return
    if any(not 0x21 <= ord(char) <= 0x7E or char in "\\#\"'`<>{}|^" for char in uri):
        raise _refuse("a host URI may hold only printable ASCII characters, with no space, '#', quote or backslash")
    parts = _URI.fullmatch(uri)
    if parts is None:
        raise _refuse(f"not a libvirt URI (scheme://[user@]host[/path][?parameters]); allowed: {', '.join(allowed)}")
    scheme = parts["scheme"].lower()
    driver, plus, transport = scheme.partition("+")
    if transport == "ext":
        raise _refuse("the ext transport runs a program on the portal server")
    if scheme not in {entry.lower() for entry in allowed if "://" not in entry}:
        listed = ", ".join(allowed)
        raise _refuse(f"transport '{scheme}' is not allowed here (allowed: {listed}; PORTAL_HOST_TRANSPORTS)")
    _check_authority(user=parts["user"], host=parts["host"], port=parts["port"])
    if parts["path"] is not None and not _absolute_path(parts["path"]):
        raise _refuse("the URI's path may hold only letters, digits and . _ ~ / + @ -")
    if not plus:
        # Without a transport: libvirt's test driver runs in the portal itself; any other driver is
        # reached over TLS when the URI names a host and over the local socket when it does not.
        transport = "test" if driver == "test" else ("tls" if parts["host"] else "unix")
    _check_parameters(parts["query"] or "", transport=transport)


def _check_authority(*, user: str | None, host: str, port: str | None) -> None:
    if user is not None and not _USER.fullmatch(user):
        raise _refuse("the user must be letters, digits and . _ - (not starting with '-'), with no password")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _refuse("the host must be a host name or an IP address") from None
    elif host and not _HOSTNAME.fullmatch(host):
        raise _refuse("the host must be a host name or an IP address")
    if port is not None and not (host and port.isdigit() and 1 <= int(port) <= 65535):
        raise _refuse("the port must be a number from 1 to 65535, after a host")


def _decoded(text: str, what: str) -> str:
    """``text`` percent-decoded as libvirt decodes it (``+`` stays a plus); refused unless it is plain ASCII."""
    if _PERCENT_ESCAPE.search(text):
        raise _refuse(f"a '%' in {what} must start a percent escape (%XX)")
    raw = unquote_to_bytes(text)
    if any(not 0x21 <= byte <= 0x7E for byte in raw):
        raise _refuse(f"{what} may decode only to printable ASCII characters, with no space")
    return raw.decode("ascii")


def _check_parameters(query: str, *, transport: str) -> None:
    allowed = ALLOWED_PARAMETERS.get(transport)
    if allowed is None:
        raise _refuse(f"transport '{transport}' is not one the portal knows how to vet")
    seen: set[str] = set()
    for section in re.split("[&;]", query):
        if not section:
            continue  # "&&": libvirt skips empty sections too
        raw_name, _equals, raw_value = section.partition("=")
        if not raw_name:
            raise _refuse("a URI parameter without a name is not allowed")
        name = _decoded(raw_name, "a URI parameter's name").lower()
        if name == "command":
            raise _refuse("a host URI may not name a command to run (command=)")
        if name not in allowed:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise _refuse(f"parameter '{name}' is not allowed for {transport} hosts (allowed: {accepted})")
        if name in seen:
            raise _refuse(f"parameter '{name}' is given twice")
        seen.add(name)
        rule = _PARAMETERS[name]
        if not rule.check(_decoded(raw_value, f"parameter '{name}'")):
            raise _refuse(f"parameter '{name}' must be {rule.expected}")


__all__ = ["ALLOWED_PARAMETERS", "check_uri"]
