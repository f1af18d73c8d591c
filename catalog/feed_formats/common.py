"""What every feed dialect returns, and the checks every value taken from a feed passes.

A feed is all or nothing: each reader collects the problems of every item, and ``finish`` refuses
the whole feed if there is any, naming them. Everything quoted from the feed in a problem is cut
short (a tenant reads them, and one feed must not fill a page with them) and URLs in it are
redacted (``FeedError`` does that, whoever builds the message).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from catalog.fetch import FetchError, validate_url
from catalog.redaction import redact_url, redact_urls_in

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
IDENTIFIER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
# Disk formats a feed may declare; the image's magic bytes must agree when it is downloaded.
SUPPORTED_FORMATS = ("qcow2", "raw", "vmdk", "vdi", "vhdx")
SUPPORTED_ARCHES = ("x86_64",)
PACKAGES = ("disk", "ova", "xvm2")  # ApplianceVersion.Package
# Problems named in one error (the rest are counted), and characters quoted from the feed in each.
MAX_PROBLEMS_LISTED = 10
MAX_QUOTED_CHARS = 60
# A description is prose for a card and a page; past this it is cut (the feed is not refused for it).
MAX_DESCRIPTION_CHARS = 4000
# The columns these go to (Appliance.title, ApplianceVersion.version, .image_url, .media_type).
MAX_TITLE_CHARS = 200
MAX_VERSION_CHARS = 50
MAX_URL_CHARS = 1000
MAX_MEDIA_TYPE_CHARS = 100
MAX_IMAGE_BYTES = 2**50
# A date longer than this is no date any dialect writes; it is not handed to the date parsers.
MAX_DATE_CHARS = 100


class FeedError(Exception):
    """The feed cannot be used; the message lists what is wrong (URLs in it redacted)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_urls_in(message))


# Slots: a feed makes thousands of these at once, and each one without its own __dict__ is one
# object less for the garbage collector to walk while feedparser's whole tree is still alive.
@dataclass(frozen=True, slots=True)
class ParsedItem:
    appliance: str
    title: str
    description: str
    role: str
    version: str
    url: str
    size_bytes: int
    media_type: str
    sha256: str  # "" when the feed gives none: the first download's is pinned
    disk_format: str  # as declared; "" when the feed does not say (the file's magic bytes decide)
    arch: str
    min_ram_mib: int
    min_vcpus: int
    service_port: int | None
    published: datetime | None
    virtual_size_bytes: int | None = None  # declared by the feed; launches claim it before any download
    checksum_source: str = "feed"  # ApplianceVersion.ChecksumSource: "feed" or "pinned"
    package: str = "disk"  # ApplianceVersion.Package: "disk", "xvm2" or "ova"


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    items: list[ParsedItem]
    format: str = "vmcast"  # Feed.Format: "vmcast", "archipel" or "simplestreams"


def problem_list(problems: list[str]) -> str:
    """The first problems, and how many more: enough for a publisher to start fixing, bounded in size."""
    shown = "; ".join(problems[:MAX_PROBLEMS_LISTED])
    more = len(problems) - MAX_PROBLEMS_LISTED
    return f"{shown}; and {more} more problem{'s' if more > 1 else ''}" if more > 0 else shown


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(value: object) -> str:
    """A value from the feed as a problem quotes it: on one line, and cut short."""
    text = str(value)[: MAX_QUOTED_CHARS * 4]  # a megabyte of title is not split into words first
    return cut(" ".join(text.split()), MAX_QUOTED_CHARS)


def finish(*, title: str, items: list[ParsedItem], problems: list[str], format: str) -> ParsedFeed:
    """The feed, or ``FeedError`` naming every problem (and every version listed twice): never part of it."""
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item.appliance, item.version)
        if key in seen:
            problems.append(f"appliance '{item.appliance}' version '{quoted(item.version)}' appears twice")
        seen.add(key)
    if problems:
        raise FeedError(problem_list(problems))
    return ParsedFeed(title=cut(" ".join(title.split()), MAX_TITLE_CHARS), items=items, format=format)


def checked_url(url: str, *, what: str) -> str:
    """``url`` if the fetcher may be pointed at it later, else ``ValueError`` saying why (URL redacted)."""
    if not url.startswith(("http://", "https://", "file://")) or len(url) > MAX_URL_CHARS:
        shown = quoted(redact_url(url))  # redacted before it is cut, so a cut cannot keep half a password
        if len(url) > MAX_URL_CHARS:
            raise ValueError(f"{what} is longer than {MAX_URL_CHARS} characters: '{shown}'")
        raise ValueError(f"{what} '{shown}' is not http, https or file")
    try:
        validate_url(url)
    except FetchError as exc:
        # The reason first: words after a URL in a message are read as part of it when redacted.
        raise ValueError(f"{exc}: {what} '{quoted(redact_url(url))}'") from None
    return url


def positive_int(text: str, what: str, *, maximum: int) -> int:
    """A whole number from 1 to ``maximum`` written in decimal digits, else ``ValueError``."""
    # Checked by length before int(): a feed's million-digit number is refused, not converted.
    if not text.isascii() or not text.isdigit() or len(text) > 20 or not 0 < int(text) <= maximum:
        raise ValueError(f"{what} must be a whole number from 1 to {maximum}, not '{quoted(text)}'")
    return int(text)


def checked_identifier(value: str) -> str:
    if not IDENTIFIER_RE.match(value):
        raise ValueError(f"appliance identifier '{quoted(value)}' may only hold a-z, 0-9, '.', '_' and '-'")
    return value


def checked_sha256(value: str) -> str:
    value = value.lower()
    if not SHA256_RE.match(value):
        raise ValueError("sha256 must be 64 hex digits")
    return value


# Runs of what an identifier cannot hold, with the dashes around them: each becomes one "-".
_NOT_IN_IDENTIFIER = re.compile(r"[^a-z0-9._]+")


def slug(text: str) -> str:
    """``text`` as an appliance identifier (a-z, 0-9, '.', '_', '-'; at most 100), or "" if nothing is left.

    Accents are dropped rather than the letters (``Débian`` is ``debian``); every other run of
    characters an identifier cannot hold becomes one ``-``.
    """
    text = text[:400]
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = text.lower()
    value = _NOT_IN_IDENTIFIER.sub("-", ascii_text).lstrip("._-")
    return value[:100].rstrip("._-")


def parse_moment(text: str) -> datetime | None:
    """A date as feeds write it, in UTC, or None: RFC 822 (RSS) or ISO 8601, which includes what
    Python's ``str(datetime)`` writes (``2011-05-09 16:41:27.403727``, as Archipel's VMcasts have it).

    A date without a zone is read as UTC: the publisher's zone is unknown, and UTC is one answer
    that does not change with the portal's own.
    """
    text = text.strip()
    if not text or len(text) > MAX_DATE_CHARS:
        return None
    # ISO dates start with the year; RFC 822 ones mostly with the day's name. Each is tried first
    # where it is likelier, so a feed's usual dates cost one parse.
    readers = (datetime.fromisoformat, parsedate_to_datetime)
    moment: datetime | None = None
    for reader in readers if text[:1].isdigit() else reversed(readers):
        try:
            moment = reader(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if moment is not None:
            break
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def moment_version(moment: datetime) -> str:
    """A moment as a version string: sortable, UTC, at most 26 characters ("2011-05-09 16:41:27.403727")."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(sep=" ")
