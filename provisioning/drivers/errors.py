"""The driver's errors: each says whether trying the same call again can help (re-exported by
``provisioning.drivers.base``)."""

from __future__ import annotations


class DriverError(Exception):
    """A hypervisor operation failed. ``retryable`` tells whether the same call may succeed later.

    ``message`` (also ``str(error)``) says what failed in the portal's own words, and may be shown
    to whoever may see the object it names. ``detail`` is what the hypervisor said, for operators'
    logs only: libvirt's text can quote files of the machine that produced it (a ``test:///<path>``
    URI answers with the first line of that file), so it never reaches a page or an API answer.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if retryable is not None:
            self.retryable = retryable


class HostUnreachable(DriverError):
    """libvirtd could not be reached or went away mid-call."""

    retryable = True


class NotFound(DriverError):
    """The domain, volume or pool does not exist."""


class InvalidRequest(DriverError):
    """The host refused what we asked for (bad XML, unsupported feature, name clash...)."""


class PortUnavailable(InvalidRequest):
    """A port to publish was taken on the host (by something outside the portal) before the start."""

    retryable = True


class Unsupported(DriverError):
    """The host's driver does not implement the operation."""
