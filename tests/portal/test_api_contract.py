"""The OpenAPI schema tells the truth: schemathesis, run against the live API, finds nothing.

``schemathesis run`` (its own command line, as anyone would run it) fuzzes every operation from
``/api/v1/schema/`` with all its checks: undocumented statuses or content types, bodies that do
not match their schema, schema-valid input refused, invalid input accepted, server errors,
objects still there after a delete, endpoints that ignore authentication.

Nothing leaves loopback: the API is pytest-django's live server on 127.0.0.1; the only host is
libvirt's in-memory ``test:///default``; the catalog's feed and image URLs point at a loopback
server that has no such files, so a launch fails cleanly when its build fetches the image (tasks
run inline in tests, ``PORTAL_TASKS_SYNC``). The two operations whose input is a URL the portal
connects to (subscribing a feed, registering a host) are not fuzzed at all.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from django.core.cache import caches

from portal.models import Role
from portal.tokens import token_issue
from provisioning.services import launch, templates
from tests.factories import ApplianceVersionFactory, FeedFactory, HostFactory, MembershipFactory, ProjectFactory

# Enough examples per operation to find every kind of failure the API had before its schema was
# fixed (43 with this seed), within about two minutes on two cores; schemathesis's coverage phase
# adds its boundary cases to these whatever the number.
MAX_EXAMPLES = 10
# A fixed seed: the run is the same on every machine, and a failure replays. Change it to explore.
SEED = 20260
TIME_LIMIT_SECONDS = 420

# Statuses a schema-valid request may get. 400 only for operations whose input is checked against
# things a schema cannot state: which users, appliance versions, templates and projects exist, what
# a template document's tiers say of each other (unique names, dependencies on tiers it has, no
# circle), the project's own lease limit counted from the stack's creation, names already taken;
# and the password itself for tokens. (A project keeping its last owner is a conflict, 409.)
SEMANTIC_400 = ["2xx", "400", "401", "403", "404", "409", "429"]
SEMANTIC_400_OPERATIONS = [
    "POST /api/v1/auth/token/",
    "POST /api/v1/stacks/",
    "POST /api/v1/stacks/{id}/lease/",
    "POST /api/v1/stacks/{id}/extend/",  # the project's longest life, counted from the stack's creation
    "POST /api/v1/templates/",
    "PUT /api/v1/templates/{id}/",
    "POST /api/v1/projects/{id}/members/",
    "GET /api/v1/projects/{id}/usage/",  # from <= to and at most 366 days: not in a schema
    "PUT /api/v1/stacks/{id}/schedule/",  # a known time zone, "up" unlike "down": not in a schema
    "POST /api/v1/stacks/{id}/migrate/",  # which hosts exist: not in a schema
    "POST /api/v1/instances/{id}/migrate/",
    "POST /api/v1/stacks/{id}/resize/",  # the tier must be one of the stack's; disks only grow; the least size
]

CONFIG = """
# Schemathesis reads 4xx bodies to steer its data ("error feedback"). It takes the portal's error
# envelope for a DRF validation body and starts sending a "fields" key no schema has, then counts
# the refusal against the API; it is a generation aid, not a check.
[phases.fuzzing.error-feedback]
enabled = false

# Their input is a URL the portal connects to (a feed to fetch, a libvirt host to open, a webhook).
[[operations]]
include-name = ["POST /api/v1/feeds/", "POST /api/v1/hosts/", "PATCH /api/v1/projects/{{id}}/policy/"]
enabled = false

# Revoking tokens is fuzzed on a spare one: revoking the run's own would leave nothing to test.
[[operations]]
include-name = "DELETE /api/v1/tokens/{{id}}/"
parameters = {{ id = {spare_token} }}

# The tus protocol's PATCH, HEAD and DELETE carry no JSON and are left out of the schema; without
# a Tus-Resumable header they answer 412, not the 405 an undocumented method would get.
[[operations]]
include-path-regex = "^/api/v1/uploads/"
phases.coverage.unexpected-methods = ["put"]

[[operations]]
include-name = {semantic_operations}
checks.positive_data_acceptance.expected-statuses = {semantic_statuses}
"""


@pytest.fixture
def shared_cache():
    """The token endpoint's failed sign-ins are counted in the shared cache's table: empty it after."""
    yield
    caches["shared"].clear()


@pytest.fixture
def api_world(transactional_db, http_server):
    """A project with data, owned by an operator (so hosts and quotas are reached too)."""
    project = ProjectFactory(name="alpha")
    owner = MembershipFactory(
        project=project, role=Role.OWNER, user__username="olivia", user__is_staff=True, user__is_superuser=True
    ).user
    MembershipFactory(project=project, role=Role.MEMBER, user__username="mateo")
    missing = f"{http_server.base_url}/missing"  # loopback, answers 404
    feed = FeedFactory(url=f"{missing}/feed.xml", project=None)
    # Its image is not cached (MISSING), so a build fetches it from the loopback server and fails.
    version = ApplianceVersionFactory(
        appliance__feed=feed,
        appliance__identifier="web",
        image_url=f"{missing}/web.qcow2",
        declared_virtual_bytes=64 * 1024**2,  # the feed says how big a disk it needs: a launch can claim it
    )
    HostFactory(name="test-host", uri="test:///default")
    source = "tiers:\n  - name: web\n    appliance: web\n"
    templates.template_create(user=owner, project=project, name="demo", source=source, description="")
    launch.stack_launch(user=owner, project=project, name="first", appliance_version=version, lease_seconds=3600)
    spare, _ = token_issue(user=owner, name="spare")
    _, secret = token_issue(user=owner, name="contract")
    return {"secret": secret, "spare_token": spare.pk}


def test_schemathesis_finds_no_contract_failure(live_server, api_world, shared_cache, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.format(
            spare_token=api_world["spare_token"],
            semantic_operations=_toml_list(SEMANTIC_400_OPERATIONS),
            semantic_statuses=_toml_list(SEMANTIC_400),
        )
    )
    command = [
        *[sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"],
        f"{live_server.url}/api/v1/schema/",
        *["--header", f"Authorization: Token {api_world['secret']}"],
        *["--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)],
        # One worker: with two, schemathesis 4.32's generation threads trip over each other now and
        # then (a KeyError or SystemError inside Hypothesis), which would fail the run on no finding.
        *["--workers", "1", "--generation-database", "none", "--no-color"],
    ]
    started = time.monotonic()
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=TIME_LIMIT_SECONDS)
    report = run.stdout + run.stderr
    # The findings come first in schemathesis's report, the summary last; a long one keeps both ends.
    shown = report if len(report) < 40000 else f"{report[:30000]}\n[...]\n{report[-8000:]}"
    assert run.returncode == 0, f"schemathesis found contract failures:\n{shown}"
    selected, total = map(int, re.search(r"Selected: (\d+)/(\d+)", report).groups())
    tested = int(re.search(r"Tested: (\d+)", report).group(1))
    assert (tested, total - selected) == (selected, 3), report[-5000:]  # all but the three left out
    print(f"schemathesis ran in {time.monotonic() - started:.0f} s")


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"
