"""Reading an upload's creation metadata (the tus ``Upload-Metadata`` pairs): where the image goes and what
it is called, every field checked before anything is created."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from catalog.feeds import IDENTIFIER_RE
from portal import errors
from provisioning.name_rules import TIER_NAME

# A version as people write them: 1.0, 2026-01-31, 12.4+deb1, v3_rc1.
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,49}")
MAX_TITLE_CHARS = 200
MAX_FILENAME_CHARS = 200
# The database's id columns are 64-bit: a larger number names no project.
_MAX_ID = 2**63 - 1
_ID = re.compile(r"[0-9]{1,19}")
MAX_PORT = 65535
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class UploadSpec:
    """What the creation's metadata asks for: where the image goes and what it is called."""

    project_id: int
    appliance: str
    version: str
    title: str = ""
    filename: str = ""
    service_port: int | None = None
    role: str = ""


def upload_spec(metadata: Mapping[str, str]) -> UploadSpec:
    """The creation's metadata, checked; every field at fault is named at once. Unknown keys are ignored
    (tus clients add their own, such as ``filetype``)."""
    problems: dict[str, str] = {}
    project_text = metadata.get("project", "").strip()
    if not project_text:
        problems["project"] = "name the project (its id) the image is for"
    elif not _ID.fullmatch(project_text) or not 1 <= int(project_text) <= _MAX_ID:
        problems["project"] = "the project is given by its id, a whole number"
    appliance = metadata.get("appliance", "").strip()
    if not IDENTIFIER_RE.fullmatch(appliance):
        problems["appliance"] = (
            "the appliance identifier is 1 to 100 characters: a-z, 0-9, '.', '_' and '-', starting with a letter "
            "or digit"
        )
    version = metadata.get("version", "").strip()
    if not VERSION_RE.fullmatch(version):
        problems["version"] = (
            "the version is 1 to 50 characters: letters, digits, '.', '_', '+', '~' and '-', starting with a "
            "letter or digit"
        )
    title = metadata.get("title", "").strip()
    if len(title) > MAX_TITLE_CHARS or _has_control_characters(title):
        problems["title"] = f"the title is at most {MAX_TITLE_CHARS} characters of text"
    port_text = metadata.get("port", "").strip()
    if port_text and (not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= MAX_PORT):
        problems["port"] = f"the service port is a whole number from 1 to {MAX_PORT}"
    role = metadata.get("role", "").strip()
    if role and not TIER_NAME.pattern.fullmatch(role):
        problems["role"] = f"the role is a tier name: {TIER_NAME.rule}"
    if problems:
        first = next(iter(problems.values()))
        raise errors.Invalid(first, fields=problems)
    return UploadSpec(
        project_id=int(project_text),
        appliance=appliance,
        version=version,
        title=title,
        filename=_plain_filename(metadata.get("filename", "")),
        service_port=int(port_text) if port_text else None,
        role=role,
    )


def _plain_filename(text: str) -> str:
    """The file's name as the client had it, for people to recognise: no folders, no control characters."""
    name = re.split(r"[/\\]", text)[-1]
    return "".join(ch for ch in name if not unicodedata.category(ch).startswith("C")).strip()[:MAX_FILENAME_CHARS]


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


__all__ = ["MAX_PORT", "UploadSpec", "upload_spec"]
