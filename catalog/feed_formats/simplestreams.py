"""simplestreams: the JSON streams of Ubuntu's cloud images (cloud-images.ubuntu.com) and LXD/Incus.

The feed URL is a stream's index (``…/streams/v1/index.json``, format ``index:1.0``) or one of its
products files (format ``products:1.0``). The index names its products files; those of
``datatype`` "image-downloads" are fetched (at most ``MAX_PRODUCTS_FILES``, each under
``PORTAL_FEED_MAX_BYTES``) from the mirror root: the URL above ``streams/v1/`` (or, for a file not
under ``streams/v1/``, its folder). Every item's URL is the mirror root and the item's ``path``, so a
stream can name files of its own mirror only (a path with ``..``, ``%``, ``?`` or a scheme is refused).

A products file maps product -> ``versions`` (by serial) -> ``items`` (by name) -> ``ftype``,
``path``, ``sha256``, ``size``; a value missing at one level is inherited from the level above,
as simplestreams defines. What the portal takes:

- VM disk items only: ``ftype`` "disk1.img" (Ubuntu's cloud images) or "disk-kvm.img" (LXD/Incus
  virtual machines), both qcow2. Root tarballs, squashfs and container images are passed over.
- x86_64 only (``arch`` "amd64" or "x86_64"). Products of other architectures are skipped, not
  refused: one stream serves every architecture, and the feed stays usable for the one we run.
- The newest ``VERSIONS_PER_PRODUCT`` serials of each product (serials compared as numbers where
  they hold digits), newest first: a stream keeps dozens of daily serials per product, and all of
  them would not fit ``PORTAL_FEED_MAX_ITEMS``; older versions already imported stay in the catalog
  as long as the feed store keeps them.

The appliance identifier is the product name as a slug (``com.ubuntu.cloud:server:22.04:amd64`` ->
``com.ubuntu.cloud-server-22.04-amd64``), the version its serial; the sha256 is verified at download.
Whatever the stream says wrong in what is taken (a size that is no size, a bad sha256, a path
leaving the mirror) refuses the whole feed, as in every dialect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from catalog.feed_formats import bounded_json
from catalog.feed_formats.common import (
    MAX_IMAGE_BYTES,
    MAX_TITLE_CHARS,
    MAX_VERSION_CHARS,
    FeedError,
    ParsedFeed,
    ParsedItem,
    checked_identifier,
    checked_sha256,
    checked_url,
    cut,
    finish,
    quoted,
    slug,
)
from catalog.fetch import FetchError
from catalog.redaction import redact_url

INDEX_FORMAT = "index:1.0"
PRODUCTS_FORMAT = "products:1.0"
DATATYPE = "image-downloads"
# VM disk items by ftype, preferred first when a version has both; every one of them is qcow2.
DISK_FTYPES = ("disk1.img", "disk-kvm.img")
ARCHES = {"amd64": "x86_64", "x86_64": "x86_64"}
MAX_PRODUCTS_FILES = 20
VERSIONS_PER_PRODUCT = 3
# Ubuntu's cloud images do not boot to a login in less; the portal's usual default (128) is for tiny appliances.
MIN_RAM_MIB = 512

# A relative path of ordinary file-name characters: no scheme, query, fragment, "%" escape or "\".
_PATH = re.compile(r"[A-Za-z0-9._~:+,=-]{1,255}(?:/[A-Za-z0-9._~:+,=-]{1,255}){0,31}")
_SERIAL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:+~-]{{0,{MAX_VERSION_CHARS - 1}}}")
_SERIAL_PARTS = re.compile(r"\d+|\D+")
# A serial that starts with a date, maybe a time: 20240319, 20240319.1, 20240320_07:42.
_SERIAL_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:[_T.-](\d{2}):?(\d{2}))?")

FetchMore = Callable[[str], bytes]


@dataclass(frozen=True)
class _Candidate:
    """One VM disk item chosen from a products file, not yet checked."""

    product: str
    serial: str
    item: dict[str, Any]
    levels: tuple[dict[str, Any], ...]  # item, version, product, file: where inherited values are looked up
    arch: str


def parse(data: bytes, *, url: str, fetch_more: FetchMore | None, max_items: int) -> ParsedFeed:
    max_bytes = settings.FEED_MAX_BYTES
    document = bounded_json.load(data, what="the feed", max_bytes=max_bytes)
    kind = document.get("format") if isinstance(document, dict) else None
    if kind not in (INDEX_FORMAT, PRODUCTS_FORMAT):
        raise FeedError(
            f"{_describe(document)}, not an RSS feed nor a simplestreams {INDEX_FORMAT} or {PRODUCTS_FORMAT} file"
        )
    root = mirror_root(url)
    if kind == PRODUCTS_FORMAT:
        files: Iterator[tuple[str, Any]] = iter([(url, document)])
    else:
        if fetch_more is None:
            raise FeedError("the feed is a simplestreams index, whose products files this import cannot fetch")
        files = _products_files(root, products_paths(document), fetch_more, max_bytes)
    candidates: list[_Candidate] = []
    names: list[str] = []
    problems: list[str] = []
    for where, products in files:
        names.append(_content_id(products, where))
        candidates.extend(_candidates(products, where, problems))
        if len(candidates) > max_items:
            # Refused whole, as an RSS feed over the limit is, and before the next file is fetched.
            raise FeedError(
                f"the stream has at least {len(candidates)} VM disk images (the newest {VERSIONS_PER_PRODUCT} "
                f"versions of each x86_64 product), more than the {max_items} the portal reads from one feed "
                "(PORTAL_FEED_MAX_ITEMS)"
            )
    if not candidates and not problems:
        raise FeedError(
            "the stream has no items the portal can use: no x86_64 (amd64) product has a VM disk image "
            f"(ftype {' or '.join(DISK_FTYPES)})"
        )
    items: list[ParsedItem] = []
    for candidate in candidates:
        try:
            items.append(_item(candidate, root))
        except ValueError as exc:
            problems.append(f"item '{quoted(candidate.product)} {quoted(candidate.serial)}': {exc}")
    return finish(title=", ".join(names), items=items, problems=problems, format="simplestreams")


def mirror_root(url: str) -> str:
    """The URL every path of the stream is relative to: above ``streams/v1/``, else the file's folder."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise FeedError("a simplestreams file is read relative to its own URL, and none was given")
    marker = parts.path.rfind("/streams/v1/")
    folder = parts.path[: marker + 1] if marker >= 0 else parts.path.rpartition("/")[0] + "/"
    # The query is left off: it belongs to the file asked for (a signature, say), not to others.
    return urlunsplit((parts.scheme, parts.netloc, folder, "", ""))


