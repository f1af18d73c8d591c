"""Records on a real stack's web tier, for end-to-end tests: launch the classic three tiers, post a
record, wait until the page shows some."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from portal.models import Project
from portal.scoping import Account
from provisioning.models import Stack, Status
from provisioning.services import templates
from provisioning.services.launch import stack_launch_template
from tests.polling import page_text, wait_for


def launch_classic(
    *,
    operator: Account,
    member: Account,
    project: Project,
    capture: Callable[..., AbstractContextManager[Any]],
    name: str = "shop",
    lease_seconds: int = 1800,
) -> Stack:
    """The shipped classic-three-tier template, installed by ``operator``, launched by ``member`` and
    running. ``capture`` is pytest-django's ``django_capture_on_commit_callbacks``: the launch's jobs
    run inline, before this returns."""
    (classic,) = [t for t in templates.install_shipped_templates(user=operator) if t.name == "classic-three-tier"]
    with capture(execute=True):
        stack = stack_launch_template(
            user=member, project=project, name=name, template=classic, lease_seconds=lease_seconds
        )
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    return stack


def web_url(stack: Stack) -> str:
    """The URL of the stack's one published port (the web tier's page)."""
    (port,) = [p for i in stack.instances.all() for p in i.published_ports.all()]
    return port.url


def post_record(url: str, text: str) -> tuple[int, str]:
    """POST ``text`` as one record to the tier at ``url``; the answer's status and body."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/records", data=f"{text}\n".encode(), headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def page_with(stack: Stack, *present: str, absent: tuple[str, ...] = (), what: str, timeout: float = 240) -> str:
    """The web page once it holds every text of ``present`` and none of ``absent``."""

    def ready() -> str | None:
        text = page_text(web_url(stack))
        if text and all(p in text for p in present) and not any(a in text for a in absent):
            return text
        return None

    return wait_for(ready, timeout=timeout, interval=1, what=what)
