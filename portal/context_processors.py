"""What every page's navigation needs: the projects the reader can see."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.models import Project


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: pages that never render the menu never run the query.
    return {"nav_projects": Project.objects.visible_to(user).order_by("name").only("pk", "name")}