def products_paths(index: dict[str, Any]) -> list[str]:
    """The checked paths of the index's products files of image downloads; ``FeedError`` if none or too many."""
    entries = index.get("index")
    if not isinstance(entries, dict):
        raise FeedError("the simplestreams index has no 'index' object")
    paths: list[str] = []
    problems: list[str] = []
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            problems.append(f"index entry '{quoted(name)}' is {_describe(entry)}, not an object")
            continue
        if entry.get("datatype") != DATATYPE or entry.get("format") != PRODUCTS_FORMAT:
            continue  # image ids of clouds, other formats: nothing to download
        try:
            path = checked_path(entry.get("path"))
        except ValueError as exc:
            problems.append(f"index entry '{quoted(name)}': {exc}")
            continue
        if path not in paths:
            paths.append(path)
    if problems:
        raise FeedError(f"the simplestreams index is wrong: {'; '.join(problems[:10])}")
    if not paths:
        raise FeedError(f"the simplestreams index has no items: it names no products file of {DATATYPE}")
    if len(paths) > MAX_PRODUCTS_FILES:
        raise FeedError(
            f"the simplestreams index names {len(paths)} products files of {DATATYPE}, more than the "
            f"{MAX_PRODUCTS_FILES} the portal reads from one feed"
        )
    return paths


def checked_path(path: object) -> str:
    """A path inside the mirror, else ``ValueError``: relative, plain characters, no ``.`` or ``..`` part."""
    if not isinstance(path, str):
        raise ValueError(f"'path' is {_describe(path)}, not text")
    if not _PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"path '{quoted(path)}' is not a plain path inside the mirror")
    return path


def _products_files(root: str, paths: list[str], fetch_more: FetchMore, max_bytes: int) -> Iterator[tuple[str, Any]]:
    """Each products file as read, fetched one at a time (a refused feed stops before fetching the rest)."""
    for path in paths:
        url = root + path
        try:
            data = fetch_more(url)
        except FetchError as exc:
            raise FeedError(f"{exc} (products file '{redact_url(url)}')") from None
        what = f"the products file '{redact_url(url)}'"
        document = bounded_json.load(data, what=what, max_bytes=max_bytes)
        if not isinstance(document, dict) or document.get("format") != PRODUCTS_FORMAT:
            raise FeedError(f"{what} is {_describe(document)}, not a simplestreams {PRODUCTS_FORMAT} file")
        yield url, document


def _content_id(products: dict[str, Any], where: str) -> str:
    content_id = products.get("content_id")
    return content_id if isinstance(content_id, str) and content_id.strip() else urlsplit(where).hostname or ""


