"""The catalog's domain error, apart from the services so every catalog module can raise it."""

from __future__ import annotations

from catalog.redaction import redact_urls_in
from portal import errors


class CatalogError(errors.PortalError):
    """A feed or image from outside cannot be used (fetch failed, checksum mismatch, unsafe image).

    The publisher is to blame rather than the caller, so it answers like a bad gateway.
    """

    code = "catalog_error"
    status = 502

    def __init__(self, detail: str) -> None:
        # Messages quote feed and image URLs; whoever builds one, their credentials stay out of it.
        super().__init__(redact_urls_in(detail))
