"""The error every package reader raises: the package cannot be used, and the message says why."""

from __future__ import annotations


class PackageError(Exception):
    """A package (an Archipel .xvm2 or an OVA) is malformed, unsafe or unsupported; the message is for its publisher."""
