"""Authentication and rate limits, as FastAPI dependencies.

``caller`` resolves the bearer token (once per request: FastAPI caches it)
and charges the caller's rate limit; ``ledger_reader`` guards every route
under ``/v1/ledgers/{ledger}``. What each principal may do is decided by
``ledger.access.Principal``; this module only turns requests into principals.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool

from ledger.access import ANONYMOUS, PUBLIC, Principal, is_well_formed
from ledger.config import Settings
from ledger.core.errors import RateLimited, Unauthenticated
from ledger.service import LedgerService
from ledger.store.tokens import TokenStore

__all__ = ["Caller", "RateLimiter", "RevocationCheck", "caller", "ledger_reader"]

# Enough distinct clients to cover real traffic; the oldest idle ones are forgotten.
MAX_TRACKED = 10_000


class RateLimiter:
    """Token buckets per key: ``rate`` requests per second, bursts up to ``burst``.

    Runs on the event loop thread only (async dependencies), so needs no lock.
    Per process: several server processes each allow the full rate.
    """

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def charge(self, key: str, *, cost: float = 1.0) -> None:
        """Take ``cost`` from ``key``'s bucket, or raise ``RateLimited``."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        self._buckets[key] = (tokens if tokens < cost else tokens - cost, now)
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        if tokens < cost:
            raise RateLimited(
                "too many requests; retry later",
                retry_after=max(1, int((cost - tokens) / self.rate + 0.999)),
            )

    def check(self, key: str) -> None:
        """Raise ``RateLimited`` if ``key``'s bucket is empty, without charging it."""
        if self.rate <= 0 or key not in self._buckets:
            return
        tokens, last = self._buckets[key]
        tokens = min(self.burst, tokens + (time.monotonic() - last) * self.rate)
        if tokens < 1:
            raise RateLimited(
                "too many failed authentications from this address; retry later",
                retry_after=max(1, int((1 - tokens) / self.rate + 0.999)),
            )


class RevocationCheck:
    """``TokenStore.check_revocations``, made at most once per pass of the event loop.

    On SQLite that check is a ``stat`` of the revocation file. Alone it is
    cheap, but under load each call gives up the GIL and waits for the commit
    thread to hand it back. One check serves every
    request the loop handles in the same pass, which keeps the guarantee that
    a revocation announced before a request was sent is seen by it: the
    result is forgotten by a callback queued right after the check, and the
    loop runs callbacks in order, so whatever the loop does for bytes it
    reads later (the request's own) runs after that callback, and checks
    again.
    """

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens
        self._result: bool | None = None

    def __call__(self) -> bool:
        result = self._result
        if result is None:
            result = self._result = self._tokens.check_revocations()
            asyncio.get_running_loop().call_soon(self._forget)
        return result

    def _forget(self) -> None:
        self._result = None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def caller(request: Request) -> Principal:
    """The principal behind this request, or 401 / 429."""
    state = request.app.state
    settings: Settings = state.settings
    request.state.principal = "anonymous"
    if settings.auth == "off":
        state.rate_limiter.charge(ANONYMOUS.name)
        return ANONYMOUS
    header = request.headers.get("authorization")
    if header is None:
        request.state.principal = "public"
        state.rate_limiter.charge(f"client:{_client(request)}")
        return PUBLIC
    failures: RateLimiter = state.auth_failures
    # Guessing is throttled per address before any token is looked at.
    failures.check(f"auth:{_client(request)}")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    principal: Principal | None = None
    reason = "unknown or revoked token"
    if scheme.lower() != "bearer" or not token:
        reason = "malformed Authorization header: use 'Bearer <token>'"
    elif not is_well_formed(token):
        reason = "malformed token"
    else:
        tokens: TokenStore = state.tokens
        # A cached principal is as fresh as the revocation watch: see
        # ledger.store.backend.RevocationNotices.
        check: RevocationCheck = state.revocation_check
        principal = tokens.cached_principal(token, checked=check())
        if principal is None and tokens.cheap_lookups:
            # A local indexed read costs less than the hop to a worker thread,
            # which under load waits behind the appends (``scripts/bench.sh
            # appends`` at 32 clients shows the difference).
            principal = tokens.principal(token)
        elif principal is None:
            # Over a network the read would block the event loop.
            principal = await run_in_threadpool(tokens.principal, token)
    if principal is None:
        request.state.principal = "invalid-token"
        # This attempt is answered 401; once the bucket is empty, the next ones get 429.
        with contextlib.suppress(RateLimited):
            failures.charge(f"auth:{_client(request)}")
        raise Unauthenticated(reason)
    request.state.principal = principal.name
    state.rate_limiter.charge(f"token:{principal.name}")
    return principal


Caller = Annotated[Principal, Depends(caller)]


async def ledger_reader(
    request: Request,
    principal: Caller,
    ledger: Annotated[str, Path(description="Ledger name")],
) -> Principal:
    """Every ``/v1/ledgers/{ledger}`` route: public ledgers for all, private ones for readers."""
    visibility: dict[str, bool] = request.app.state.ledger_visibility
    public = visibility.get(ledger)
    if public is None:
        service: LedgerService = request.app.state.service
        # A ledger's visibility is fixed at creation and ledgers are never deleted.
        public = (await run_in_threadpool(service.get_ledger, ledger)).public_read
        visibility[ledger] = public
    request.state.ledger = ledger
    principal.require_read(ledger, public_read=public)
    return principal


LedgerReader = Annotated[Principal, Depends(ledger_reader)]
