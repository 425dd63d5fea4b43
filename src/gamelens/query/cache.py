"""Answers of read requests, kept per dataset version, as the bytes that are sent.

A version is never modified, so an answer computed for it never goes stale: the key is the version's
identity (its table's UUID) and a digest of this release's code, the route and the request's parameters
in a canonical order; no other invalidation is needed, and a switch of versions drops every other
version's answers.
The ETag is a function of the key alone, so a conditional request (If-None-Match) is answered without
any work.

The bound is on what the entries really cost: the key is a fixed-size digest (never the query
string, which may be 8 KB), each answer is kept as its serialized bytes (no live objects, and no
serializing again on a hit), and every entry counts its body plus ENTRY_OVERHEAD for the dictionary
slot, the key and the bytes object (measured by tests/test_cache.py with tracemalloc). The number of
entries is capped too (GAMELENS_CACHE_ENTRIES).

chDB builds ClickHouse's own query result cache as a no-op, hence this one in the application.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from ..observe import CACHE_REQUESTS

# Python's own memory per entry beyond the body's length: the OrderedDict's slot and link, the key
# tuple and its digest, the value tuple, the bytes object's header (about 300 bytes, rounded up).
ENTRY_OVERHEAD = 400


def release_digest(package: Path) -> bytes:
    """A digest of a release's own code (every module of the package): the code shapes the answers (an
    average's decimals, a new field), and a version's data alone does not say which release read it.
    After an upgrade, or beside a replica of another release on the same database, an ETag of the other
    release's answer must not earn a 304. (The package's version number is not raised per release.)"""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


RELEASE = release_digest(Path(__file__).resolve().parent.parent)


class Key(NamedTuple):
    identity: str  # the dataset version's table UUID
    digest: bytes  # of the release, the route, the canonical parameters and the settings bound into reads


def make_key(identity: str, route: str, items: list[tuple[str, str]], constants: dict) -> Key:
    """`identity` names the dataset itself (its table's UUID), not only its upload id: two databases
    that each have an upload 1 never share a key or an ETag. `constants` are the settings bound into
    every read (the review multiple): changing one changes the answers, so the key too."""
    canonical = repr((RELEASE, route, sorted(items), sorted(constants.items()))).encode()
    return Key(identity, hashlib.blake2b(canonical, digest_size=16).digest())


def etag(key: Key) -> str:
    return '"' + hashlib.blake2b(key.identity.encode() + key.digest, digest_size=16).hexdigest() + '"'


def not_modified(tag: str, if_none_match: str, answered: bool) -> bool:
    """Whether an If-None-Match header (RFC 9110 13.1.2: a comma-separated list of entity tags, compared
    weakly, or `*`) matches the answer tagged `tag`. `*` matches any current answer: only once there is
    one (`answered`), not a 404 or an error that computing it would have given."""
    listed = [t.strip() for t in if_none_match.split(",")]
    if "*" in listed:
        return answered
    return tag in [t.removeprefix("W/") for t in listed]


class Cache:
    def __init__(self, max_bytes: int, max_entries: int):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._items: OrderedDict[Key, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_entries > 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Key) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
        CACHE_REQUESTS.labels("miss" if body is None else "hit").inc()
        return body

    def put(self, key: Key, body: bytes) -> None:
        cost = len(body) + ENTRY_OVERHEAD
        if not self.enabled or cost > self.max_bytes // 4:
            return  # off, or one answer would crowd out the rest
        # orjson's bytes keep the spare room of its growing buffer (~30 % more than their length): keep
        # an exact copy, so that what is counted is what is held.
        body = bytes(memoryview(body))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old) + ENTRY_OVERHEAD
            self._items[key] = body
            self._bytes += cost
            while self._bytes > self.max_bytes or len(self._items) > self.max_entries:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped) + ENTRY_OVERHEAD

    def keep_only(self, identity: str) -> None:
        """A switch: answers of other versions can no longer be asked for."""
        with self._lock:
            for key in [k for k in self._items if k.identity != identity]:
                self._bytes -= len(self._items.pop(key)) + ENTRY_OVERHEAD
