"""A task for tests that run real workers: it notes which deployment's worker ran it."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def note(path: str, tag: str) -> str:
    with Path(path).open("a") as out:
        out.write(f"{settings.DEPLOYMENT_NAME} {tag}\n")
    return tag
