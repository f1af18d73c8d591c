"""What the image-download tests of builds share: appliances published on a loopback server, launches of
them, and a broker whose tasks the test runs one by one."""

from __future__ import annotations

from django.utils.module_loading import import_string
from django_q.models import OrmQ

from catalog import services
from catalog.models import ApplianceVersion, Feed
from provisioning.services import templates
from provisioning.services.launch import stack_launch, stack_launch_template
from tests.catalog.publishing import publish
from tests.factories import FeedFactory

MIB = 1024**2
GIB = 1024**3


def published_version(
    server,
    *,
    appliance: str = "demo-web",
    size: str = "16M",
    project=None,
    declared_virtual_bytes: int | None = None,
    image_url: str | None = None,
    make_image: bool = True,
) -> ApplianceVersion:
    """A version imported from a feed on ``server`` (its image published there too, unless told otherwise),
    the feed declaring ``declared_virtual_bytes`` as its disk size if given."""
    url = publish(
        server,
        name=f"{appliance}.qcow2",
        size=size,
        appliance=appliance,
        feed_name=f"{appliance}-{project.pk if project else 'shared'}.xml",
        image_url=image_url,
        make_image=make_image,
        virtual_size_bytes=declared_virtual_bytes,
    )
    feed = FeedFactory(url=url, project=project)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    version = ApplianceVersion.objects.select_related("appliance", "image").get(appliance__feed=feed)
    assert version.declared_virtual_bytes == declared_virtual_bytes
    return version


def launch(user, project, version: ApplianceVersion, name: str = "demo"):
    return stack_launch(user=user, project=project, name=name, appliance_version=version, lease_seconds=3600)


def launch_tiers(user, project, name: str, *tiers: tuple[str, int]):
    """A stack of one tier per (appliance identifier, disk GiB), launched from a template made for it."""
    lines = ["tiers:"]
    for index, (appliance, disk_gib) in enumerate(tiers):
        lines += [f"  - name: t{index}", f"    appliance: {appliance}", f"    disk_gib: {disk_gib}"]
    template = templates.template_create(user=user, project=project, name=f"{name}-template", source="\n".join(lines))
    return stack_launch_template(user=user, project=project, name=name, template=template, lease_seconds=3600)


def queued(func: str) -> list[tuple]:
    """The arguments of every task for ``func`` waiting in the broker."""
    return [tuple(task.task["args"]) for task in OrmQ.objects.order_by("pk") if task.func() == func]


def run_queued(*, only: str | None = None) -> list[str]:
    """Run the broker's waiting tasks (those for ``only``, if given) in order, as a worker would; return their funcs."""
    ran = []
    for row in OrmQ.objects.order_by("pk"):
        task = row.task
        if only is not None and task["func"] != only:
            continue
        row.delete()
        import_string(task["func"])(*task["args"], **task["kwargs"])
        ran.append(task["func"])
    return ran
