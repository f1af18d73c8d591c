"""``GET /api/v1/instances/{id}/metrics/`` and ``/hosts/{id}/metrics/``: who may read them, how ``since``
is read, the summary, and paging by moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics import history
from metrics.models import HostSample, InstanceSample
from tests.factories import HostFactory
from tests.metrics.conftest import make_instance, make_stack

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def web(project):
    host = HostFactory(name="h1", uri="test:///h1")
    instance = make_instance(make_stack(project), host, "web-1")
    for minute, cpu, used in ((0, None, 100), (1, 10.0, 120), (2, 30.0, 200), (3, 20.0, 150)):
        InstanceSample.objects.create(
            instance=instance,
            host=host,
            sampled_at=NOW + timedelta(minutes=minute),
            cpu_percent=cpu,
            memory_mib=256,
            memory_used_mib=used,
            net_rx_bytes_sec=None if cpu is None else cpu * 100,
        )
    return instance


def url(instance, since: str | None = None) -> str:
    return f"/api/v1/instances/{instance.pk}/metrics/" + ("" if since is None else f"?since={since}")


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_the_projects_people_read_an_instances_samples(request, api, web, who):
    response = api(request.getfixturevalue(who)).get(url(web, "2026-03-01T12:00:00Z"))
    assert response.status_code == 200
    body = response.json()
    assert [sample["cpu_percent"] for sample in body["samples"]] == [None, 10.0, 30.0, 20.0]
    assert body["samples"][0]["host"] == "h1"
    assert body["next"] is None


def test_an_outsider_is_told_the_instance_does_not_exist(api, web, outsider):
    assert api(outsider).get(url(web)).status_code == 404
    assert api(None).get(url(web)).status_code in {401, 403}


def test_the_summary_gives_peak_and_average_of_the_whole_period(api, web, member):
    body = api(member).get(url(web, "2026-03-01T12:01:00+00:00")).json()
    summary = body["summary"]
    assert summary["cpu_percent"] == {"peak": 30.0, "average": 20.0}
    assert summary["memory_used_mib"] == {"peak": 200.0, "average": pytest.approx(156.667)}
    assert summary["net_rx_bytes_sec"] == {"peak": 3000.0, "average": 2000.0}
    assert summary["disk_write_bytes_sec"] == {"peak": None, "average": None}
    assert set(summary) == set(history.SUMMARY_FIELDS)


@pytest.mark.parametrize(
    ("since", "count"),
    [
        ("2026-03-01T12:02:00Z", 2),
        ("2026-03-01T14:02:00+02:00", 2),  # the same moment elsewhere
        ("2026-03-01T14:02:00 02:00", 2),  # "+" sent unencoded arrives as a space
        ("2026-03-01T12:02:00", 2),  # no offset: UTC
        ("2026-03-01T12:03:00.000001Z", 0),
        ("2026-03-01", 4),
        ("2026-03-01T14:20:00+02:18", 2),  # an offset PostgreSQL would not take: read in UTC
        ("0202-03-08T13:54:33-21:18", 4),
    ],
)
def test_since_is_a_moment_in_iso_8601(api, web, member, since, count):
    response = api(member).get(url(web), {"since": since})
    assert response.status_code == 200, response.json()
    assert len(response.json()["samples"]) == count


@pytest.mark.parametrize(
    "since",
    ["yesterday", "", "2026-13-01T00:00:00Z", "1709294400", "2026-03-01T12:00:00+25:00", "0001-01-01T00:00:00+05:00"],
)
def test_a_since_that_is_no_moment_is_refused_clearly(api, web, member, since):
    response = api(member).get(url(web), {"since": since})
    assert response.status_code == 400
    body = response.json()
    assert "ISO 8601" in body["fields"]["since"][0]


def test_since_left_out_is_the_last_hour(api, web, member):
    recent = InstanceSample.objects.create(instance=web, sampled_at=datetime.now(UTC) - timedelta(minutes=5))
    body = api(member).get(url(web)).json()
    assert [sample["sampled_at"] for sample in body["samples"]] == [
        recent.sampled_at.isoformat().replace("+00:00", "Z")
    ]


def test_a_long_period_comes_in_pages_linked_by_next(api, web, member, monkeypatch):
    monkeypatch.setattr(history, "MAX_SERIES", 3)
    client = api(member)
    first = client.get(url(web, "2026-03-01T00:00:00Z")).json()
    assert len(first["samples"]) == 3
    assert first["summary"]["cpu_percent"]["peak"] == 30.0  # over the whole period, not the page
    second = client.get(first["next"]).json()
    assert [sample["memory_used_mib"] for sample in second["samples"]] == [150]
    assert second["next"] is None


def test_operators_read_a_hosts_samples(api, operator, member, web):
    host = web.host
    HostSample.objects.create(host=host, sampled_at=NOW, cpus=8, cpu_percent=12.5, memory_mib=4096)
    HostSample.objects.create(host=host, sampled_at=NOW - timedelta(hours=2), cpus=8)
    path = f"/api/v1/hosts/{host.pk}/metrics/"
    response = api(operator).get(path, {"since": "2026-03-01T11:00:00Z"})
    assert response.status_code == 200
    assert [(sample["cpus"], sample["cpu_percent"]) for sample in response.json()["samples"]] == [(8, 12.5)]
    assert api(member).get(path).status_code == 403
    assert api(operator).get("/api/v1/hosts/999999/metrics/").status_code == 404
    assert api(operator).get(path, {"since": "soon"}).status_code == 400


def test_the_operations_are_in_the_schema_with_summaries(api, operator):
    schema = api(operator).get("/api/v1/schema/", {"format": "json"}).json()
    for path in ("/api/v1/instances/{id}/metrics/", "/api/v1/hosts/{id}/metrics/"):
        assert schema["paths"][path]["get"]["summary"]
