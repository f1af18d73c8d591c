"""``manage.py workers``: run every django-q2 cluster this portal needs, one ``qcluster`` each.

The clusters are in ``portal.task_queues``; each child gets its cluster through ``Q_CLUSTER_NAME``
(django-q2 reads it when it loads its settings, which is why ``qcluster --name`` cannot do it). The
children stay in this process's group, so a KILL to the group ends them all, while TERM (what a
service manager or the demo script sends this process) is passed to each cluster's main process
alone: sent to every worker process at once, a cluster hangs with zombie workers. If one cluster
ends by itself, the others are stopped too and the command fails, so a supervisor restarts the set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.task_queues import cluster_names

_STOP_GRACE_SECONDS = 30


class Command(BaseCommand):
    help = "Run every django-q2 cluster of this portal (control, builds, imports) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list", action="store_true", help="print the cluster names and exit")

    def handle(self, *args: object, **options: object) -> None:
        names = cluster_names()
        if options["list"]:
            self.stdout.write("\n".join(names))
            return
        stopping = False

        def stop(signum: int, _frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        manage = Path(settings.BASE_DIR) / "manage.py"
        children = {
            name: subprocess.Popen(  # noqa: S603 - this interpreter and manage.py, no shell
                [sys.executable, str(manage), "qcluster"], env={**os.environ, "Q_CLUSTER_NAME": name}
            )
            for name in names
        }
        ended_alone: list[str] = []
        while not stopping and not ended_alone:
            ended_alone = [name for name, child in children.items() if child.poll() is not None]
            time.sleep(0.2)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if ended_alone and not stopping:
            raise CommandError(f"cluster {', '.join(ended_alone)} stopped by itself; the others were stopped too")
