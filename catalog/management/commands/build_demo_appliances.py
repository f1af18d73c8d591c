"""``manage.py build_demo_appliances``: build the demo images and their VMcast feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.demo_appliances import ApplianceBuildError, build_demo_appliances


class Command(BaseCommand):
    help = "Build (or reuse) the three demo appliance images and write feed.xml next to them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, type=Path, help="directory for the images and feed.xml")
        parser.add_argument("--base-url", required=True, help="URL the images will be served from")
        parser.add_argument("--work", type=Path, default=None, help="download and unpack cache (default: OUT/.work)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            feed = build_demo_appliances(
                out_dir=options["out"],
                base_url=options["base_url"],
                work_dir=options["work"],
                log=self.stdout.write,
            )
        except ApplianceBuildError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(str(feed)))
