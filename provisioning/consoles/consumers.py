"""What the console websockets share (``vnc_socket``: ``/ws/consoles/vnc/?ticket=…``; ``serial_socket``:
``/ws/consoles/serial/?ticket=…``).

Each socket is authenticated by its ticket (``provisioning.consoles.tickets``), after the Origin check
in front of every socket (``portal.socket_origin``) and, when the socket carries a session, a check
that it is the ticket's user. Bytes go straight
between the websocket and the VM's console in this process; nothing passes the channel layer,
which only tells the consumer that its stack changed (``stack_group``): then, and every
``HEARTBEAT_SECONDS``, and when the lease runs out, the session checks whether it may go on.

Flow control: under daphne, the browser's transport pauses the console while its write buffer is
full (``browser_flow``), and the VM's side is not read meanwhile: a browser that reads slowly slows
the VM down instead of growing daphne's memory (elsewhere, as under channels' test communicator, only
RFB's own pacing remains: an update is sent when the browser asked for one). Data from the browser is
written to the VM with flow control, so a VM that stops reading stops the proxy from taking more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import parse_qs

from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from portal.client_address import client_address
from portal.socket_origin import header
from provisioning.consoles import backends, browser_flow
from provisioning.consoles.tickets import (
    CLOSE_BAD_TICKET,
    CLOSE_ENDED,
    CLOSE_UNREACHABLE,
    HEARTBEAT_SECONDS,
    ConsoleGrant,
    ConsoleRefused,
    console_session_close,
    console_session_heartbeat,
    console_ticket_redeem,
)
from provisioning.progress import stack_group

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000


class _ScopeMeta:
    """What ``portal.client_address`` reads from a request, taken from a websocket's scope."""

    def __init__(self, scope: dict[str, Any]) -> None:
        client = scope.get("client") or ("", 0)
        self.META: dict[str, Any] = {
            "REMOTE_ADDR": client[0] or "",
            "HTTP_X_FORWARDED_FOR": header(scope, b"x-forwarded-for") or "",
        }


