"""API keys: random, shown once, stored only as a SHA-256 hash, compared in constant time.

A key is `glk_` + 43 URL-safe characters (32 random bytes). Its hash is stored in ClickHouse
(table `api_keys`, one typed record per name, the newest write by the server's clock wins) and
cached in memory for verification.
Hashing with plain SHA-256 is enough here: the keys carry 256 bits of entropy, so there is nothing
to brute-force that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import get_args

from .engine import Engine
from .errors import GameLensError
from .records import KeyRecord, Role
from .store import KEY_CLAIM, Store

log = logging.getLogger(__name__)

PREFIX = "glk_"
ROLES: tuple[Role, ...] = get_args(Role)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# Keys are re-read when this process's copy is older than this: another process (a replica) may have
# created or revoked one; so a new key works, and a revoked one stops, everywhere within about a second.
CACHE_SECONDS = 1.0
# A claim on a key's change whose record did not follow within this time (by the server's clock) is a
# stopped claimer's: the next claim of the same change is taken (see _claim_change).
CLAIM_VOID_S = 30


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store = Store(engine, engine.settings.clickhouse_cluster)
        self._cache: list[tuple[str, Principal]] = []
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        # Bumped by every change made here: a reload that started before a change (and so may have
        # read the keys as they were) must not install its stale copy over the change.
        self._generation = 0

    def start(self) -> None:
        self._reload()

    def _records(self) -> list[KeyRecord]:
        return [KeyRecord.model_validate_json(doc) for doc in self.store.key_docs()]

    def _save(self, rec: KeyRecord, claim: str) -> None:
        """Write the change `claim` (_claim_change) was taken for; if the write fails, nothing changed,
        and the claim goes (else the name stayed refused for CLAIM_VOID_S, helper-67)."""
        try:
            self.store.save_key(rec.name, rec.model_dump_json())
        except GameLensError:
            self._release(claim)
            raise
        with self._lock:
            self._generation += 1
            if rec.revoked_at:  # effective at once in this process, whatever reload is under way
                self._cache = [(h, p) for h, p in self._cache if h != rec.hash]
        self._reload()

    def _reload(self) -> None:
        with self._lock:
            generation = self._generation
        active = [(r.hash, Principal(r.name, r.role)) for r in self._records() if not r.revoked_at]
        with self._lock:
            if generation == self._generation:
                self._cache, self._loaded_at = active, time.monotonic()

    def create(self, name: str, role: str) -> dict:
        if not _NAME.match(name or ""):
            raise GameLensError("invalid_key_name", "A key name is 1-64 letters, digits or _.@- .", 400,
                                param="name", value=name)
        if role not in ROLES:
            raise GameLensError("invalid_role", "Unknown role.", 400, param="role", value=role, allowed=list(ROLES))
        doc = self.store.key_doc(name)
        exists = GameLensError("key_exists", f"An active key named {name!r} exists; revoke it first.", 409,
                               param="name", value=name)
        if doc is not None and not KeyRecord.model_validate_json(doc).revoked_at:
            raise exists
        claim = self._claim_change(name, doc)
        if claim is None:  # another request, here or in a replica, is creating it
            raise exists
        key = PREFIX + secrets.token_urlsafe(32)
        rec = KeyRecord(name=name, role=role, hash=_hash(key), hint=key[:8] + "…",
                        created_at=self.store.now())
        self._save(rec, claim)
        return {"name": name, "role": role, "key": key, "created_at": rec.shown()["created_at"]}

    def list(self) -> list[dict]:
        return [r.shown() for r in self._records()]

    def revoke(self, name: str) -> dict:
        doc = self.store.key_doc(name)
        rec = None if doc is None else KeyRecord.model_validate_json(doc)
        gone = GameLensError("not_found", f"There is no active key named {name!r}.", 404, param="name", value=name)
        if rec is None or rec.revoked_at:
            raise gone
        claim = self._claim_change(name, doc)
        if claim is None:  # another request is revoking it
            raise gone
        rec = rec.model_copy(update={"revoked_at": self.store.now()})
        self._save(rec, claim)
        return rec.shown()

    def _release(self, claim: str) -> None:
        try:
            self.store.drop(claim)
        except GameLensError as exc:  # it is void after CLAIM_VOID_S all the same
            log.warning("releasing the claim %s failed (%s)", claim, exc.code)

    def _claim_change(self, name: str, doc: str | None) -> str | None:
        """The claim this call took to change key `name` from its record `doc` (None: never created), or
        None: of all the requests that read the same record and try, in any process, exactly one gets it,
        by creating the claim table named for that record (Store.claim). A claim whose claimer stopped
        before it wrote is void after CLAIM_VOID_S: then the next numbered claim of the same change is taken."""
        state = hashlib.sha256(f"{name}\0{doc or ''}".encode()).hexdigest()[:32]
        prefix = f"{KEY_CLAIM}{state}_"
        claims = self.store.claims(prefix)
        attempt = 1
        if claims:
            number, _, age = claims[-1]
            if age <= CLAIM_VOID_S:
                return None
            attempt = number + 1
        claim = f"{prefix}{attempt}"
        if self.store.claim(claim):
            return claim
        return None

    def count_active(self) -> int:
        return len(self._cache)

    def reload_due(self) -> bool:
        return time.monotonic() - self._loaded_at > CACHE_SECONDS

    def reload_if_due(self) -> None:
        """Keys changed by another process: one caller re-reads them (at most once a second), the
        others meanwhile verify against the copy in hand."""
        if self.reload_due() and self._reloading.acquire(blocking=False):
            try:
                self._reload()
            finally:
                self._reloading.release()

    def match(self, key: str) -> Principal | None:
        """The key's principal among the keys in hand (no database read)."""
        digest = _hash(key)
        found = None
        with self._lock:
            for stored, principal in self._cache:  # compare against every key: no early exit
                if hmac.compare_digest(stored, digest):
                    found = principal
        return found
