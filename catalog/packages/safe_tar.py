"""Reading tar archives from strangers, member by member, without ever extracting one as the archive says.

A member's name is only ever compared, never used as a path: it is read as a relative path
(``/etc/x`` is ``etc/x``, as Archipel writes its packages) and a name that climbs out with ``..``
is refused. When a caller wants a member's bytes on disk, it names the file itself, inside its own
scratch folder, and the file is opened so that it cannot already exist or be a link
(``O_EXCL | O_NOFOLLOW``).

``tarfile`` parses each 512-byte header block (``TarInfo.frombuf``); everything after that is done
here, so a hostile archive meets only limits: at most ``MAX_MEMBERS`` entries, names and extended
headers of bounded length, member sizes adding up to at most the caller's cap. Symbolic and hard
links, device nodes, fifos, sparse files and entries of unknown kinds are refused, not skipped: an
archive holding them was not made for this.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from catalog.packages.capped_gzip import CappedGunzip, Readable
from catalog.packages.errors import PackageError

BLOCK_BYTES = tarfile.BLOCKSIZE
MAX_MEMBERS = 64  # files and folders; a package holds a descriptor, a manifest and a few disks
MAX_NAME_CHARS = 1024
MAX_NAME_PART_CHARS = 255
MAX_EXTENDED_HEADER_BYTES = 64 * 1024  # a pax header or GNU long name: names and times, never data
COPY_BYTES = 1024 * 1024

_PLAIN_FILE = (tarfile.REGTYPE, tarfile.AREGTYPE)
_EXTENDED = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
_REFUSED_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.GNUTYPE_LONGLINK: "a link",
    tarfile.CHRTYPE: "a device node",
    tarfile.BLKTYPE: "a device node",
    tarfile.FIFOTYPE: "a fifo",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
    tarfile.CONTTYPE: "a contiguous file",
}
_ZERO_BLOCK = bytes(BLOCK_BYTES)
_OPEN_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def quoted(name: str) -> str:
    """A name from an archive as a message quotes it: printable and short."""
    shown = name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return shown if len(shown) <= 80 else shown[:79] + "…"


def member_name(raw: str) -> str:
    """``raw`` read as a path relative to the archive ("a/b"); ``PackageError`` for names that could escape."""
    if "\0" in raw:
        raise PackageError(f"the package has a member whose name holds a NUL byte ('{quoted(raw)}')")
    if len(raw) > MAX_NAME_CHARS:
        raise PackageError(f"the package has a member name longer than {MAX_NAME_CHARS} characters")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PackageError(f"the package has a member named '{quoted(raw)}', which climbs out with '..'; refusing it")
    if any(len(part) > MAX_NAME_PART_CHARS for part in parts):
        raise PackageError(f"the package has a member name with a part longer than {MAX_NAME_PART_CHARS} characters")
    if not parts:
        raise PackageError(f"the package has a member with no usable name ('{quoted(raw)}')")
    return "/".join(parts)


def base_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Member:
    name: str  # as member_name reads it: relative, no "." or ".." parts
    size: int


class MemberData:
    """The bytes of the current member, read in chunks; what the reader leaves is skipped before the next member."""

    def __init__(self, stream: Readable, size: int, *, name: str, tick: Callable[[], None] | None) -> None:
        self._stream = stream
        self._left = size
        self._name = name
        self._tick = tick

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            raise ValueError("read a member in bounded chunks")
        want = min(size, self._left)
        if want == 0:
            return b""
        chunk = self._stream.read(want)
        if not chunk:
            raise PackageError(f"the package ends in the middle of '{quoted(self._name)}' (truncated)")
        self._left -= len(chunk)
        if self._tick:
            self._tick()
        return chunk

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.read(COPY_BYTES):
            yield chunk

    def skip_rest(self) -> None:
        for _chunk in self.chunks():
            pass


def read_members(
    stream: Readable, *, max_total_bytes: int, tick: Callable[[], None] | None = None
) -> Iterator[tuple[Member, MemberData]]:
    """Each plain file of the archive in ``stream``, in order, with its data (readable until the next one).

    Folders are passed over. Raises ``PackageError`` for anything else, for duplicate names, for more
    than ``MAX_MEMBERS`` entries, and once the members' sizes add up to more than ``max_total_bytes``.
    ``tick`` is called as data is read (a heartbeat for long archives).
    """
    seen: set[str] = set()
    entries = 0
    total = 0
    pax: dict[str, str] = {}
    long_name: str | None = None
    while True:
        block = _read_exactly(stream, BLOCK_BYTES, allow_eof=True)
        if not block:
            return  # no end-of-archive blocks: GNU tar reads such archives too
        if block == _ZERO_BLOCK:
            return  # the zero block that ends the archive
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise PackageError(f"the package is not a tar archive, or a damaged one ({exc})") from None
        if info.size < 0:
            raise PackageError("the package has a member of negative size")
        kind = info.type
        if kind in _EXTENDED or kind == tarfile.XGLTYPE:
            records = _pax_records(_read_extended(stream, info.size))
            if any(key.startswith("GNU.sparse") for key in records):
                raise PackageError("the package holds a sparse file; refusing it")
            if kind == tarfile.XGLTYPE:
                if "path" in records or "size" in records:
                    raise PackageError("the package's global header sets names or sizes; refusing it")
            else:
                pax = records
            continue
        if kind == tarfile.GNUTYPE_LONGNAME:
            long_name = _read_extended(stream, info.size).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        raw_name = pax.get("path") or long_name or info.name
        size = _pax_size(pax["size"]) if "size" in pax else info.size
        pax, long_name = {}, None
        name = member_name(raw_name)
        entries += 1
        if entries > MAX_MEMBERS:
            raise PackageError(f"the package has more than {MAX_MEMBERS} members")
        if kind == tarfile.DIRTYPE:
            if size:
                raise PackageError(f"the package's folder '{quoted(name)}' claims to hold data; refusing it")
            continue
        if kind not in _PLAIN_FILE:
            what = _REFUSED_KINDS.get(kind, f"an entry of unknown type {kind!r}")
            raise PackageError(f"the package's member '{quoted(name)}' is {what}; refusing the package")
        if name in seen:
            raise PackageError(f"the package has two members named '{quoted(name)}'")
        seen.add(name)
        total += size
        if total > max_total_bytes:
            raise PackageError(
                f"the package's members add up to more than {max_total_bytes} bytes (PORTAL_IMAGE_MAX_BYTES)"
            )
        data = MemberData(stream, size, name=name, tick=tick)
        yield Member(name=name, size=size), data
        data.skip_rest()
        _read_exactly(stream, -size % BLOCK_BYTES, allow_eof=False)


def read_small(data: MemberData, member: Member, *, max_bytes: int, what: str) -> bytes:
    """A descriptor's whole content (a few KiB); ``PackageError`` when it is larger than any descriptor is."""
    if member.size > max_bytes:
        raise PackageError(f"{what} ('{quoted(member.name)}') is {member.size} bytes, more than {max_bytes}")
    return b"".join(data.chunks())


