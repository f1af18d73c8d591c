"""The console ticket service on its own: a refused redemption is closed for good."""

from __future__ import annotations

import pytest

from portal.models import Membership, Role
from provisioning.consoles import tickets
from provisioning.models import ConsoleTicket
from tests.provisioning.test_console_helpers import make_running_instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(project):
    return make_running_instance(project)


def test_a_refused_redemption_is_spent_and_closed(member, owner, instance):
    issued = tickets.console_ticket_issue(user=member, instance=instance, kind="vnc")
    # Between issue and redemption the member is demoted to viewer: the ticket must be refused.
    Membership.objects.filter(user=member).update(role=Role.VIEWER)

    with pytest.raises(tickets.ConsoleRefused):
        tickets.console_ticket_redeem(ticket=issued.ticket, kind="vnc", session_user=member, client_address="::1")

    row = ConsoleTicket.objects.get(user=member)
    assert row.used_at is not None
    assert row.closed_at is not None, "a refused session must be recorded as closed"
    assert row.opened_at is None


def test_a_refused_ticket_cannot_be_tried_again(member, instance):
    issued = tickets.console_ticket_issue(user=member, instance=instance, kind="vnc")
    Membership.objects.filter(user=member).update(role=Role.VIEWER)
    with pytest.raises(tickets.ConsoleRefused):
        tickets.console_ticket_redeem(ticket=issued.ticket, kind="vnc", session_user=member, client_address="::1")
    Membership.objects.filter(user=member).update(role=Role.MEMBER)
    with pytest.raises(tickets.ConsoleRefused, match="unknown, used or expired"):
        tickets.console_ticket_redeem(ticket=issued.ticket, kind="vnc", session_user=member, client_address="::1")
