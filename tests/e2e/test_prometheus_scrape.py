"""``/metrics`` scraped by a real Prometheus (Debian's), about real guests under qemu:///system.

Two one-tier demo stacks run; clients fetch one's page over and over, the other is left alone. The
sampler reads both every couple of seconds through libvirt while Prometheus scrapes the portal every
second with the bearer token (loopback is not an allowed network here, so the token is what lets it
in). Then Prometheus' own query API must show the visited guest using more CPU than the quiet one,
scraped values that are the sampler's own figures, and a rate that agrees with the samples'.

Prometheus runs as a child of this test (its storage in the test's folder, listening on loopback)
and is stopped by its process id.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from metrics.models import InstanceSample
from metrics.sampler import take_samples
from provisioning.drivers import open_driver
from tests.e2e.conftest import SYSTEM_URI, remove_pool
from tests.e2e.demo_web import Visitors
from tests.e2e.records import web_url
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e

PROMETHEUS = "/usr/bin/prometheus"
SAMPLE_EVERY = 2.0  # seconds between the sampler's runs here
BUSY_FOR = 24.0  # seconds of visits and samples


@pytest.fixture(autouse=True)
def prom_names(settings) -> None:
    """Domains and networks named ``prom-<hex>-...``; the e2e conftest removes them by this prefix."""
    settings.DEPLOYMENT_NAME = f"prom-{secrets.token_hex(3)}"


@pytest.fixture
def system_pool() -> Iterator[tuple[str, str]]:
    name = f"prom-{secrets.token_hex(4)}"
    yield name, f"/var/lib/libvirt/images/{name}"
    with open_driver(SYSTEM_URI) as driver:
        remove_pool(driver, name)


@pytest.fixture
def scrape_token(settings) -> str:
    """Set before the live server starts (it is forked with these settings): only the token gets in."""
    token = secrets.token_urlsafe(24)
    settings.METRICS_TOKEN = token
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_SAMPLE_SECONDS = 5  # samples older than 15 s are stale
    return token


@pytest.fixture
def portal(scrape_token, live_portal) -> str:
    return live_portal


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def prometheus(portal, scrape_token, tmp_path) -> Iterator[str]:
    """Debian's Prometheus scraping the portal every second; its base URL."""
    target = urllib.parse.urlsplit(portal).netloc
    token_file = tmp_path / "scrape-token"
    token_file.write_text(scrape_token)
    token_file.chmod(0o600)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "portal",
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: page_text(f"{base}/-/ready"), timeout=30, what="Prometheus ready")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def query(prometheus: str, expression: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def one_value(prometheus: str, expression: str) -> float:
    (result,) = query(prometheus, expression)
    return float(result["value"][1])


def cpu_seconds(sample: InstanceSample) -> float:
    return sample.cpu_time_ns / 1e9


def test_prometheus_sees_the_busy_guest_busier_than_the_quiet_one(portal, prometheus, launch_demo_web, scrape_token):
    # Without the token nothing is shown, even on loopback; Prometheus has it and its target is up.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{portal}/metrics", timeout=10)
    assert refused.value.code == 401
    busy, quiet = launch_demo_web("busy"), launch_demo_web("quiet")
    wait_for(lambda: query(prometheus, 'up{job="portal"} == 1'), timeout=15, what="the portal's target up")

    started = time.monotonic()
    with Visitors(web_url(busy), clients=3) as visitors:
        visitors.another_visit()
        while time.monotonic() - started < BUSY_FOR:
            take_samples()
            time.sleep(SAMPLE_EVERY)
        take_samples()
    time.sleep(2.5)  # two more scrapes see the last samples

    window = f"{int(BUSY_FOR - 4)}s"
    busy_rate = one_value(prometheus, f'rate(portal_guest_cpu_seconds_total{{stack="busy"}}[{window}])')
    quiet_rate = one_value(prometheus, f'rate(portal_guest_cpu_seconds_total{{stack="quiet"}}[{window}])')
    summary = f"busy {busy_rate:.3f} CPU s/s ({visitors.pages} pages), quiet {quiet_rate:.3f} CPU s/s"
    print(summary)
    assert busy_rate > 2 * quiet_rate, summary

    for stack in (busy, quiet):
        samples = list(InstanceSample.objects.filter(instance__stack=stack).order_by("sampled_at"))
        assert len(samples) >= BUSY_FOR / SAMPLE_EVERY - 2, len(samples)
        # The newest scraped value is the newest sample's own figure.
        latest = one_value(prometheus, f'portal_guest_cpu_seconds_total{{stack="{stack.name}"}}')
        assert latest == pytest.approx(cpu_seconds(samples[-1]), abs=1e-6)
        # Every value Prometheus scraped over the run is one of the sampler's figures.
        (series,) = query(prometheus, f'portal_guest_cpu_seconds_total{{stack="{stack.name}"}}[{int(BUSY_FOR + 10)}s]')
        sampled = {round(cpu_seconds(sample), 6) for sample in samples}
        assert {round(float(value), 6) for _at, value in series["values"]} <= sampled
        assert series["metric"]["tier"] == "web"
        assert series["metric"]["project"] == stack.project.name

    # Prometheus' rate agrees with the samples' own over the last window.
    samples = list(InstanceSample.objects.filter(instance__stack=busy).order_by("sampled_at"))
    last = samples[-1]
    first = next(s for s in samples if (last.sampled_at - s.sampled_at).total_seconds() <= BUSY_FOR - 4)
    sampled_rate = (cpu_seconds(last) - cpu_seconds(first)) / (last.sampled_at - first.sampled_at).total_seconds()
    assert busy_rate == pytest.approx(sampled_rate, rel=0.3), (busy_rate, sampled_rate)

    # The portal's own figures came through the same scrape.
    assert one_value(prometheus, 'portal_stacks{status="running"}') == 2
    assert one_value(prometheus, "portal_stack_launch_seconds_gcount") == 2
    assert one_value(prometheus, 'portal_host_domains{host="local"}') == 2
