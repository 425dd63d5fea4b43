"""Who is calling: API key -> principal (a dependency), roles, and per-key rate limits."""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import GameLensError
from ..keys import KeyStore, Principal
from ..settings import Settings

log = logging.getLogger(__name__)
ANONYMOUS = Principal("anonymous", "admin")  # only when GAMELENS_AUTH=off
ENV_ADMIN = "env-admin"


class TokenBucket:
    """`rate` tokens per `per` seconds, holding at most `burst`; one bucket per name."""

    def __init__(self, rate: float, per: float, burst: float, max_names: int = 10_000):
        self.fill, self.burst, self.max_names = rate / per, burst, max_names
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        """Spend one token; 0 if allowed, otherwise the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.fill)
            if tokens >= 1:
                self._buckets[name] = (tokens - 1, now)
                if len(self._buckets) > self.max_names:  # forget the longest idle
                    del self._buckets[min(self._buckets, key=lambda k: self._buckets[k][1])]
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1 - tokens) / self.fill


class Guard:
    """Per-app state: the key store and the rate limiters."""

    def __init__(self, settings: Settings, keys: KeyStore):
        self.settings, self.keys = settings, keys
        self.requests = TokenBucket(settings.rate_per_minute, 60, max(1, settings.rate_per_minute / 5))
        self.uploads = TokenBucket(settings.uploads_per_hour, 3600, settings.uploads_per_hour)

    def bootstrap(self) -> None:
        """A fresh deploy is never open: without any key, create an admin key and print it once."""
        if self.settings.auth == "off":
            log.warning("GAMELENS_AUTH=off: every request is treated as an admin. Do not expose this server.")
            return
        if self.keys.count_active() == 0 and self.settings.admin_key is None:
            try:
                created = self.keys.create("admin", "admin")
            except GameLensError as exc:
                if exc.code != "key_exists":
                    raise
                # Another process (a replica's first start) is creating it, or one stopped while it did:
                # then the next start, CLAIM_VOID_S later, creates it.
                log.warning("another process is creating the first admin key; it is not shown here")
                return
            # Printed once, on purpose (like Jupyter's token); it is never logged again.
            log.warning("No API key existed, so an admin key was created. It is shown only now:\n\n    %s\n",
                        created["key"])

    def identify(self, key: str) -> Principal | None:
        env = self.settings.admin_key
        if env is not None and hmac.compare_digest(env.get_secret_value().encode(), key.encode()):
            return Principal(ENV_ADMIN, "admin")
        return self.keys.match(key)

    def limit(self, bucket: TokenBucket, name: str, what: str) -> None:
        wait = bucket.take(name)
        if wait:
            raise GameLensError("rate_limited", f"Too many {what}; retry in {math.ceil(wait)} s.", 429,
                                headers={"Retry-After": str(math.ceil(wait))})


# Declared as FastAPI's security classes, so that OpenAPI (and /docs' Authorize button) knows both
# ways to send a key; auto_error is off: the one error body below says what is missing.
BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer glk_...`")
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: glk_...`")


def _key_from(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    if bearer is not None and bearer.credentials.strip():
        return bearer.credentials.strip()
    return header or None


def _unauthorized(message: str) -> GameLensError:
    return GameLensError("unauthorized", message, 401, headers={"WWW-Authenticate": 'Bearer realm="gamelens"'})


# The dependencies below are async: FastAPI runs a plain `def` one in its thread pool, one thread hop per
# dependency per request, and the key check needs the database only to re-read the keys once a second.
async def principal(request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
                    header: Annotated[str | None, Depends(API_KEY)]) -> Principal:
    guard: Guard = request.app.state.guard
    if guard.settings.auth == "off":
        who = ANONYMOUS
    else:
        key = _key_from(bearer, header)
        client = f"addr:{request.client.host if request.client else '?'}"
        if not key:
            guard.limit(guard.requests, client, "requests")
            raise _unauthorized("An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'.")
        if guard.keys.reload_due():  # a database read: not on the event loop
            await run_in_threadpool(guard.keys.reload_if_due)
        who = guard.identify(key)
        if who is None:
            guard.limit(guard.requests, client, "requests")
            raise _unauthorized("The API key is not valid (wrong, or revoked).")
    guard.limit(guard.requests, f"key:{who.name}", "requests")
    request.state.principal = who
    return who


async def admin(who: Principal = Depends(principal)) -> Principal:  # noqa: B008 (FastAPI's idiom)
    if not who.is_admin:
        raise GameLensError("forbidden", "This needs an admin key; yours is a reader key.", 403)
    return who


async def writer(request: Request) -> None:
    """Writes (uploads, activate, keys) are done by the writer: a reader says where to send them."""
    settings = request.app.state.settings
    if settings.role != "reader" and request.app.state.uploads.may_write():
        return
    where = f" Send it to the writer, {settings.writer_url}." if settings.writer_url else ""
    why = "only reads (GAMELENS_ROLE=reader)" if settings.role == "reader" else "is no longer the writer"
    raise GameLensError("read_only_replica", f"This GameLens process {why}.{where}", 409, value=settings.writer_url)
