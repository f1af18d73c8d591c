"""What every page's navigation needs: the projects the reader can see, and their unread notifications."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from notices.selectors import unread_count
from portal.models import Project


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: pages that never render the menu never run the query.
    return {
        "nav_projects": Project.objects.visible_to(user).order_by("name").only("pk", "name"),
        "nav_unread_notices": SimpleLazyObject(lambda: unread_count(user)),
        # Pushed counts reach pages only when workers and web share a channel layer (Redis); else the badge polls.
        "nav_live_notices": bool(settings.REDIS_URL),
    }
