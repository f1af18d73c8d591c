"""The security handshake of the RFB protocol (VNC), on both sides of the console proxy.

Towards the VM's VNC server the proxy is the client and answers the VNC authentication challenge
with the password only the portal knows. Towards the browser it is the server and offers only the
security type "None": the browser is already authenticated by its console ticket, and the VNC
password never leaves the portal. After both handshakes the two sides are at the same point of the
protocol (the client's ``ClientInit`` comes next, whatever version each side spoke), so from
there on the proxy only copies bytes.

RFC 6143 describes the protocol; versions 3.3, 3.7 and 3.8 differ only in this handshake.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Awaitable, Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

ReadExactly = Callable[[int], Awaitable[bytes]]
Write = Callable[[bytes], Awaitable[None]]

SECURITY_INVALID = 0
SECURITY_NONE = 1
SECURITY_VNC_AUTH = 2

CHALLENGE_BYTES = 16
_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")
_MAX_REASON_BYTES = 4096


class RfbError(Exception):
    """The peer broke the protocol or refused us; the message says how (never with a secret in it)."""


def version_message(minor: int) -> bytes:
    return b"RFB 003.%03d\n" % minor


def parse_version(message: bytes) -> int:
    """The minor version a peer speaks, mapped onto the three that exist (3, 7 or 8)."""
    match = _VERSION.fullmatch(message)
    if match is None or int(match.group(1)) != 3:
        raise RfbError(f"not an RFB 3.x version message: {message[:12]!r}")
    minor = int(match.group(2))
    # RFC 6143 7.1.1: an unknown minor number must be treated as 3.3 (Apple's "3.889" among them).
    if minor >= 8 and minor < 10:
        return 8
    if minor == 7:
        return 7
    return 3


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """The answer to a VNC authentication challenge: the challenge encrypted with DES (ECB).

    The key is the password's first 8 bytes, padded with zeros, with the bits of every byte
    mirrored: the original VNC code fed the key to a DES routine that numbers bits the other way.
    DES is what the protocol prescribes; it protects nothing here beyond the password itself, which
    is why the VNC server only listens on the host's management address.
    """
    if len(challenge) != CHALLENGE_BYTES:
        raise RfbError(f"the VNC challenge has {len(challenge)} bytes, not {CHALLENGE_BYTES}")
    key = bytes(_reverse_bits(b) for b in password.encode("latin-1")[:8].ljust(8, b"\0"))
    # Triple DES with the same key three times is single DES (cryptography dropped single-key DES
    # names but keeps this); ECB is right here: two independent blocks, as the protocol defines.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # noqa: S305 - RFB mandates DES-ECB
    return encryptor.update(challenge) + encryptor.finalize()


async def _read_u32(read: ReadExactly) -> int:
    value: int = struct.unpack(">I", await read(4))[0]
    return value


async def _read_reason(read: ReadExactly) -> str:
    length = await _read_u32(read)
    if length > _MAX_REASON_BYTES:
        raise RfbError("the VNC server sent an overlong failure reason")
    text = (await read(length)).decode("utf-8", "replace")
    return "".join(ch for ch in text if ch.isprintable()).strip()  # QEMU ends its reasons with a NUL


async def authenticate_to_server(read: ReadExactly, write: Write, *, password: str) -> int:
    """Run the client's side of the handshake with a VNC server, up to a successful SecurityResult.

    The password answers VNC authentication. A server that offers "None" only (a domain defined before
    consoles had passwords) is accepted when the portal holds no password for it. Returns the minor
    version spoken with the server. Raises ``RfbError`` when the server refuses or misbehaves.
    """
    minor = min(parse_version(await read(12)), 8)
    await write(version_message(minor))
    if minor >= 7:
        count = (await read(1))[0]
        if count == 0:
            raise RfbError(f"the VNC server refused the connection: {await _read_reason(read)}")
        offered = set(await read(count))
        chosen = _choose_server_security(offered, password=password)
        await write(bytes([chosen]))
    else:
        chosen = await _read_u32(read)
        if chosen == SECURITY_INVALID:
            raise RfbError(f"the VNC server refused the connection: {await _read_reason(read)}")
        _choose_server_security({chosen}, password=password)
    if chosen == SECURITY_VNC_AUTH:
        challenge = await read(CHALLENGE_BYTES)
        await write(vnc_auth_response(password, challenge))
    # 3.8 always sends a result; 3.3 and 3.7 only after an authentication that could fail.
    if chosen == SECURITY_VNC_AUTH or minor >= 8:
        result = await _read_u32(read)
        if result != 0:
            reason = await _read_reason(read) if minor >= 8 else "authentication failed"
            raise RfbError(f"the VNC server refused the proxy's authentication: {reason}")
    return minor


def _choose_server_security(offered: set[int], *, password: str) -> int:
    if SECURITY_VNC_AUTH in offered and password:
        return SECURITY_VNC_AUTH
    if SECURITY_NONE in offered and not password:
        return SECURITY_NONE
    if SECURITY_NONE in offered:
        # We hold a password but the server asks for none: it is not the server we configured.
        raise RfbError("the VNC server asks for no password although the domain should have one")
    raise RfbError(f"the VNC server offers no security type the proxy speaks: {sorted(offered)}")


async def offer_no_auth_to_client(read: ReadExactly, write: Write) -> int:
    """Run the server's side of the handshake with the browser, offering only the "None" type.

    Returns the minor version the browser chose. Afterwards the browser sends its ``ClientInit``.
    """
    await write(version_message(8))
    minor = parse_version(await read(12))
    if minor >= 7:
        await write(bytes([1, SECURITY_NONE]))
        chosen = (await read(1))[0]
        if chosen != SECURITY_NONE:
            if minor >= 8:
                reason = b"only the security type None is offered"
                await write(struct.pack(">II", 1, len(reason)) + reason)
            raise RfbError(f"the browser chose security type {chosen}, which was not offered")
        if minor >= 8:
            await write(struct.pack(">I", 0))
    else:
        await write(struct.pack(">I", SECURITY_NONE))
    return minor


__all__ = [
    "CHALLENGE_BYTES",
    "SECURITY_NONE",
    "SECURITY_VNC_AUTH",
    "RfbError",
    "authenticate_to_server",
    "offer_no_auth_to_client",
    "parse_version",
    "version_message",
    "vnc_auth_response",
]
