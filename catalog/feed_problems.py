"""Why a feed failed, told to the person who subscribed it rather than to the operator.

Import errors are written for logs and operators (hosts, addresses, setting names). A tenant gets
one sentence on what went wrong and what they can do, with the error's own words as detail, minus
the hints only an operator can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "(an operator can allow it in PORTAL_…)", "(PORTAL_FETCH_FILE_ROOTS)": advice for someone else.
_OPERATOR_HINT = re.compile(r"\s*\((?:an operator [^)]*|PORTAL_[A-Z_]+)\)")
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")


@dataclass(frozen=True)
class FeedProblem:
    summary: str
    detail: str


# First match wins: (words in the error, what the subscriber reads).
_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("cannot resolve host", "has no address", "not a valid host name"),
        "The feed's server name could not be found. Check the URL for typos.",
    ),
    (
        ("non-public address", "outside the folders", "names a remote host"),
        "The portal is not allowed to read feeds from that address. Use a public https URL, or ask an operator.",
    ),
    (("took longer than",), "The feed's server was too slow to answer. Retry later."),
    (("redirect",), "The feed's server redirected the portal somewhere it cannot follow. Check the URL."),
    (("over the limit", "bytes, stopped"), "The feed is larger than the portal accepts; it may not be a VMcast feed."),
    (
        ("unsupported URL scheme", "malformed", "has no host"),
        "The URL is not one the portal can read: use http or https.",
    ),
    (
        ("not a well-formed XML feed", "not an RSS feed", "VMcast namespace", "has no items", "JSON", "simplestreams"),
        "The file at that URL is not a VMcast feed the portal can read. Check the URL, or ask the feed's publisher.",
    ),
    (
        ("the portal reads from one feed",),
        "The feed lists more appliance versions than the portal accepts from one feed. Ask its publisher "
        "to split it or drop old versions.",
    ),
    (
        ("item '", "appears twice", "changed its image"),
        "Some entries of the feed are incomplete or wrong; the publisher must fix them.",
    ),
    (("worker went away",), "The import was interrupted before it finished. Retry it."),
    (
        ("internal error",),
        "The import failed because of a fault in the portal; operators can see it in the logs. Retry later.",
    ),
)


def explain_feed_error(error: str) -> FeedProblem:
    detail = _OPERATOR_HINT.sub("", error).strip()
    status = _HTTP_STATUS.search(error)
    if status:
        code = int(status.group(1))
        if code in (401, 403):
            summary = f"The feed's server refused access (HTTP {code}). The feed may be private."
        elif code == 404:
            summary = "The feed's server says there is no feed at that URL (HTTP 404). Check the URL."
        else:
            summary = f"The feed's server answered with an error (HTTP {code}). Retry later."
        return FeedProblem(summary, detail)
    for words, summary in _KINDS:
        if any(word in error for word in words):
            return FeedProblem(summary, detail)
    return FeedProblem("The feed could not be imported.", detail)