def extract_to(
    data: MemberData, destination: Path, *, gunzip: bool, max_bytes: int, what: str, sink: Callable[[bytes], object]
) -> None:
    """Write the member's bytes (decompressed when ``gunzip``) to ``destination``, a new file that must not exist.

    ``sink`` sees the member's bytes as stored (before decompression), for digests.
    """

    class Tapped:
        def read(self, size: int = -1, /) -> bytes:
            chunk = data.read(size)
            sink(chunk)
            return chunk

    tapped = Tapped()
    source: Readable = CappedGunzip(tapped, max_bytes=max_bytes, what=what) if gunzip else tapped
    descriptor = os.open(destination, _OPEN_NEW_FILE, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            while chunk := source.read(COPY_BYTES):
                out.write(chunk)
            while tapped.read(COPY_BYTES):
                pass  # whatever the decompressor left unread still counts for the digest
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


def _read_exactly(stream: Readable, count: int, *, allow_eof: bool) -> bytes:
    parts: list[bytes] = []
    left = count
    while left:
        chunk = stream.read(left)
        if not chunk:
            if allow_eof and left == count:
                return b""
            raise PackageError("the package ends in the middle of a member (truncated)")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_extended(stream: Readable, size: int) -> bytes:
    if size > MAX_EXTENDED_HEADER_BYTES:
        raise PackageError(f"the package has an extended header of {size} bytes, more than {MAX_EXTENDED_HEADER_BYTES}")
    data = _read_exactly(stream, size, allow_eof=False)
    _read_exactly(stream, -size % BLOCK_BYTES, allow_eof=False)
    return data


def _pax_records(data: bytes) -> dict[str, str]:
    """The "LENGTH KEY=VALUE\\n" records of a pax header (LENGTH counts the whole record)."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position] != 0:
        space = data.find(b" ", position)
        digits = data[position:space] if space > position else b""
        if not digits.isdigit() or len(digits) > 6:
            raise PackageError("the package has a malformed extended header")
        end = position + int(digits)
        if end > len(data) or end <= space + 1 or data[end - 1] != ord("\n"):
            raise PackageError("the package has a malformed extended header")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise PackageError("the package has a malformed extended header")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position = end
    return records


def _pax_size(text: str) -> int:
    if not text.isdigit() or len(text) > 20:
        raise PackageError("the package's extended header gives a malformed size")
    return int(text)


__all__ = ["Member", "MemberData", "base_name", "extract_to", "member_name", "quoted", "read_members", "read_small"]
