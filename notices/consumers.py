"""Websocket for the navigation's unread count: the count now, and again whenever it changes.

Joins the user's own group (``notices.live.user_group``); a nudge carries nothing, and the socket
answers with the count it reads itself through the same scoping as the list, so it never says
more than the user's own notifications would.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from notices.live import user_group
from notices.models import Notification

# Application close codes (4000-4999) tell the page's script to stop reconnecting and keep polling.
CLOSE_NOT_SIGNED_IN = 4401


class UnreadCountConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_count()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def notices_changed(self, event: dict[str, Any]) -> None:
        await self._send_count()

    async def _send_count(self) -> None:
        await self.send_json({"type": "unread", "count": await self._unread_count()})

    @database_sync_to_async
    def _unread_count(self) -> int:
        return Notification.objects.mine(self.scope["user"]).unread().count()
