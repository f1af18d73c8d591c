"""Backpressure towards the browser under daphne, and daphne's own ``send`` for the console's bytes.

ASGI has no flow control: a websocket ``send`` returns at once, and daphne queues the bytes in the
Twisted transport of the browser's connection, so a VM that draws faster than the browser reads
would grow daphne's memory without bound. Twisted's own remedy is a push producer registered on the
transport, which the transport pauses when its write buffer passes ``bufferSize`` and resumes once
the buffer has drained; ``attach`` registers one that stops and restarts reading from the VM.

None of this is ASGI. It relies on what daphne 4 and channels 4 do: daphne's ``send`` is
``functools.partial(server.handle_reply, protocol)``, whose protocol (autobahn's) has the Twisted
transport; channels' session middleware keeps the ``send`` it wraps as ``real_send``; daphne runs
Twisted's asyncio reactor on the loop that runs the application, so the transport calls the producer
in the loop's thread. Each of these is checked, and where one does not hold (another server, or
channels' WebsocketCommunicator in the tests) the console runs as before: without flow control.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

# How much the browser's transport hands the kernel per write: Twisted's default, 128 KiB, means one
# system call, and one trip through the event loop, per 128 KiB. Set on the console's connections only.
# The pause threshold (the transport's ``bufferSize``, 64 KiB) stays: a larger one cost more CPU per
# byte in the benchmark (bigger buffers joined and freed), for no more throughput.
BROWSER_SEND_LIMIT_BYTES = 1024 * 1024
_MAX_WRAPPERS = 8


def server_send(send: Send) -> Send | None:
    """Daphne's own ``send`` under channels' wrappers, or None when ``send`` is not daphne's.

    After ``accept`` the wrappers add nothing to a websocket's messages (the session middleware acts
    on ``websocket.accept`` only) but a few coroutine calls each, which add up at a VNC stream's rate.
    """
    found = _daphne_send(send)
    return found[0] if found is not None else None


def _daphne_send(send: Send) -> tuple[Send, Any] | None:
    """Daphne's ``send`` and the websocket protocol it is bound to, found under channels' wrappers."""
    for _ in range(_MAX_WRAPPERS):
        if isinstance(send, functools.partial):
            if getattr(send.func, "__name__", "") != "handle_reply" or len(send.args) != 1:
                return None
            protocol = send.args[0]
            return (send, protocol) if hasattr(protocol, "transport") else None
        inner = getattr(getattr(send, "__self__", None), "real_send", None)
        if not callable(inner):
            return None
        send = inner
    return None


class BrowserFlow:
    """A Twisted push producer on the browser's transport: pauses and resumes the console's source."""

    def __init__(self, transport: Any, *, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._transport = transport
        self._pause = pause
        self._resume = resume
        self.paused = False

    # Twisted's IPushProducer; the transport calls these, pausing on every write while its buffer is full.
    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self._pause()

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self._resume()

    def stopProducing(self) -> None:
        # The browser's connection is gone; the consumer hears of it from daphne and ends the session.
        self.resumeProducing()

    def detach(self) -> None:
        """No more pauses: the console is closing."""
        if getattr(self._transport, "producer", None) is self:
            self._transport.unregisterProducer()
        self.paused = False


def attach(send: Send, *, pause: Callable[[], None], resume: Callable[[], None]) -> BrowserFlow | None:
    """Register ``pause``/``resume`` as the producer of the browser's transport; None where it cannot be."""
    found = _daphne_send(send)
    transport = getattr(found[1], "transport", None) if found is not None else None
    if transport is None or not _runs_on_this_loop(transport):
        logger.debug("console without flow control towards the browser: not daphne on this event loop")
        return None
    try:
        if not _free_of_foreign_producers(transport):
            logger.info("console without flow control towards the browser: its transport has another producer")
            return None
        flow = BrowserFlow(transport, pause=pause, resume=resume)
        transport.registerProducer(flow, True)
        _raise_send_limit(transport)
    except Exception:  # a Twisted or daphne that works otherwise: the console still works, as before
        logger.exception("console without flow control towards the browser")
        return None
    return flow


def _runs_on_this_loop(transport: Any) -> bool:
    """Twisted calls the producer from its reactor: safe only if that reactor is this asyncio loop."""
    reactor = getattr(transport, "reactor", None)
    return getattr(reactor, "_asyncioEventloop", None) is asyncio.get_running_loop()


def _free_of_foreign_producers(transport: Any) -> bool:
    """Unregister daphne's HTTP channel, which stays the producer after the upgrade; refuse any other."""
    if not all(callable(getattr(transport, name, None)) for name in ("registerProducer", "unregisterProducer")):
        return False
    producer = getattr(transport, "producer", None)
    if producer is None:
        return True
    from twisted.web.http import HTTPChannel  # only under daphne, where Twisted is running already

    if not isinstance(producer, HTTPChannel):
        return False
    transport.unregisterProducer()
    if getattr(transport, "producerPaused", False):
        # The channel had stopped reading from the browser while the buffer was full; the drain that
        # would have restarted it will now go to the console's producer.
        transport.producerPaused = False
        transport.resumeProducing()
    return True


def _raise_send_limit(transport: Any) -> None:
    if isinstance(getattr(transport, "SEND_LIMIT", None), int):
        transport.SEND_LIMIT = BROWSER_SEND_LIMIT_BYTES


__all__ = ["BrowserFlow", "attach", "server_send"]