class ConsoleConsumer(AsyncWebsocketConsumer):
    """What both consoles share: the checks before the socket opens, the watch while it is open."""

    kind: ClassVar[str]

    grant: ConsoleGrant | None = None
    _tasks: list[asyncio.Task[None]]
    _ended: bool
    _flow: browser_flow.BrowserFlow | None = None
    _browser_send: browser_flow.Send | None = None
    bytes_to_vm = 0
    bytes_from_vm = 0

    async def connect(self) -> None:
        self._tasks = []
        self._ended = False
        ticket = (parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("ticket") or [""])[0]
        if not ticket:
            await self.close(code=CLOSE_BAD_TICKET)
            return
        try:
            self.grant = await database_sync_to_async(console_ticket_redeem)(
                ticket=ticket,
                kind=self.kind,
                session_user=self.scope.get("user") or AnonymousUser(),
                client_address=_client_address(self.scope),
            )
        except ConsoleRefused as refused:
            logger.info("console refused (%s): %s", refused.code, refused.reason)
            await self.close(code=refused.code)
            return
        try:
            await self.open_console(self.grant)
        except Exception as exc:
            if isinstance(exc, backends.ConsoleUnreachable):
                logger.warning("console of instance %s unreachable: %s (%s)", self.grant.instance_id, exc, exc.detail)
                reason = f"unreachable: {exc}"
            else:
                logger.exception("console of instance %s could not be opened", self.grant.instance_id)
                reason = "unreachable: the console proxy failed"
            self._ended = True
            # The detail (addresses, libvirt's text) is in the log for operators, not in the audit trail.
            await self._record_close(reason)
            await self.close(code=CLOSE_UNREACHABLE)
            return
        try:
            await self.channel_layer.group_add(stack_group(self.grant.stack_id), self.channel_name)
        except Exception as exc:
            # Without the nudge the heartbeat still ends the session, within HEARTBEAT_SECONDS.
            logger.warning("console of instance %s will not hear of stack changes: %s", self.grant.instance_id, exc)
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol="binary" if "binary" in offered else None)
        self._browser_send = browser_flow.server_send(self.base_send) or self.base_send
        self._flow = browser_flow.attach(self.base_send, pause=self.pause_console, resume=self.resume_console)
        self._tasks = [
            asyncio.create_task(self._guarded(self.run_console)),
            asyncio.create_task(self._guarded(self._watch)),
        ]

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler, a thread hop per frame;
        # frames from the browser touch no database, so they skip it.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.grant is None or self._ended:
            return
        data = bytes_data if bytes_data is not None else (text_data or "").encode()
        if data:
            self.bytes_to_vm += len(data)
            await self.from_browser(data)

    async def disconnect(self, code: int) -> None:
        await self._end(f"the browser closed the socket ({code})", close_code=None)

    async def stack_changed(self, event: dict[str, Any]) -> None:
        """The stack changed (the group message every status change sends): go on only if it may."""
        await self._check_may_go_on()

    # --- what each kind of console provides ---------------------------------------------------------

    async def open_console(self, grant: ConsoleGrant) -> None:
        raise NotImplementedError

    async def run_console(self) -> None:
        """Pipe bytes until either side ends."""
        raise NotImplementedError

    async def from_browser(self, data: bytes) -> None:
        raise NotImplementedError

    async def close_console(self) -> None:
        raise NotImplementedError

    def pause_console(self) -> None:
        """The browser's side is full: stop taking data from the VM until ``resume_console``."""
        raise NotImplementedError

    def resume_console(self) -> None:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------------

    async def send_to_browser(self, data: bytes) -> None:
        """One binary message, through daphne's own ``send`` where there is one (see ``browser_flow``)."""
        assert self._browser_send is not None
        try:
            await self._browser_send({"type": "websocket.send", "bytes": data})
        except Disconnected:
            # The browser left between two reads from the VM; its disconnect message is still queued.
            await self._end("the browser closed the socket", close_code=None)

    async def _guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("console of instance %s failed", self.grant.instance_id if self.grant else "?")
            await self._end(f"proxy error: {exc.__class__.__name__}", close_code=CLOSE_UNREACHABLE)

    async def _watch(self) -> None:
        while not self._ended:
            assert self.grant is not None
            until_lease_end = (self.grant.stack_expires_at - timezone.now()).total_seconds()
            await asyncio.sleep(max(0.0, min(HEARTBEAT_SECONDS, until_lease_end + 0.5)))
            await self._check_may_go_on()

    async def _check_may_go_on(self) -> None:
        if self.grant is None or self._ended:
            return
        state = await database_sync_to_async(console_session_heartbeat)(ticket_id=self.grant.ticket_id)
        if state.expires_at is not None and state.expires_at != self.grant.stack_expires_at:
            self.grant = _with_expiry(self.grant, state.expires_at)  # the lease was renewed
        if state.end_reason is not None:
            await self._end(state.end_reason, close_code=CLOSE_ENDED)

    async def _console_ended(self, reason: str) -> None:
        """The VM's end closed: say why, if the stack's end (deleted, lease over) is the cause."""
        if self.grant is None or self._ended:
            return
        state = await database_sync_to_async(console_session_heartbeat)(ticket_id=self.grant.ticket_id)
        if state.end_reason is not None:
            await self._end(state.end_reason, close_code=CLOSE_ENDED)
        else:
            await self._end(reason, close_code=CLOSE_NORMAL)

    async def _end(self, reason: str, *, close_code: int | None) -> None:
        """End the session once: stop the pipes, close the VM's console and the socket, audit it."""
        if self.grant is None or self._ended:
            return
        self._ended = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._flow is not None:
            self._flow.detach()
        # The session ends whatever these say, but an operator must be able to see why one failed.
        try:
            await self.close_console()
        except Exception:
            logger.exception("console of instance %s did not close cleanly", self.grant.instance_id)
        try:
            await self.channel_layer.group_discard(stack_group(self.grant.stack_id), self.channel_name)
        except Exception:
            logger.exception("console of instance %s stays in its stack's group", self.grant.instance_id)
        if close_code is not None:
            await self.close(code=close_code, reason=reason[:120])
        await self._record_close(reason)

    async def _record_close(self, reason: str) -> None:
        assert self.grant is not None
        await database_sync_to_async(console_session_close)(
            ticket_id=self.grant.ticket_id,
            reason=reason,
            bytes_to_vm=self.bytes_to_vm,
            bytes_from_vm=self.bytes_from_vm,
        )


def _with_expiry(grant: ConsoleGrant, expires_at: Any) -> ConsoleGrant:
    return replace(grant, stack_expires_at=expires_at)


def _client_address(scope: dict[str, Any]) -> str:
    return client_address(_ScopeMeta(scope))


__all__ = ["ConsoleConsumer"]
