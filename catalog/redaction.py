"""Redacting credentials in feed and image URLs: the one helper for everything that shows or logs a URL.

Publishers may hand out URLs that carry credentials (``https://user:pass@host/feed.xml``) or signed
query strings (``?X-Amz-Signature=…``, ``?token=…``). The fetcher needs them as stored; nobody
else does: shared feeds are listed to every project, and audit lines and error messages outlive
the subscription. So every place that shows or records a URL passes it through ``redact_url``,
every message that may quote one through ``redact_urls_in``, and log lines through
``RedactingFormatter``.

A user name or password may hold any character: spaces, quotes, ``<>``, even ``/``. Nothing here
stops at a character that "cannot be in a URL"; the user information is found the way the fetcher
finds it (``urlsplit``: what precedes the last ``@`` before the path), and where that reading is
ambiguous (an ``@`` after the host, as a password holding an unencoded ``/`` leaves it) everything
up to that ``@`` is masked: showing too little beats showing a password.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose value is a credential, by name (case-insensitive, anywhere in the name):
# api_key, access_token, X-Amz-Signature, X-Amz-Credential, sig, password, secret, auth, session...
_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|sig|auth|credential|session", re.IGNORECASE)

# The start of a URL in free text: a scheme and "://", or the same percent-encoded (once or more:
# "%3A%2F%2F", "%253A%252F%252F"), as a URL inside another URL's query or a log line has it.
_URL_START = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*(?:(://)|%(?:25)*3A%(?:25)*2F%(?:25)*2F)", re.I)
# Where the authority (user information and host) ends, and what ends the user information, in a
# URL as written and in one percent-encoded. In the first, "%40" is a character of the password.
_PLAIN = (re.compile(r"[/?#]"), re.compile(r"@"), re.compile(r"\s"))
_ENCODED = (re.compile(r"[/?#]|%(?:25)*(?:2F|3F|23)", re.I), re.compile(r"@|%(?:25)*40", re.I), re.compile(r"[\s&]"))
# A name=value pair in a URL's query as it appears in text (its value ends where the text's URL does).
# Between two URL starts, what shows the first ended before the second began: a blank, or its path.
_BREAK = re.compile(r"[\s/?#]|%(?:25)*(?:2F|3F|23)", re.I)
_TEXT_PARAMETER = re.compile(r"(?<=[?&;])([^=?&#;\s'\"<>]+)=([^&#;\s'\"<>]*)")


def _redact_parameter(pair: str) -> str:
    name, equals, _value = pair.partition("=")
    if equals and _SECRET_PARAMETER.search(unquote(name)):
        return f"{name}={MASK}"
    return pair


def _mask_through_last_at(url: str) -> str:
    """The conservative reading: everything between ``://`` and the URL's last ``@`` is user information."""
    scheme_end = url.find("://")
    at = url.rfind("@")
    if scheme_end < 0 or at < scheme_end:
        return url
    return f"{url[: scheme_end + 3]}{MASK}{url[at:]}"


def redact_url(url: str) -> str:
    """``url`` with its user name, password and credential-like query values replaced by ``***``.

    URLs nested in the query or fragment (``?next=https%3A%2F%2Fu%3Ap%40h``) are redacted too.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return redact_urls_in(_mask_through_last_at(url))
    if "@" in parts.path + parts.query + parts.fragment:
        # An "@" after the host: "https://u:p/q@h/" (a password holding "/", "?" or "#") reads as
        # host "u" and path "/q@h/". Whatever the fetcher makes of it, what precedes that "@" may
        # be a password. (Subscriptions refuse such URLs; this is for messages that quote them.)
        return redact_urls_in(_mask_through_last_at(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_parameter(pair) for pair in parts.query.split("&")) if parts.query else ""
    query, fragment = redact_urls_in(query), redact_urls_in(parts.fragment)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def redact_urls_in(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (see ``redact_url``), wherever it stands.

    Free text does not say where a URL ends, so the user information is read generously: from
    ``://`` to the last ``@`` before the path, whatever characters lie between (a password may hold
    spaces and quotes), or after it up to the next blank. A URL's text ends where the next URL
    starts (so the work stays linear in the text's length), unless that one starts inside its
    authority ("https://u:x://y@h/": a password holding "x://").
    """
    starts = list(_URL_START.finditer(text))
    pieces: list[str] = []
    position = 0
    index = 0
    while index < len(starts):
        match = starts[index]
        index += 1
        while index < len(starts) and not _BREAK.search(text, starts[index - 1].end(), starts[index].start()):
            index += 1
        limit = starts[index].start() if index < len(starts) else len(text)
        authority_end, at, token_end = _PLAIN if match.group(1) else _ENCODED
        start = match.end()
        found = authority_end.search(text, start, limit)
        stop = found.start() if found else limit
        # The last "@" before the path, or after it in the same run of non-blank characters (as
        # redact_url reads an "@" after the host), ends what may be a user name and password.
        found = token_end.search(text, stop, limit)
        ats = list(at.finditer(text, start, found.start() if found else limit))
        pieces.append(text[position:start])
        if ats:
            pieces.append(MASK)
            start = ats[-1].start()
        # The rest of this URL, up to the next blank: its secret query values go too.
        found = token_end.search(text, start, limit)
        end = found.start() if found else limit
        pieces.append(_TEXT_PARAMETER.sub(_redact_text_parameter, text[start:end]))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _redact_text_parameter(match: re.Match[str]) -> str:
    if _SECRET_PARAMETER.search(unquote(match.group(1))):
        return f"{match.group(1)}={MASK}"
    return match.group(0)


class RedactingFormatter(logging.Formatter):
    """Log lines (message, arguments and traceback alike) with the credentials of any URL in them masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_urls_in(super().format(record))
