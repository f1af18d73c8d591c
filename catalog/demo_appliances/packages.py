"""Step 1: the Debian packages the guest is made of, fetched and unpacked without installing them.

``apt-get download`` puts a .deb into the work directory and ``dpkg-deb -x`` unpacks it there,
so nothing needs root. Both are cached by package and version: only a new kernel or busybox
downloads anything. The build asks a ``PackageSource``; ``AptPackages`` is the real one, and
tests hand in unpacked trees of their own so that they neither download nor need apt sources.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from catalog.demo_appliances.files import publish_dir
from catalog.demo_appliances.tools import ApplianceBuildError, Log, Tools, run

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"


@dataclass(frozen=True)
class Package:
    name: str
    version: str


@dataclass(frozen=True)
class BuildInputs:
    """The exact package versions a build uses; they are part of every image's input hash."""

    kernel: Package
    busybox: Package


class PackageSource(Protocol):
    def resolve(self) -> BuildInputs:
        """The kernel and busybox packages to build from (cheap: no download)."""
        ...

    def unpacked(self, package: Package) -> Path:
        """A directory holding ``package``'s files, fetched and unpacked if need be."""
        ...


def parse_candidates(policy_output: str, packages: tuple[str, ...]) -> dict[str, str]:
    """The version apt would install for each package, read from ``apt-cache policy`` output."""
    versions: dict[str, str] = {}
    current = ""
    for line in policy_output.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            current = line.rstrip()[:-1]
            continue
        key, _, value = line.strip().partition(":")
        if key == "Candidate" and value.strip() not in ("", "(none)"):
            versions[current] = value.strip()
    missing = [package for package in packages if package not in versions]
    if missing:
        raise ApplianceBuildError(f"not available from the configured apt sources: {', '.join(missing)}")
    return versions


def parse_kernel_dependency(depends_output: str) -> str:
    """The versioned kernel package the metapackage points at, read from ``apt-cache depends`` output."""
    for line in depends_output.splitlines():
        key, _, value = line.strip().partition(":")
        name = value.strip()
        if key == "Depends" and name.startswith("linux-image-") and name != KERNEL_METAPACKAGE:
            return name
    raise ApplianceBuildError(f"could not find the kernel package {KERNEL_METAPACKAGE} depends on")


def cache_key(package: Package) -> str:
    # Debian versions may contain ':' (epochs), awkward in file names.
    return f"{package.name}_{package.version.replace(':', '%3a')}"


class AptPackages:
    """Packages from the machine's apt sources, cached under ``work_dir``.

    apt's own package cache is kept in the work directory too: Docker-style images disable it,
    which makes every apt-cache call re-parse all package lists (about half a second each); a
    private cache makes repeat calls instant, and apt rebuilds it whenever the lists change.
    """

    def __init__(self, *, tools: Tools, work_dir: Path, log: Log) -> None:
        self._dpkg_deb = tools["dpkg-deb"]
        self._work_dir = work_dir
        self._log = log
        apt_dir = work_dir / "apt"
        apt_dir.mkdir(parents=True, exist_ok=True)
        options = (
            "-o",
            f"Dir::Cache::pkgcache={apt_dir / 'pkgcache.bin'}",
            "-o",
            f"Dir::Cache::srcpkgcache={apt_dir / 'srcpkgcache.bin'}",
        )
        self._apt_cache = (tools["apt-cache"], *options)
        self._apt_get = (tools["apt-get"], *options)

    def resolve(self) -> BuildInputs:
        kernel_name = parse_kernel_dependency(run([*self._apt_cache, "depends", KERNEL_METAPACKAGE]))
        wanted = (kernel_name, BUSYBOX_PACKAGE)
        versions = parse_candidates(run([*self._apt_cache, "policy", *wanted]), wanted)
        return BuildInputs(
            kernel=Package(kernel_name, versions[kernel_name]),
            busybox=Package(BUSYBOX_PACKAGE, versions[BUSYBOX_PACKAGE]),
        )

    def unpacked(self, package: Package) -> Path:
        trees = self._work_dir / "trees"
        target = trees / cache_key(package)
        if target.is_dir():
            return target
        deb = self._download(package)
        self._log(f"unpacking {deb.name}")
        trees.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=trees))
        try:
            run([self._dpkg_deb, "-x", str(deb), str(staging)])
            publish_dir(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _download(self, package: Package) -> Path:
        debs = self._work_dir / "debs"
        target = debs / cache_key(package)
        if target.is_dir() and any(target.glob("*.deb")):
            return next(target.glob("*.deb"))
        self._log(f"downloading {package.name} {package.version}")
        debs.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=debs))
        try:
            run([*self._apt_get, "download", f"{package.name}={package.version}"], cwd=staging)
            if not any(staging.glob("*.deb")):
                raise ApplianceBuildError(f"apt-get download {package.name}={package.version} produced no .deb")
            publish_dir(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return next(target.glob("*.deb"))
