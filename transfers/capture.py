"""Publishing a stack back: its tiers' disks as new versions of the project's own catalog, and a
template that launches them as the stack was.

Asking (``capture_create``, in ``transfers.capture_request``) checks what can be checked at once
(``transfers.capture_checks``) and holds the stack. The job (``capture_job``, in
``transfers.capture_job``) copies the disks of the tiers (``transfers.capture_sources``) paused
together, registers each copy as ``<prefix>-<tier>`` at the version (``transfers.capture_naming``)
and makes the template (``transfers.capture_template``). All or nothing: whatever fails, what the
capture made is removed again and the capture says why (``transfers.capture_undo``); a capture whose
worker died is ended the same way (``transfers.capture_watchdog``).

This module is where callers import the captures' services from.
"""

from __future__ import annotations

from transfers.capture_job import capture_job
from transfers.capture_naming import (
    APPLIANCE_PREFIX,
    PREFIX_RULE,
    VERSION,
    VERSION_RULE,
    captured_identifier,
    captured_template_name,
)
from transfers.capture_request import CAPTURE, capture_create
from transfers.capture_selectors import capture_get, captures_visible_to, progress_percent
from transfers.capture_template import captured_document, template_source
from transfers.capture_watchdog import captures_watchdog

__all__ = [
    "APPLIANCE_PREFIX",
    "CAPTURE",
    "PREFIX_RULE",
    "VERSION",
    "VERSION_RULE",
    "capture_create",
    "capture_get",
    "capture_job",
    "captured_document",
    "captured_identifier",
    "captured_template_name",
    "captures_visible_to",
    "captures_watchdog",
    "progress_percent",
    "template_source",
]
