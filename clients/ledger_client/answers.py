"""What the server's answers mean: problem documents, and which answers are transient.

Every request the client sends may be repeated: reads are safe, and each
append carries an Idempotency-Key that makes its retry return the first
attempt's receipts instead of writing twice. So what is transient is retried
— 429 and 503 with their ``Retry-After``, 408, a 409 saying the same key is
still in flight, a proxy's 502 or 504 — and nothing else: a 503 without
``Retry-After`` is the server's integrity alarm, which lasts until an
operator acts.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from ledger_client.errors import ProblemError

__all__ = ["RetryableAnswer", "expect", "problem", "retry_after", "retryable_status"]

# The longest Retry-After honoured as given; a longer one is waited this long.
_MAX_RETRY_AFTER = 60.0


class RetryableAnswer(Exception):
    """An answer the policy retries; raised inside the retry loop only."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} from {response.request.url}")
        self.response = response


def retryable_status(response: httpx.Response) -> bool:
    status = response.status_code
    if status in (408, 429, 502, 504):
        return True
    if status == 503:
        return "retry-after" in response.headers
    if status == 409:
        return _problem_type(response).endswith("/idempotency-in-flight")
    return False


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(moment.timestamp() - time.time(), 0.0), _MAX_RETRY_AFTER)


def problem(response: httpx.Response) -> ProblemError:
    """The problem document of a refused request (or what stands in for one)."""
    body: dict[str, Any] = {}
    try:
        value = response.json()
    except ValueError:
        value = None
    if isinstance(value, dict):
        body = value

    def text(name: str, default: str) -> str:
        member = body.get(name)
        return member if isinstance(member, str) else default

    field_value = body.get("field")
    return ProblemError(
        status=response.status_code,
        type=text("type", "about:blank"),
        title=text("title", response.reason_phrase or "HTTP error"),
        detail=text("detail", response.text[:500] if not body else ""),
        field=field_value if isinstance(field_value, str) else None,
        body=body,
        retry_after=retry_after(response),
    )


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise problem(response)
    return response


def _problem_type(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else ""
