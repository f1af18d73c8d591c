"""ASGI entry point, served by daphne: HTTP through Django, websockets through Channels.

Websockets carry the Django session, so a consumer sees the same user, and the same scoping, as
the page that opened it. The stack page's and the stacks list's sockets pass channels' Origin check (only
ALLOWED_HOSTS). Console sockets are authenticated by a one-time ticket and make their own Origin
check (``provisioning.consoles.origin``): a foreign Origin is refused, a missing one (a client that
is not a browser) is let through to the ticket check.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

# Imported after the app registry is ready: consumers import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from provisioning.consoles.serial_socket import SerialConsoleConsumer  # noqa: E402
from provisioning.consoles.vnc_socket import VncConsoleConsumer  # noqa: E402
from provisioning.consumers import StackProgressConsumer  # noqa: E402
from provisioning.stack_list_socket import StackListConsumer  # noqa: E402

websocket_routes = [
    path("ws/stacks/", AllowedHostsOriginValidator(StackListConsumer.as_asgi())),
    path("ws/stacks/<int:stack_id>/", AllowedHostsOriginValidator(StackProgressConsumer.as_asgi())),
    path("ws/consoles/vnc/", VncConsoleConsumer.as_asgi()),
    path("ws/consoles/serial/", SerialConsoleConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_routes)),
    }
)
