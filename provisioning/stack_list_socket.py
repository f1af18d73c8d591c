"""Websocket for the stacks list: a nudge whenever one of the stacks its user may see changes.

The socket joins one group per project the user may see (``progress.project_stacks_group``), and
checks each nudge against the user's current rights before passing it on, so a membership
removed while the socket is open stops the nudges at once. A project the user joins later is
heard after the next reconnect; until then the list's slow poll covers it.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portal.models import Project
from provisioning.models import Stack
from provisioning.progress import project_stacks_group

# Application close codes (4000-4999) tell the page's script to stop reconnecting and keep polling.
CLOSE_NOT_SIGNED_IN = 4401


class StackListConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        # Not ``self.groups``: the base class would join those itself, before the rights are read.
        self.watched_groups = [project_stacks_group(project_id) for project_id in await self._visible_project_ids()]
        for group in self.watched_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "watched_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def stack_changed(self, event: dict[str, Any]) -> None:
        stack_id = int(event["stack"])
        if await self._may_see(stack_id):
            await self.send_json({"type": "changed", "stack": stack_id})

    @database_sync_to_async
    def _visible_project_ids(self) -> list[int]:
        return list(Project.objects.visible_to(self.scope["user"]).values_list("pk", flat=True))

    @database_sync_to_async
    def _may_see(self, stack_id: int) -> bool:
        return Stack.objects.visible_to(self.scope["user"]).filter(pk=stack_id).exists()
