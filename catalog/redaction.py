"""Redacting credentials in feed and image URLs: the one helper for everything that shows or logs a URL.

Publishers may hand out URLs that carry credentials (``https://user:pass@host/feed.xml``) or signed
query strings (``?X-Amz-Signature=…``, ``?token=…``). The fetcher needs them as stored; nobody
else does: shared feeds are listed to every project, and audit lines and error messages outlive
the subscription. So every place that shows or records a URL passes it through ``redact_url``,
and every message that may quote one through ``redact_urls_in``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose value is a credential, by name (case-insensitive, anywhere in the name):
# api_key, access_token, X-Amz-Signature, X-Amz-Credential, sig, password, secret, auth, session...
_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|sig|auth|credential|session", re.IGNORECASE)
# Something that looks like a URL inside free text (an error message, a log line).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# For strings urlsplit refuses (e.g. an unbalanced "[" in the host): whatever precedes the last "@"
# of the authority goes.
_LOOSE_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def _redact_parameter(pair: str) -> str:
    name, equals, _value = pair.partition("=")
    if equals and _SECRET_PARAMETER.search(unquote(name)):
        return f"{name}={MASK}"
    return pair


def redact_url(url: str) -> str:
    """``url`` with its user name, password and credential-like query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _LOOSE_USERINFO.sub(rf"\1{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_parameter(pair) for pair in parts.query.split("&")) if parts.query else ""
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_urls_in(text: str) -> str:
    """``text`` with every URL in it redacted (see ``redact_url``)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
