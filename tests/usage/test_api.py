"""GET /api/v1/projects/{id}/usage/: scoped to the project's people, JSON or CSV, one row per stack and day."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.models import Role
from provisioning.models import Stack, Status
from tests.factories import MembershipFactory, UserFactory
from tests.usage.conftest import at
from usage.periods import today_utc
from usage.sampler import usage_sample

HEADER = "date,stack_id,stack_name,user,vcpu_hours,memory_gib_hours,disk_gib_hours,snapshot_gib_hours,cost"


def url(project) -> str:
    return f"/api/v1/projects/{project.pk}/usage/"


@pytest.fixture
def sampled(prices, make_stack, project):
    """Two stacks of ``project`` sampled on 2026-03-01 and 2026-03-02, one in another project."""
    web = make_stack("web", created=at("2026-03-01 23:57"), tiers=[(2, 1024, 10, Status.RUNNING)])
    db = make_stack("db", created=at("2026-03-02 00:00"), tiers=[(1, 2048, 20, Status.SHELVED)])
    usage_sample(now=at("2026-03-02 00:06"))
    return {"web": web, "db": db}


# Refusals first.


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-13-01", "from"),
        ("from=2026-02-30", "from"),
        ("from=yesterday", "from"),
        ("from=2026-3-1", "from"),
        ("to=2026-03-01T00:00", "to"),
        ("to=", "to"),  # empty is not "left out": the schema says a date
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("from=2025-02-28&to=2026-03-01", "to"),  # 367 days
    ],
)
def test_bad_periods_are_refused_naming_the_field(api, viewer, project, query, field):
    response = api(viewer).get(f"{url(project)}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["fields"]) == [field]


def test_a_period_of_366_days_is_allowed(api, viewer, project):
    assert api(viewer).get(f"{url(project)}?from=2025-03-01&to=2026-03-01").status_code == 200


def test_a_bad_period_answers_json_even_when_csv_was_asked_for(api, viewer, project):
    response = api(viewer).get(f"{url(project)}?from=nope", HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["fields"] == {"from": ["from must be a date written YYYY-MM-DD, e.g. 2026-01-31"]}


def test_outsiders_and_strangers_do_not_learn_the_project_exists(api, outsider, project, other_project, sampled):
    for accept in ("application/json", "text/csv"):
        response = api(outsider).get(url(project), HTTP_ACCEPT=accept)
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": "no such project"}
        assert "web" not in response.content.decode()
    assert api(outsider).get(f"/api/v1/projects/{project.pk + other_project.pk + 100}/usage/").status_code == 404
    assert api(None).get(url(project)).status_code in {401, 403}


def test_other_projects_rows_are_not_listed(api, outsider, other_project, make_stack, sampled):
    make_stack("theirs", created=at("2026-03-02 00:00"), project=other_project, user=outsider)
    usage_sample(now=at("2026-03-02 00:06"))
    rows = api(outsider).get(f"{url(other_project)}?from=2026-03-01&to=2026-03-31").json()
    assert [row["stack_name"] for row in rows] == ["theirs"]


# What members and viewers read.


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER, Role.OWNER])
def test_everyone_in_the_project_reads_it(api, project, sampled, role):
    person = MembershipFactory(project=project, role=role).user
    response = api(person).get(f"{url(project)}?from=2026-03-01&to=2026-03-31")
    assert response.status_code == 200
    assert len(response.json()) == 3


def test_rows_per_stack_and_day(api, viewer, project, sampled, member):
    response = api(viewer).get(f"{url(project)}?from=2026-03-01&to=2026-03-02")
    web, db = sampled["web"], sampled["db"]
    assert response.json() == [
        {
            "date": "2026-03-01",
            "stack_id": web.pk,
            "stack_name": "web",
            "user": "mateo",
            "vcpu_hours": "0.100000",
            "memory_gib_hours": "0.050000",
            "disk_gib_hours": "0.500000",
            "snapshot_gib_hours": "0.000000",
            "cost": "0.130000",
        },
        {
            "date": "2026-03-02",
            "stack_id": db.pk,
            "stack_name": "db",
            "user": "mateo",
            "vcpu_hours": "0.000000",
            "memory_gib_hours": "0.000000",
            "disk_gib_hours": "2.000000",
            "snapshot_gib_hours": "0.000000",
            "cost": "0.020000",
        },
        {
            "date": "2026-03-02",
            "stack_id": web.pk,
            "stack_name": "web",
            "user": "mateo",
            "vcpu_hours": "0.200000",
            "memory_gib_hours": "0.100000",
            "disk_gib_hours": "1.000000",
            "snapshot_gib_hours": "0.000000",
            "cost": "0.260000",
        },
    ]
    only_first = api(viewer).get(f"{url(project)}?from=2026-03-01&to=2026-03-01").json()
    assert [(row["date"], row["stack_name"]) for row in only_first] == [("2026-03-01", "web")]


def test_csv_has_the_same_rows(api, viewer, project, sampled):
    web, db = sampled["web"], sampled["db"]
    response = api(viewer).get(f"{url(project)}?from=2026-03-01&to=2026-03-02", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="usage-project-{project.pk}-2026-03-01-2026-03-02.csv"'
    )
    assert response.content.decode() == (
        f"{HEADER}\r\n"
        f"2026-03-01,{web.pk},web,mateo,0.100000,0.050000,0.500000,0.000000,0.130000\r\n"
        f"2026-03-02,{db.pk},db,mateo,0.000000,0.000000,2.000000,0.000000,0.020000\r\n"
        f"2026-03-02,{web.pk},web,mateo,0.200000,0.100000,1.000000,0.000000,0.260000\r\n"
    )
    # The download link of the page asks with ?format=csv: the same answer.
    by_format = api(viewer).get(f"{url(project)}?format=csv&from=2026-03-01&to=2026-03-02")
    assert by_format.content == response.content


def test_an_empty_period_is_a_header_alone(api, viewer, project):
    response = api(viewer).get(f"{url(project)}?from=2020-01-01&to=2020-01-31", HTTP_ACCEPT="text/csv")
    assert response.content.decode() == f"{HEADER}\r\n"


def test_csv_cells_a_spreadsheet_would_run_are_quoted_as_text(api, viewer, project, prices, make_stack):
    person = UserFactory(username="=cmd|' /C calc'!A0")
    MembershipFactory(project=project, user=person, role=Role.MEMBER)
    make_stack("tool", created=at("2026-03-01 10:00"), user=person)
    usage_sample(now=at("2026-03-01 10:06"))
    text = api(viewer).get(f"{url(project)}?from=2026-03-01&to=2026-03-01", HTTP_ACCEPT="text/csv").content.decode()
    assert "'=cmd|' /C calc'!A0" in text
    assert ",=cmd" not in text


def test_the_default_period_is_this_month_so_far(api, viewer, project, prices, make_stack):
    from usage.models import UsageRecord

    stack = make_stack("now", created=at("2026-03-01 10:00"))
    today = today_utc()
    last_month = today.replace(day=1) - timedelta(days=1)
    for day in (today, last_month):
        UsageRecord.objects.create(
            project=project,
            stack=stack,
            kept_stack_id=stack.pk,
            stack_name="now",
            date=day,
            updated_at=at("2026-03-01 10:00"),
        )
    rows = api(viewer).get(url(project)).json()
    assert [row["date"] for row in rows] == [today.isoformat()]


def test_a_deleted_stack_is_still_listed(api, viewer, project, sampled):
    web_id = sampled["web"].pk
    Stack.objects.filter(pk=web_id).delete()
    rows = api(viewer).get(f"{url(project)}?from=2026-03-01&to=2026-03-02").json()
    assert [(row["stack_id"], row["stack_name"]) for row in rows if row["stack_name"] == "web"] == [
        (web_id, "web"),
        (web_id, "web"),
    ]


def test_a_period_with_too_many_rows_is_refused(api, viewer, project, sampled, monkeypatch):
    monkeypatch.setattr("usage.selectors.MAX_ROWS", 2)
    response = api(viewer).get(f"{url(project)}?from=2026-03-01&to=2026-03-02")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["from"]
    assert api(viewer).get(f"{url(project)}?from=2026-03-02&to=2026-03-02").status_code == 200


def test_an_empty_bound_is_refused_not_taken_as_left_out():
    from portal import errors
    from usage.periods import usage_period

    for start, end, field in (("", None, "from"), (None, "", "to")):
        with pytest.raises(errors.Invalid) as refused:
            usage_period(start_text=start, end_text=end)
        assert field in refused.value.fields


def test_options_answers_json_even_when_csv_was_asked_for(api, viewer, project):
    response = api(viewer).options(f"{url(project)}?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
