"""The Hosts page's Evacuate and Maintenance buttons in a real browser, at phone and desktop widths:
each asks first, answers in the host's row, and the row shows what could not move."""

from __future__ import annotations

import pytest

from provisioning.models import Host, Status
from tests.browser_pages import inspect_page, new_page, sign_in
from tests.factories import HostFactory, ProjectFactory
from tests.provisioning.test_evacuation import stack_on

pytestmark = [pytest.mark.xdist_group("browser-hosts")]


@pytest.fixture
def hosts(transactional_db):
    serving = HostFactory(name="hv-serving", uri="test:///browser-serving")
    drained = HostFactory(name="hv-drained", uri="test:///browser-drained", draining=True)
    stack_on(drained, ProjectFactory(name="gamma"), "parked", Status.STOPPED)
    return serving, drained


def answer(page, accept: bool, questions: list[str]) -> None:
    def reply(dialog):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", reply)


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_evacuate_and_maintenance_ask_first_and_answer_in_the_row(chromium, live_portal, operator, hosts, width):
    serving, drained = hosts
    page = new_page(chromium, width)
    sign_in(page, live_portal, operator)
    page.goto(f"{live_portal}/hosts/")
    inspect_page(page, "hosts-operations", width)

    questions: list[str] = []
    row = page.locator(f"#host-{drained.pk}")
    answer(page, False, questions)
    row.get_by_role("button", name=f"Evacuate {drained.name}").click()
    page.wait_for_timeout(300)
    assert questions
    assert questions[0].startswith(f"Evacuate {drained.name}?")
    assert not drained.operations.exists()

    answer(page, True, questions)
    row.get_by_role("button", name=f"Evacuate {drained.name}").click()
    row = page.locator(f"#host-{drained.pk}")
    row.get_by_text("Could not move:").wait_for()
    assert "parked: it is stopped" in row.inner_text()
    assert "Last evacuation" in row.inner_text()
    assert page.url.endswith("/hosts/")  # answered in place

    row = page.locator(f"#host-{serving.pk}")
    answer(page, True, questions)
    row.get_by_role("button", name=f"Maintenance {serving.name}").click()
    row = page.locator(f"#host-{serving.pk}")
    row.get_by_role("button", name=f"End maintenance {serving.name}").wait_for()
    assert questions[-1].startswith(f"Put {serving.name} in maintenance?")
    assert Host.objects.get(pk=serving.pk).maintenance
    inspect_page(page, "hosts-operations-after", width)

    answer(page, True, questions)
    row.get_by_role("button", name=f"End maintenance {serving.name}").click()
    page.locator(f"#host-{serving.pk}").get_by_role("button", name=f"Drain {serving.name}").wait_for()
    assert not Host.objects.get(pk=serving.pk).maintenance
    assert page.script_errors == []
