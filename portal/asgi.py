"""ASGI entry point, served by daphne. HTTP goes to Django; websocket routes join here as
``URLRouter`` entries behind the session middleware and an Origin check."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - needs the app registry loaded above

application = ProtocolTypeRouter({"http": django_asgi_app})
