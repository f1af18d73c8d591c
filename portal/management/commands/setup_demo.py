"""``manage.py setup_demo``: everything the demo needs, created once and reused afterwards.

An operator account, a project it owns, the local libvirt host, the demo appliances with
their VMcast feed (subscribed to the shared catalog and imported), their images cached, and the
templates that come with the portal (``classic-three-tier``).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog import services as catalog_services
from catalog.models import Feed
from catalog.selectors import appliance_versions_visible_to
from portal import errors
from portal.models import Membership, Project, Role
from portal.services import membership_set
from provisioning.models import Host
from provisioning.services import hosts
from provisioning.services.templates import install_shipped_templates

DEMO_USER = "admin"
# Lease warnings are mailed to it: the demo writes mail to files under var/mail/, never sends any.
DEMO_EMAIL = "admin@demo.localhost"
DEMO_PROJECT = "demo"
LOCAL_HOST = "local"


class Command(BaseCommand):
    help = "Create (or reuse) the demo account, project, local host and appliance catalog."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--appliances", type=Path, required=True, help="where to build the demo appliances")
        parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the local host")
        parser.add_argument("--domain-type", default="qemu", choices=["qemu", "kvm"])
        parser.add_argument(
            "--build-cache", type=Path, default=None, help="reusable build folder (default: VAR_DIR/cache/demo-build)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user, password = self._operator()
        try:
            project = self._project(user)
            self._host(user, uri=options["uri"], domain_type=options["domain_type"])
            appliances: Path = options["appliances"].resolve()
            call_command(
                "build_demo_appliances",
                out=appliances,
                base_url=appliances.as_uri(),
                work=options["build_cache"] or Path(settings.VAR_DIR) / "cache" / "demo-build",
                stdout=self.stdout,
            )
            feed = self._feed(user, (appliances / "feed.xml").as_uri())
            self._cache_images(user, feed)
            for template in install_shipped_templates(user=user):
                self.stdout.write(f"template: {template.name}")
        except errors.PortalError as exc:
            raise CommandError(exc.detail) from exc
        login = f"user: {user.username}\npassword: {password}\n"
        (Path(settings.VAR_DIR) / "demo-login").write_text(login)
        self.stdout.write(f"project: {project.name}\n{login}")

    def _operator(self):
        login_file = Path(settings.VAR_DIR) / "demo-login"
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USER).first()
        remembered = _remembered_password(login_file)
        if user is not None and not user.email:  # set up by an older demo: its warnings need an address
            user.email = DEMO_EMAIL
            user.save(update_fields=["email"])
        if user is not None and remembered and user.check_password(remembered):
            return user, remembered
        password = secrets.token_urlsafe(12)
        if user is None:
            user = user_model.objects.create_superuser(DEMO_USER, email=DEMO_EMAIL, password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, password

    def _project(self, user) -> Project:
        # Projects are made by operators here or in the admin; there is no project service yet.
        project, _ = Project.objects.get_or_create(name=DEMO_PROJECT, defaults={"description": "Demo project"})
        if not Membership.objects.filter(project=project, user=user).exists():
            membership_set(actor=user, project=project, username=user.get_username(), role=Role.OWNER)
        return project

    def _host(self, user, *, uri: str, domain_type: str) -> Host:
        host = Host.objects.filter(uri=uri).first()
        if host is not None:
            hosts.host_repair(user=user, host=host)  # setting up again is this command's job: its pool may be gone
            if not host.healthy:
                raise CommandError(f"host {uri} is not healthy: {host.health_error}")
            return host
        return hosts.host_register(
            user=user,
            name=LOCAL_HOST,
            uri=uri,
            domain_type=domain_type,
            storage_pool=settings.DEFAULT_STORAGE_POOL,
            storage_pool_path=settings.DEFAULT_STORAGE_POOL_PATH,
        )

    def _feed(self, user, url: str) -> Feed:
        # Imported here and now rather than queued: the worker starts only after this command.
        feed = catalog_services.feed_subscribe_and_import(user=user, url=url, project=None)
        if feed.last_status != Feed.ImportStatus.OK:
            raise CommandError(f"demo feed import failed: {feed.last_error}")
        self.stdout.write(f"feed: {feed.title} ({feed.last_item_count} appliances)")
        return feed

    def _cache_images(self, user, feed: Feed) -> None:
        for version in appliance_versions_visible_to(user).filter(appliance__feed=feed):
            catalog_services.image_ensure_cached(version=version)
            self.stdout.write(f"image ready: {version}")


def _remembered_password(login_file: Path) -> str | None:
    if not login_file.is_file():
        return None
    for line in login_file.read_text().splitlines():
        if line.startswith("password: "):
            return line.removeprefix("password: ")
    return None
