"""Handing out stack subnets and the addresses in them.

A subnet is claimed by a StackNetwork row written in the launch transaction, after the host claim
(which locks the host row), so two launches on one host never take the same subnet; a database
constraint (one live subnet per host) backs that up.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

from portal.errors import NoCapacity
from provisioning.models import Host, StackNetwork

# Guests start at .10: the low addresses stay free for a router or a DNS server a later design may add.
FIRST_GUEST_OFFSET = 10


def allocate_subnet(host: Host) -> ipaddress.IPv4Network:
    taken = set(StackNetwork.objects.filter(host=host, released_at__isnull=True).values_list("cidr", flat=True))
    for subnet in settings.STACK_NETWORK_RANGE.subnets(new_prefix=settings.STACK_SUBNET_PREFIX):
        if str(subnet) not in taken:
            return subnet
    raise NoCapacity(f"host {host.name} has no free stack subnet left in {settings.STACK_NETWORK_RANGE}")


def guest_address(subnet: ipaddress.IPv4Network, index: int) -> str:
    """The address of the ``index``-th instance (from 0) of a stack on ``subnet``."""
    offset = FIRST_GUEST_OFFSET + index
    if offset >= subnet.num_addresses - 1:
        raise NoCapacity(f"subnet {subnet} has no room for {index + 1} instances")
    return str(subnet.network_address + offset)
