"""Upgrading keeps what was downloaded: a version whose own URL brought its cached image may still use it."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.models import ApplianceVersion, CachedImage

BEFORE = ("catalog", "0005_watch_imports_schedule")


@pytest.mark.django_db(transaction=True)
def test_past_downloads_become_deliveries_of_the_versions_whose_url_brought_them():
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        old = executor.loader.project_state([BEFORE]).apps
        feed = old.get_model("catalog", "Feed").objects.create(url="https://feeds.example.org/f.xml")
        appliance = old.get_model("catalog", "Appliance").objects.create(feed=feed, identifier="web", title="Web")
        images = old.get_model("catalog", "CachedImage").objects
        url = "https://feeds.example.org/web.qcow2"
        ready = images.create(
            sha256="a" * 64,
            source_format="qcow2",
            status="ready",
            path="/cache/web.qcow2",
            download_source=hashlib.sha256(url.encode()).hexdigest(),
        )
        failed = images.create(sha256="b" * 64, source_format="qcow2", status="error", error="sha256 mismatch")
        versions = old.get_model("catalog", "ApplianceVersion").objects
        common = {"appliance": appliance, "size_bytes": 1, "disk_format": "qcow2"}
        own = versions.create(version="1", image_url=url, image=ready, **common)
        # Same bytes named by another URL, which never delivered them.
        named = versions.create(version="2", image_url="https://elsewhere.example.org/web.qcow2", image=ready, **common)
        versions.create(version="3", image_url=url, image=failed, **common)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert ApplianceVersion.objects.get(pk=own.pk).image_state.status == "ready"
    assert ApplianceVersion.objects.get(pk=named.pk).image_state.status == "missing"
    assert CachedImage.objects.get(pk=failed.pk).status == "missing"
