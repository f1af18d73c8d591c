"""A small picture of a stack's tiers: who talks to whom, drawn as SVG boxes and arrows.

Tiers are laid out left to right in start order (a tier's dependencies stand to its right, the
published tier on the left, where the outside world comes in); the template draws the shapes
computed here, so no geometry lives in HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.templates import TemplateDocument

BOX_WIDTH = 150
BOX_HEIGHT = 46
GAP_X = 60
GAP_Y = 18
MARGIN = 10


@dataclass(frozen=True)
class Box:
    tier: str
    x: int
    y: int
    label: str  # "web (2) · :80"
    published: bool

    @property
    def centre_y(self) -> int:
        return self.y + BOX_HEIGHT // 2


@dataclass(frozen=True)
class Arrow:
    x1: int
    y1: int
    x2: int
    y2: int
    waits: bool  # the dependent waits for the dependency's port


@dataclass(frozen=True)
class Diagram:
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    width: int
    height: int
    box_width: int = BOX_WIDTH
    box_height: int = BOX_HEIGHT


def tier_diagram(document: TemplateDocument) -> Diagram:
    layers = list(reversed(document.start_order()))  # dependents left, what they depend on right
    boxes: dict[str, Box] = {}
    for column, layer in enumerate(layers):
        for row, tier in enumerate(layer):
            label = tier.name + (f" ({tier.count})" if tier.count > 1 else "")
            if tier.publish:
                label += " · " + ", ".join(f":{port}" for port in tier.publish)
            boxes[tier.name] = Box(
                tier=tier.name,
                x=MARGIN + column * (BOX_WIDTH + GAP_X),
                y=MARGIN + row * (BOX_HEIGHT + GAP_Y),
                label=label,
                published=bool(tier.publish),
            )
    arrows = tuple(
        Arrow(
            x1=boxes[tier.name].x + BOX_WIDTH,
            y1=boxes[tier.name].centre_y,
            x2=boxes[dependency.tier].x,
            y2=boxes[dependency.tier].centre_y,
            waits=dependency.wait_for_port,
        )
        for tier in document.tiers
        for dependency in tier.depends_on
    )
    rows = max(len(layer) for layer in layers)
    return Diagram(
        boxes=tuple(boxes.values()),
        arrows=arrows,
        width=2 * MARGIN + len(layers) * BOX_WIDTH + (len(layers) - 1) * GAP_X,
        height=2 * MARGIN + rows * BOX_HEIGHT + (rows - 1) * GAP_Y,
    )
