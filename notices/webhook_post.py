"""POSTing one webhook body: to the address the guard checked, within a short deadline, no redirects.

Failures are described in the portal's own words: an exception's text can quote local files or
the server's internals, and what is stored here is shown to operators and owners.
"""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass

from catalog.fetch import PinnedHTTPConnection, PinnedHTTPSConnection  # connect to the checked address only
from catalog.fetch_deadline import Deadline, DeadlinePassed
from notices.webhook_address import check_webhook_url, webhook_policy
from portal import errors
from portal.moments import duration_text

USER_AGENT = "stackportal-webhook/1"
# Read of the answer, then dropped: a receiver need not be heard beyond its status.
ANSWER_BYTES_READ = 256


@dataclass(frozen=True)
class PostResult:
    response_code: int | None
    error: str  # empty when the server answered 2xx
    refused: bool  # the address guard refused it: nothing was sent, and trying again will not help
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return not self.error


def post_json(url: str, *, body: bytes, headers: dict[str, str]) -> PostResult:
    started = time.monotonic()
    policy = webhook_policy()
    deadline = Deadline(policy.transfer_seconds, idle_seconds=policy.timeout_seconds)

    def result(code: int | None, error: str, *, refused: bool = False) -> PostResult:
        elapsed = int((time.monotonic() - started) * 1000)
        return PostResult(response_code=code, error=error[:300], refused=refused, duration_ms=elapsed)

    try:
        target = check_webhook_url(url, deadline=deadline)
    except errors.Invalid as exc:
        return result(None, exc.detail, refused=True)
    connection_class = PinnedHTTPSConnection if target.scheme == "https" else PinnedHTTPConnection
    connection = connection_class(target.host, target.port, target.address, deadline)  # type: ignore[arg-type]
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
        **headers,
    }
    try:
        connection.request("POST", target.request_target, body=body, headers=all_headers)
        response = connection.getresponse()
        response.read(ANSWER_BYTES_READ)
        code = response.status
    except (DeadlinePassed, TimeoutError):
        return result(None, f"no answer within {duration_text(policy.transfer_seconds)}")
    except ConnectionRefusedError:
        return result(None, "the connection was refused")
    except ssl.SSLCertVerificationError:
        return result(None, "the server's TLS certificate could not be verified")
    except ssl.SSLError:
        return result(None, "the TLS handshake failed")
    except http.client.InvalidURL:
        return result(None, "the URL holds spaces or control characters (percent-encode them)")
    except http.client.HTTPException:
        return result(None, "the server's answer was not valid HTTP")
    except OSError:
        return result(None, "the server could not be reached")
    finally:
        connection.close()
    if 200 <= code < 300:
        return result(code, "")
    if 300 <= code < 400:
        return result(code, f"the server answered with a redirect (HTTP {code}); webhooks do not follow redirects")
    return result(code, f"the server answered HTTP {code}")
