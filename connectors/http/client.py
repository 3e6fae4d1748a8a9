"""POST a batch and sort the answer: accepted (2xx), retry later, or rejected (other 4xx).

Retried (TransientError): 5xx, 408 Request Timeout, 429 Too Many Requests, 3xx (a redirect
means a misconfigured URL; the body is never re-sent elsewhere), timeouts, connection
failures. Rejected: every other 4xx; the batch's updates are dead-lettered.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass

from creditbus.connectors.errors import TransientError

EXCERPT_CHARS = 500
RETRIED_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str  # the start of the response body

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # surface the 3xx as an HTTPError


class HttpClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirect)

    def post(self, body: bytes, idempotency_key: str) -> Answer:
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key,
            "User-Agent": "creditbus-sink",
        })
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Answer(response.status, _excerpt(response.read(EXCERPT_CHARS * 4)))
        except urllib.error.HTTPError as exc:
            status = exc.code
            excerpt = _excerpt(exc.read(EXCERPT_CHARS * 4) if exc.fp else b"")
            if status >= 500 or status in RETRIED_4XX or status < 400:
                raise TransientError(f"HTTP {status} from the platform: {excerpt[:200]}"
                                     ) from None
            return Answer(status, excerpt)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            raise TransientError(f"platform unreachable: {exc}") from None


def _excerpt(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