def _candidates(products: dict[str, Any], where: str, problems: list[str]) -> list[_Candidate]:
    """The newest VM disk items of each x86_64 product in one products file; what is malformed goes to ``problems``."""
    datatype = products.get("datatype", DATATYPE)
    if datatype != DATATYPE:
        raise FeedError(f"the products file '{redact_url(where)}' lists {quoted(datatype)}, not {DATATYPE}")
    catalog = products.get("products")
    if not isinstance(catalog, dict):
        raise FeedError(f"the products file '{redact_url(where)}' has no 'products' object")
    chosen: list[_Candidate] = []
    for name, product in catalog.items():
        said = _inherited("arch", (product, products)) if isinstance(product, dict) else None
        if said is not None and _our_arch(said) is None:
            continue  # another architecture: skipped whole, however it is written, as none of it is read
        if not isinstance(product, dict) or not isinstance(product.get("versions"), dict):
            problems.append(f"item '{quoted(name)}': the product is not an object with 'versions'")
            continue
        found: list[_Candidate] = []
        for serial, version in product["versions"].items():
            if not isinstance(version, dict) or not isinstance(version.get("items"), dict):
                problems.append(f"item '{quoted(name)} {quoted(serial)}': not an object with 'items'")
                continue
            disk = _disk_item(version["items"])
            if disk is None:
                continue
            levels = (disk, version, product, products)
            arch = _our_arch(_inherited("arch", levels))
            if arch is None:
                continue  # another architecture (or none said): skipped, see the module's words
            found.append(_Candidate(product=name, serial=serial, item=disk, levels=levels, arch=arch))
        found.sort(key=lambda candidate: _serial_order(candidate.serial), reverse=True)
        chosen.extend(found[:VERSIONS_PER_PRODUCT])
    return chosen


def _our_arch(said: Any) -> str | None:
    """The portal's name for the architecture a stream names, or None if it runs no such thing."""
    return ARCHES.get(said) if isinstance(said, str) else None


def _disk_item(items: dict[str, Any]) -> dict[str, Any] | None:
    disks = {
        item["ftype"]: item for item in items.values() if isinstance(item, dict) and isinstance(item.get("ftype"), str)
    }
    return next((disks[ftype] for ftype in DISK_FTYPES if ftype in disks), None)


def _inherited(key: str, levels: tuple[dict[str, Any], ...]) -> Any:
    return next((level[key] for level in levels if key in level), None)


def _serial_order(serial: str) -> tuple[tuple[int, int, str], ...]:
    """Serials compared as people read them: "20240319.10" after "20240319.9"."""
    return tuple((1, int(part), "") if part.isdigit() else (0, 0, part) for part in _SERIAL_PARTS.findall(serial[:100]))


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _title(product: str, levels: tuple[dict[str, Any], ...]) -> str:
    """ "Ubuntu 22.04 LTS (jammy)" from ``os``, ``release_title`` and ``release``; the product name if none."""
    os_name = _text(_inherited("os", levels))
    release_title = _text(_inherited("release_title", levels)) or _text(_inherited("version", levels))
    release = _text(_inherited("release", levels))
    variant = _text(_inherited("variant", levels))
    words = [os_name[:1].upper() + os_name[1:], release_title or release]
    if release and release not in release_title:
        words.append(f"({release})")
    if variant and variant != "default":
        words.append(variant)
    title = " ".join(word for word in words if word)
    return cut(title or product, MAX_TITLE_CHARS)


def _serial_date(serial: str) -> datetime | None:
    found = _SERIAL_DATE.match(serial)
    if not found:
        return None
    year, month, day, hour, minute = (int(part) if part else 0 for part in found.groups())
    try:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    except ValueError:
        return None


def _item(candidate: _Candidate, root: str) -> ParsedItem:
    if not isinstance(candidate.serial, str) or not _SERIAL.fullmatch(candidate.serial):
        raise ValueError(
            f"version '{quoted(candidate.serial)}' is no serial (1 to {MAX_VERSION_CHARS} letters, digits and ._:+~-)"
        )
    appliance = checked_identifier(slug(candidate.product) or candidate.product)
    item = candidate.item
    url = checked_url(root + checked_path(item.get("path")), what="item URL")
    sha256 = item.get("sha256")
    if not isinstance(sha256, str):
        raise ValueError("no sha256")
    size = item.get("size")
    if type(size) is not int or not 0 < size <= MAX_IMAGE_BYTES:
        shown = "none" if size is None else f"'{quoted(size)}'"
        raise ValueError(f"size must be a whole number from 1 to {MAX_IMAGE_BYTES}, not {shown}")
    return ParsedItem(
        appliance=appliance,
        title=_title(candidate.product, candidate.levels),
        description=f"simplestreams product {cut(candidate.product, 300)}",
        role="",
        version=candidate.serial,
        url=url,
        size_bytes=size,
        media_type="",
        sha256=checked_sha256(sha256),
        disk_format="qcow2",
        arch=candidate.arch,
        min_ram_mib=MIN_RAM_MIB,
        min_vcpus=1,
        service_port=None,
        published=_serial_date(candidate.serial),
        checksum_source="feed",
        package="disk",
    )


def _describe(value: Any) -> str:
    """What a JSON value is, for a message: "a JSON list", "a JSON object of format 'x'"..."""
    if isinstance(value, dict):
        kind = value.get("format")
        return f"a JSON object of format '{quoted(kind)}'" if isinstance(kind, str) else "a JSON object with no format"
    names = {list: "a JSON list", str: "a JSON string", bool: "a JSON boolean", int: "a JSON number"}
    return names.get(type(value), "a JSON number" if isinstance(value, float) else "JSON null")
