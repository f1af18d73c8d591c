"""Parallel creations cannot pass a project's limits: the project's row is locked while one is counted."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from portal import errors
from tests.transfers.upload_helpers import use_private_folders
from transfers import uploads
from transfers.models import Upload


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    return use_private_folders(settings, tmp_path)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (lambda index: f"v{index}", ["limit"] * 4 + ["ok"] * 2),
        (lambda index: "same", ["name taken"] * 5 + ["ok"]),
    ],
    ids=["limit", "same-name"],
)
def test_six_creations_at_once_get_no_more_than_the_project_allows(member, project, settings, versions, expected):
    settings.UPLOADS_PER_PROJECT = 2
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def attempt(index: int) -> None:
        metadata = {"project": str(project.pk), "appliance": "web", "version": versions(index)}
        try:
            barrier.wait()
            uploads.upload_create(user=member, length=10, metadata=metadata)
            outcomes.append("ok")
        except errors.QuotaExceeded:
            outcomes.append("limit")
        except errors.Invalid:
            outcomes.append("name taken")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == sorted(expected)
    assert Upload.objects.filter(project=project).count() == expected.count("ok")
    assert len(list(settings.UPLOAD_DIR.iterdir())) == expected.count("ok")  # no file without its row
