"""The Hosts page (operators only): each host's state, load and sizes, with its actions.

What an action said is shown on the row of the host it acted on (messages tagged ``host-<pk>``);
every other message stays at the top of the page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.messages.storage.base import Message
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from provisioning.host_sizes import HostSize, host_sizes, launch_summary
from provisioning.models import Host, Operation

# What the chart's script reads of each host; the table under it shows every field.
CHART_FIELDS = ("name", "uri", "healthy", "enabled", "instances")


def note_tag(pk: int) -> str:
    """The message tag that places a note on the row of host ``pk``."""
    return f"host-{pk}"


def _chart(sizes: list[HostSize]) -> list[dict[str, Any]]:
    chart = []
    for size in sizes:
        vcpus, memory, _disk = size.allocations
        entry: dict[str, Any] = {field: getattr(size.host, field) for field in CHART_FIELDS}
        entry["instances"] = size.instances
        entry |= {"vcpus_used": vcpus.used, "vcpus_capacity": vcpus.capacity}
        entry |= {"memory_used_mib": memory.used, "memory_capacity_mib": memory.capacity}
        chart.append(entry)
    return chart


def last_evacuations(host_ids: list[int]) -> dict[int, Operation]:
    """Each host's latest evacuation (running or ended), by host id: its row shows progress and outcome."""
    evacuations = Operation.objects.filter(kind=Operation.Kind.EVACUATE_HOST)
    newest = evacuations.filter(host_id=OuterRef("pk")).order_by("-created_at", "-id").values("pk")[:1]
    ids = Host.objects.filter(pk__in=host_ids).annotate(last=Subquery(newest)).values_list("last", flat=True)
    found = evacuations.filter(pk__in=[pk for pk in ids if pk is not None])
    return {operation.host_id: operation for operation in found if operation.host_id is not None}


def _row(size: HostSize, notes: list[Message], evacuation: Operation | None) -> dict[str, Any]:
    evacuating = evacuation is not None and not evacuation.finished
    return {"size": size, "notes": notes, "evacuation": evacuation, "evacuating": evacuating}


def _notes_by_host(request: HttpRequest, sizes: list[HostSize]) -> tuple[dict[int, list[Message]], list[Message]]:
    shown = {note_tag(size.host.pk): size.host.pk for size in sizes}
    notes: dict[int, list[Message]] = {size.host.pk: [] for size in sizes}
    general: list[Message] = []
    for message in messages.get_messages(request):
        pk = next((shown[tag] for tag in message.extra_tags.split() if tag in shown), None)
        (notes[pk] if pk is not None else general).append(message)
    return notes, general


def hosts_page(request: HttpRequest) -> HttpResponse:
    sizes = host_sizes()
    notes, general = _notes_by_host(request, sizes)
    evacuations = last_evacuations([size.host.pk for size in sizes])
    context = {
        "rows": [_row(size, notes[size.host.pk], evacuations.get(size.host.pk)) for size in sizes],
        "summary": launch_summary(sizes),
        "chart": _chart(sizes),
        # Chart.js fills its box; give each host's pair of bars room to be read.
        "chart_height_rem": 5 + 3 * len(sizes),
        # Shadows the context processor's: notes placed on rows are not repeated on top.
        "messages": general,
    }
    return render(request, "provisioning/hosts.html", context)


def host_row(request: HttpRequest, pk: int, notes: list[Message]) -> HttpResponse:
    """One host's row alone, for htmx to swap in after an action."""
    size = next(size for size in host_sizes() if size.host.pk == pk)
    evacuation = last_evacuations([pk]).get(pk)
    return render(request, "provisioning/_host_row.html", {"row": _row(size, notes, evacuation)})
