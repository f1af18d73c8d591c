"""OVA packages (DMTF DSP0243): a tar of the .ovf descriptor first, then its manifest and certificate, then the files.

The descriptor says which file is the first disk (``catalog.packages.ovf``); the manifest, when there
is one, vouches for every file (``catalog.packages.manifest``). The certificate is not checked: the
portal has no trust anchors for publishers, and the download's own checksum (from the feed, or
pinned on first download) is what ties the package to its version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from catalog.packages.archive import DISK_FILE_NAME, PackageDisk, package_stream
from catalog.packages.errors import PackageError
from catalog.packages.manifest import ALGORITHMS, Digests, check_manifest, read_manifest
from catalog.packages.ovf import read_ovf
from catalog.packages.safe_tar import Member, MemberData, extract_to, member_name, quoted, read_members, read_small
from catalog.packages.safe_xml import MAX_DESCRIPTOR_BYTES

_EVERY_ALGORITHM = tuple(name for name, _length in ALGORITHMS.values())


@dataclass
class _Survey:
    """What the first pass over the package found: its descriptor, its manifest and each file's digests."""

    descriptor: bytes | None = None
    manifest: dict[str, tuple[str, str]] | None = None
    certificate: bool = False
    files_started: bool = False
    computed: dict[str, Digests] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)

    def take(self, member: Member, data: MemberData) -> None:
        self.names.append(member.name)
        suffix = member.name.rsplit(".", 1)[-1].lower() if "." in member.name else ""
        if len(self.names) == 1 and suffix != "ovf":
            raise PackageError(f"an OVA starts with its .ovf descriptor, not with '{quoted(member.name)}'")
        if suffix == "ovf":
            if self.descriptor is not None:
                raise PackageError("the OVA holds more than one .ovf descriptor")
            self.descriptor = read_small(data, member, max_bytes=MAX_DESCRIPTOR_BYTES, what="the OVF descriptor")
            self.computed[member.name] = _digests_of(self.descriptor)
        elif suffix == "mf":
            if self.manifest is not None:
                raise PackageError("the OVA holds more than one manifest (.mf)")
            if self.files_started:
                raise PackageError("the OVA's manifest comes after its files (it belongs after the descriptor)")
            self.manifest = read_manifest(read_small(data, member, max_bytes=MAX_DESCRIPTOR_BYTES, what="the manifest"))
        elif suffix == "cert":
            self.certificate = True
        else:
            self.files_started = True
            if self.manifest is not None:
                self.computed[member.name] = _digests_while_reading(data, member.name, self.manifest)


def unpack_ova(
    path: Path, *, scratch: Path, extract: bool, max_bytes: int, tick: Callable[[], None] | None = None
) -> PackageDisk:
    """Check the package against its manifest and read its descriptor; with ``extract``, put its disk in ``scratch``."""
    survey = _Survey()
    with package_stream(path, max_bytes=max_bytes) as stream:
        for member, data in read_members(stream, max_total_bytes=max_bytes, tick=tick):
            survey.take(member, data)
    if survey.descriptor is None:
        raise PackageError("the OVA holds no .ovf descriptor")
    if survey.manifest is not None:
        check_manifest(survey.manifest, survey.computed)
    facts = read_ovf(survey.descriptor)
    chosen = member_name(facts.disk_href)
    if chosen not in survey.names:
        raise PackageError(f"the OVA does not hold '{quoted(facts.disk_href)}', the file of its first disk")
    disk = scratch / DISK_FILE_NAME if extract else None
    if disk is not None:
        _extract(
            path, disk, chosen=chosen, gzipped=facts.gzipped, manifest=survey.manifest, max_bytes=max_bytes, tick=tick
        )
    return PackageDisk(
        disk=disk,
        declared_format=facts.disk_format,
        sizing=facts.sizing,
        ignored=("the certificate (not checked)",) if survey.certificate else (),
    )


def _digests_of(content: bytes) -> Digests:
    digests = Digests(_EVERY_ALGORITHM)  # read before the manifest says which one it uses; a few KiB
    digests.update(content)
    return digests


def _digests_while_reading(data: MemberData, name: str, manifest: dict[str, tuple[str, str]]) -> Digests:
    listed = manifest.get(name)
    if listed is None:
        raise PackageError(f"the OVA's manifest has no digest for '{quoted(name)}'; refusing the package")
    digests = Digests((listed[0],))
    for chunk in data.chunks():
        digests.update(chunk)
    return digests


def _extract(
    path: Path,
    disk: Path,
    *,
    chosen: str,
    gzipped: bool,
    manifest: dict[str, tuple[str, str]] | None,
    max_bytes: int,
    tick: Callable[[], None] | None,
) -> None:
    # The bytes written are digested again, so what is converted is exactly what the manifest vouched for.
    listed = manifest.get(chosen) if manifest is not None else None
    digests = Digests((listed[0],) if listed else ())
    with package_stream(path, max_bytes=max_bytes) as stream:
        for member, data in read_members(stream, max_total_bytes=max_bytes, tick=tick):
            if member.name == chosen:
                what = f"the OVA's disk '{quoted(chosen)}'"
                extract_to(data, disk, gunzip=gzipped, max_bytes=max_bytes, what=what, sink=digests.update)
                break
    if not disk.is_file() or (listed is not None and digests.hexdigest(listed[0]) != listed[1]):
        raise PackageError("the package changed while it was read")
