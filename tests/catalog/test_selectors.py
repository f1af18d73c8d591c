"""Catalog reads: scoped to the caller's projects plus the shared catalog, and the version a launch uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog import selectors
from catalog.models import Appliance, ApplianceVersion, Feed
from portal import errors
from tests.factories import ApplianceFactory, ApplianceVersionFactory, FeedFactory


@pytest.fixture
def catalog(project, other_project):
    """One appliance version in each of: ``project``, ``other_project`` and the shared catalog."""
    return {
        key: ApplianceVersionFactory(appliance__feed__project=owner, appliance__identifier=f"{key}-app")
        for key, owner in (("mine", project), ("theirs", other_project), ("shared", None))
    }


def _appliance_of(row: Feed | Appliance | ApplianceVersion) -> Appliance:
    if isinstance(row, Feed):
        return row.appliances.get()
    return row if isinstance(row, Appliance) else row.appliance


@pytest.mark.parametrize(
    ("select", "model"),
    [
        (selectors.feeds_visible_to, Feed),
        (selectors.appliances_visible_to, Appliance),
        (selectors.appliance_versions_visible_to, ApplianceVersion),
    ],
)
def test_members_see_their_projects_rows_and_the_shared_catalog(catalog, member, outsider, select, model):
    def identifiers(user) -> set[str]:
        rows = select(user)
        assert rows.model is model
        return {_appliance_of(row).identifier for row in rows}

    assert identifiers(member) == {"mine-app", "shared-app"}
    assert identifiers(outsider) == {"theirs-app", "shared-app"}


def test_operators_see_every_project(catalog, operator):
    assert {a.identifier for a in selectors.appliances_visible_to(operator)} == {"mine-app", "theirs-app", "shared-app"}


def test_appliances_list_their_versions_newest_first(member, project):
    appliance = ApplianceFactory(feed=FeedFactory(project=project))
    for version, day in (("1.0", 1), ("3.0", 3), ("2.0", 2)):
        ApplianceVersionFactory(appliance=appliance, version=version, published_at=datetime(2024, 5, day, tzinfo=UTC))
    listed = selectors.appliances_visible_to(member).get(pk=appliance.pk)
    assert [v.version for v in listed.versions.all()] == ["3.0", "2.0", "1.0"]


@pytest.fixture
def two_versions(project):
    appliance = ApplianceFactory(feed=FeedFactory(project=project), title="Shop")
    # The newer one is stored first, so "newest" cannot mean "last inserted".
    newer = ApplianceVersionFactory(appliance=appliance, version="2.1", published_at=datetime(2024, 6, 1, tzinfo=UTC))
    older = ApplianceVersionFactory(appliance=appliance, version="1.4", published_at=datetime(2024, 1, 1, tzinfo=UTC))
    return appliance, older, newer


def test_launch_takes_the_newest_version_when_none_is_named(member, two_versions):
    appliance, _older, newer = two_versions
    assert selectors.appliance_version_for_launch(user=member, appliance=appliance, version=None) == newer


def test_launch_takes_the_named_version(member, two_versions):
    appliance, older, _newer = two_versions
    assert selectors.appliance_version_for_launch(user=member, appliance=appliance, version="1.4") == older


def test_an_unknown_version_is_refused_on_the_version_field(member, two_versions):
    appliance, _older, _newer = two_versions
    with pytest.raises(errors.Invalid, match="appliance 'Shop' has no such version") as caught:
        selectors.appliance_version_for_launch(user=member, appliance=appliance, version="9.9")
    assert caught.value.fields == {"version": ["appliance 'Shop' has no such version"]}


def test_an_appliance_without_versions_is_refused_on_the_version_field(member, project):
    appliance = ApplianceFactory(feed=FeedFactory(project=project), title="Empty")
    with pytest.raises(errors.Invalid, match="appliance 'Empty' has no versions yet") as caught:
        selectors.appliance_version_for_launch(user=member, appliance=appliance, version=None)
    assert list(caught.value.fields) == ["version"]


def test_another_projects_appliance_is_unknown_and_its_title_not_told(member, other_project):
    hidden = ApplianceVersionFactory(appliance__feed__project=other_project, appliance__title="Secret")
    with pytest.raises(errors.Invalid, match=r"^no such appliance$") as caught:
        selectors.appliance_version_for_launch(user=member, appliance=hidden.appliance, version=None)
    assert list(caught.value.fields) == ["appliance"]
