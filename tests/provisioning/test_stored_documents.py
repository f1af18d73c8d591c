"""A stack stored before today's rules (a tier named 'Web Server') still has a page and can be deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import Stack, Status

pytestmark = pytest.mark.django_db

OLD_DOCUMENT = {
    "tiers": [
        {
            "name": "Web Server",
            "appliance": "legacy",
            "version": "1.0",
            "count": 1,
            "publish": [80],
            "depends_on": [],
            "flavor": None,
        }
    ]
}


@pytest.fixture
def old_stack(project):
    return Stack.objects.create(
        project=project,
        name="legacy",
        status=Status.ERROR,
        expires_at=timezone.now() + timedelta(hours=1),
        document=OLD_DOCUMENT,
    )


@pytest.mark.parametrize("page", ["/stacks/{id}/", "/stacks/{id}/status/", "/stacks/{id}/delete/"])
def test_its_pages_answer(client, member, old_stack, page):
    client.force_login(member)
    response = client.get(page.format(id=old_stack.pk))
    assert response.status_code == 200


def test_the_api_shows_it(api, member, old_stack):
    assert api(member).get(f"/api/v1/stacks/{old_stack.pk}/").status_code == 200
