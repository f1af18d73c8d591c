"""``manage.py setup_demo``: everything the demo needs, created once and reused afterwards.

An operator account, a project it owns, the local libvirt host, the demo appliances with
their VMcast feed (subscribed to the shared catalog and imported), and their images cached.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog import services as catalog_services
from catalog.models import ApplianceVersion, Feed
from portal.models import Membership, Project, Role
from provisioning import hosts
from provisioning.models import Host

DEMO_USER = "admin"
DEMO_PROJECT = "demo"
LOCAL_HOST = "local"


class Command(BaseCommand):
    help = "Create (or reuse) the demo account, project, local host and appliance catalog."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--appliances", type=Path, required=True, help="where to build the demo appliances")
        parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the local host")
        parser.add_argument("--domain-type", default="qemu", choices=["qemu", "kvm"])

    def handle(self, *args, **options) -> None:
        user, password = self._operator()
        project = self._project(user)
        self._host(user, uri=options["uri"], domain_type=options["domain_type"])
        appliances: Path = options["appliances"].resolve()
        call_command(
            "build_demo_appliances",
            out=appliances,
            base_url=appliances.as_uri(),
            work=Path(settings.VAR_DIR) / "cache" / "demo-build",
            stdout=self.stdout,
        )
        feed = self._feed(user, (appliances / "feed.xml").as_uri())
        self._cache_images(feed)
        login = f"user: {user.username}\npassword: {password}\n"
        (Path(settings.VAR_DIR) / "demo-login").write_text(login)
        self.stdout.write(f"project: {project.name}\n{login}")

    def _operator(self):
        login_file = Path(settings.VAR_DIR) / "demo-login"
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USER).first()
        remembered = _remembered_password(login_file)
        if user is not None and remembered and user.check_password(remembered):
            return user, remembered
        password = secrets.token_urlsafe(12)
        if user is None:
            user = user_model.objects.create_superuser(DEMO_USER, email="", password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, password

    def _project(self, user) -> Project:
        project, _ = Project.objects.get_or_create(name=DEMO_PROJECT, defaults={"description": "Demo project"})
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.OWNER})
        return project

    def _host(self, user, *, uri: str, domain_type: str) -> Host:
        host = Host.objects.filter(uri=uri).first()
        if host is not None:
            hosts.host_refresh(host=host)
            if not host.healthy:
                raise CommandError(f"host {uri} is not healthy: {host.health_error}")
            return host
        try:
            return hosts.host_register(
                user=user,
                name=LOCAL_HOST,
                uri=uri,
                domain_type=domain_type,
                storage_pool=settings.DEFAULT_STORAGE_POOL,
                storage_pool_path=settings.DEFAULT_STORAGE_POOL_PATH,
            )
        except Exception as exc:
            raise CommandError(f"cannot register host {uri}: {exc}") from exc

    def _feed(self, user, url: str) -> Feed:
        feed = Feed.objects.filter(project=None, url=url).first()
        if feed is None:
            feed = Feed.objects.create(project=None, url=url, created_by=user)
        catalog_services.feed_import(feed=feed)
        if feed.last_status != Feed.ImportStatus.OK:
            raise CommandError(f"demo feed import failed: {feed.last_error}")
        self.stdout.write(f"feed: {feed.title} ({feed.last_item_count} appliances)")
        return feed

    def _cache_images(self, feed: Feed) -> None:
        for version in ApplianceVersion.objects.filter(appliance__feed=feed).select_related("image", "appliance"):
            catalog_services.image_ensure_cached(version=version)
            self.stdout.write(f"image ready: {version}")


def _remembered_password(login_file: Path) -> str | None:
    if not login_file.is_file():
        return None
    for line in login_file.read_text().splitlines():
        if line.startswith("password: "):
            return line.removeprefix("password: ")
    return None
