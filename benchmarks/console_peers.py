"""The fake VNC servers ``benchmarks/console.py`` measures against, run as a process of their own.

Run:  CONSOLE_BENCH_PASSWORD=... .venv/bin/python -m benchmarks.console_peers

Two servers on 127.0.0.1, on ports the kernel picks, printed as one line (``ports VNC RAW``):
  vnc  RFB 3.8 with VNC authentication, as a VM's QEMU server is set up by the portal: the console
       proxy answers the challenge with the password. Then ClientInit/ServerInit.
  raw  no security handshake (websockify does no RFB authentication and passes bytes as they are),
       then the same ClientInit/ServerInit.
After that both speak the same little command protocol, a 5-byte header (a letter and a big-endian
u32) from the client:
  S n  stream n bytes towards the client as framebuffer-update-sized writes (64 KiB to 1 MiB, the
       same sequence every time), each written and drained before the next.
  E n  read n bytes and write them straight back (a key or pointer event and the small update it
       causes: the latency probe).
Only ``provisioning.consoles.rfb`` is imported from the portal (no Django). The process runs until
it is terminated.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from provisioning.consoles import rfb

KIB = 1024
# What one FramebufferUpdate of a changing screen weighs: from a small damaged region to a full raw frame.
UPDATE_SIZES = (64 * KIB, 256 * KIB, 1024 * KIB, 128 * KIB, 512 * KIB, 96 * KIB, 768 * KIB, 192 * KIB)
HEADER = struct.Struct(">cI")
NAME = b"bench"
# ServerInit: 1024x768, 32 bpp, depth 24, little-endian true colour 8:8:8, then the desktop name.
SERVER_INIT = (
    struct.pack(">HHBBBBHHHBBB3x", 1024, 768, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
    + struct.pack(">I", len(NAME))
    + NAME
)
CHALLENGE = bytes(range(16))


def update_sizes(total: int) -> Iterator[int]:
    """The sizes of the writes that make up ``total`` bytes: ``UPDATE_SIZES`` over and over, the last one cut."""
    left = total
    for size in itertools.cycle(UPDATE_SIZES):
        if left <= 0:
            return
        yield min(size, left)
        left -= size


async def _vnc_security(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, password: str) -> bool:
    writer.write(rfb.version_message(8))
    if await reader.readexactly(12) != rfb.version_message(8):
        return False
    writer.write(bytes([1, rfb.SECURITY_VNC_AUTH]))
    if (await reader.readexactly(1))[0] != rfb.SECURITY_VNC_AUTH:
        return False
    writer.write(CHALLENGE)
    if await reader.readexactly(16) != rfb.vnc_auth_response(password, CHALLENGE):
        reason = b"Authentication failed"
        writer.write(struct.pack(">II", 1, len(reason)) + reason)
        await writer.drain()
        return False
    writer.write(struct.pack(">I", 0))
    return True


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> None:
    """ClientInit/ServerInit, then commands until the client goes."""
    await reader.readexactly(1)  # ClientInit
    writer.write(SERVER_INIT)
    await writer.drain()
    view = memoryview(payload)
    while True:
        op, count = HEADER.unpack(await reader.readexactly(HEADER.size))
        if op == b"S":
            for size in update_sizes(count):
                writer.write(view[:size])
                await writer.drain()
        elif op == b"E":
            writer.write(await reader.readexactly(count))
            await writer.drain()
        else:
            return


def _handler(payload: bytes, password: str | None):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if password is None or await _vnc_security(reader, writer, password):
                await _serve(reader, writer, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def main(password: str) -> None:
    payload = os.urandom(max(UPDATE_SIZES))
    vnc = await asyncio.start_server(_handler(payload, password), "127.0.0.1", 0)
    raw = await asyncio.start_server(_handler(payload, None), "127.0.0.1", 0)
    ports = [server.sockets[0].getsockname()[1] for server in (vnc, raw)]
    print("ports", *ports, flush=True)
    async with vnc, raw:
        await asyncio.gather(vnc.serve_forever(), raw.serve_forever())


if __name__ == "__main__":
    asyncio.run(main(os.environ["CONSOLE_BENCH_PASSWORD"]))
