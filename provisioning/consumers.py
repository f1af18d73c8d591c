"""Websocket for a stack page: a message each time the stack's status or progress changes.

The stacks list has its own socket (``provisioning.stack_list_socket``); both carry only "this
stack changed", and the page then re-reads what it shows through its ordinary, scoped views.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from provisioning.models import Stack
from provisioning.progress import stack_group

# Application close codes (4000-4999): the page stops trying and keeps polling.
CLOSE_NOT_FOUND = 4404


class StackProgressConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.stack_id = int(self.scope["url_route"]["kwargs"]["stack_id"])
        if not await self._may_watch():
            # Not signed in, or not one of the user's stacks: the same answer, so nothing leaks.
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = stack_group(self.stack_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def stack_changed(self, event: dict[str, Any]) -> None:
        # Rights are read again: someone removed from the project while watching hears no more.
        if not await self._may_watch():
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.send_json({"type": "changed", "stack": event["stack"]})

    @database_sync_to_async
    def _may_watch(self) -> bool:
        return Stack.objects.visible_to(self.scope["user"]).filter(pk=self.stack_id).exists()
