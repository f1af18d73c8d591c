"""An OVA's manifest (.mf): one digest per file of the package, each checked against the file's bytes.

Lines read ``SHA256(disk1.vmdk)= 3f…`` (SHA1 and SHA512 alike). When a package has a manifest, every
file in it but the manifest itself and its certificate must be listed with a matching digest: a
file the manifest does not vouch for is as bad as one it vouches for wrongly.
"""

from __future__ import annotations

import hashlib
import re

from catalog.packages.errors import PackageError
from catalog.packages.safe_tar import member_name, quoted

ALGORITHMS = {"SHA1": ("sha1", 40), "SHA256": ("sha256", 64), "SHA512": ("sha512", 128)}
_LINE = re.compile(r"(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)")


def read_manifest(data: bytes) -> dict[str, tuple[str, str]]:
    """Each file's (hashlib algorithm, lowercase hex digest), keyed by member name."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PackageError("the OVA's manifest is not text") from None
    digests: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise PackageError(f"line {number} of the OVA's manifest is not 'SHA256(name)= digest'")
        algorithm, length = ALGORITHMS[match.group(1)]
        digest = match.group(3).lower()
        if len(digest) != length:
            raise PackageError(f"line {number} of the OVA's manifest has a {match.group(1)} digest of the wrong length")
        name = member_name(match.group(2).strip())
        if digests.get(name, (algorithm, digest)) != (algorithm, digest):
            raise PackageError(f"the OVA's manifest lists '{quoted(name)}' twice, with different digests")
        digests[name] = (algorithm, digest)
    return digests


class Digests:
    """Digests of a package's files, computed as they stream past, for whichever algorithm the manifest needs."""

    def __init__(self, algorithms: tuple[str, ...]) -> None:
        self._hashes = {name: hashlib.new(name) for name in algorithms}

    def update(self, chunk: bytes) -> None:
        for digest in self._hashes.values():
            digest.update(chunk)

    def hexdigest(self, algorithm: str) -> str | None:
        digest = self._hashes.get(algorithm)
        return digest.hexdigest() if digest is not None else None


def check_manifest(manifest: dict[str, tuple[str, str]], computed: dict[str, Digests]) -> None:
    """Refuse the package unless each file in ``computed`` has a matching digest in ``manifest``."""
    for name, digests in computed.items():
        listed = manifest.get(name)
        if listed is None:
            raise PackageError(f"the OVA's manifest has no digest for '{quoted(name)}'; refusing the package")
        algorithm, expected = listed
        if digests.hexdigest(algorithm) != expected:
            raise PackageError(f"'{quoted(name)}' does not match its {algorithm.upper()} digest in the OVA's manifest")
