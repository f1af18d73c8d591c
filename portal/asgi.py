"""ASGI entry point, served by daphne: HTTP through Django, websockets through Channels.

Websockets carry the Django session, so a consumer sees the same user, and the same scoping, as
the page that opened it. Every socket first passes one Origin check (``portal.socket_origin``):
scheme, host and port must be the portal's own (or listed in ``CONSOLE_ALLOWED_ORIGINS``), so no
other page, a tenant's published endpoint included, can open a socket as its visitor. A handshake
without Origin (not a browser) goes on to the socket's own authentication: the session, or a console's
one-time ticket. A path no route knows is refused (4404) rather than failing the server.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

# Imported after the app registry is ready: consumers import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from notices.consumers import UnreadCountConsumer  # noqa: E402
from portal.socket_origin import OriginGuard  # noqa: E402
from provisioning.consoles.serial_socket import SerialConsoleConsumer  # noqa: E402
from provisioning.consoles.vnc_socket import VncConsoleConsumer  # noqa: E402
from provisioning.consumers import StackProgressConsumer  # noqa: E402
from provisioning.stack_list_socket import StackListConsumer  # noqa: E402

CLOSE_NO_SUCH_SOCKET = 4404


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any path no route knows: turned down, where the router would fail the server with an error."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NO_SUCH_SOCKET)


websocket_routes = [
    path("ws/stacks/", StackListConsumer.as_asgi()),
    path("ws/stacks/<int:stack_id>/", StackProgressConsumer.as_asgi()),
    path("ws/consoles/vnc/", VncConsoleConsumer.as_asgi()),
    path("ws/consoles/serial/", SerialConsoleConsumer.as_asgi()),
    path("ws/notifications/", UnreadCountConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),  # last: anything else
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginGuard(AuthMiddlewareStack(URLRouter(websocket_routes))),
    }
)
