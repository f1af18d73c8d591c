"""Why a version cannot be launched, said to the person about to launch it, with what they can do.

A version is not launched when its feed withdrew it, or when its own image download failed: a
launch would only fail the same way, or wait on a server that already said no. Download errors are
written for logs and operators (URLs, byte counts, setting names); a tenant reads one sentence on
what went wrong, one on what to do, and the error's own words as detail, minus operator hints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.models import ApplianceVersion

_OPERATOR_HINT = re.compile(r"\s*\((?:an operator [^)]*|PORTAL_[A-Z_]+)\)")
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")

RETRY_DOWNLOAD = "Retry the download; if it fails again, ask the feed's publisher."
RETRY_LATER = "Retry the download later."
ASK_PUBLISHER = "The feed's publisher must fix it; once they have, retry the feed and then the download."
ASK_OPERATOR = "Ask an operator."


@dataclass(frozen=True)
class LaunchBlock:
    """Why a version offers no Launch: ``summary`` says why, ``advice`` what to do, ``detail`` the error."""

    summary: str
    advice: str
    detail: str = ""
    retry_download: bool = False  # whether downloading the image again is worth offering


# First match wins: (words in the error, why, what to do, whether a new download may help).
_KINDS: tuple[tuple[tuple[str, ...], str, str, bool], ...] = (
    (
        ("sha256 mismatch",),
        "The image failed its checksum: the bytes downloaded are not the ones its feed promised.",
        "Retry the download (a transfer can be damaged); if it fails again, the feed's publisher must fix "
        "the image or its checksum: then retry the feed.",
        True,
    ),
    (
        ("changed since they were pinned",),
        "The image changed since its first download, under the same version number.",
        "The feed's publisher must publish the new image as a new version; then retry the feed.",
        False,
    ),
    (
        ("qemu-img",),
        "The portal could not check or convert the image.",
        "Retry the download; if it fails again, ask an operator.",
        True,
    ),
    (
        ("cannot resolve host", "has no address", "not a valid host name", "transfer failed", "cannot fetch"),
        "The image's server could not be reached.",
        RETRY_LATER,
        True,
    ),
    (("took longer than",), "The image's server was too slow: the download ran out of time.", RETRY_LATER, True),
    (
        ("non-public address", "outside the folders", "names a remote host", "unsupported URL scheme"),
        "The portal is not allowed to download images from that address.",
        ASK_OPERATOR,
        False,
    ),
    (
        ("over the limit", "bytes, stopped", "more than the"),
        "The image is larger than the portal accepts, or than its feed declares.",
        "Ask the feed's publisher for a smaller image, or an operator to raise the limit.",
        False,
    ),
    (
        ("image cache is full",),
        "The portal's image store is full right now.",
        "Retry the download later, once stacks using other images are deleted; or ask an operator.",
        True,
    ),
    (
        ("backing file", "external data file", "extents", "encrypted"),
        "The image was refused: it could read files on the portal's hosts, or is encrypted.",
        ASK_PUBLISHER,
        False,
    ),
    (
        ("header says", "format", "package", "manifest", "gzip", "domain definition", "description.xml"),
        "The download is not a disk image or package the portal can use.",
        ASK_PUBLISHER,
        False,
    ),
    (("worker went away", "stopped"), "The download was interrupted before it finished.", RETRY_DOWNLOAD, True),
    (("redirect",), "The image's server redirected the portal somewhere it cannot follow.", ASK_PUBLISHER, False),
)


def explain_image_error(error: str) -> LaunchBlock:
    detail = _OPERATOR_HINT.sub("", error).strip()
    status = _HTTP_STATUS.search(error)
    if status:
        code = int(status.group(1))
        if code in (401, 403):
            summary, advice, retry = f"The image's server refused access (HTTP {code}).", ASK_PUBLISHER, False
        elif code in (404, 410):
            summary = f"The image's server has no image at its address (HTTP {code})."
            advice, retry = "The feed may be out of date: retry the feed, or ask its publisher.", False
        else:
            summary, advice, retry = f"The image's server answered with an error (HTTP {code}).", RETRY_LATER, True
        return LaunchBlock(summary, advice, detail, retry)
    for words, summary, advice, retry in _KINDS:
        if any(word in error for word in words):
            return LaunchBlock(summary, advice, detail, retry)
    return LaunchBlock("The image could not be downloaded.", RETRY_DOWNLOAD, detail, True)


WITHDRAWN = LaunchBlock(
    "Withdrawn: its feed no longer lists this version, so new stacks cannot use it.",
    "Launch a current version of this appliance instead.",
)


def launch_block(version: ApplianceVersion) -> LaunchBlock | None:
    """Why ``version`` must not be launched now, or None when it may be (its image may still be downloaded)."""
    if version.withdrawn:
        return WITHDRAWN
    image = version.image_state
    if image.status == ApplianceVersion.ImageStatus.ERROR:
        return explain_image_error(image.error)
    return None
