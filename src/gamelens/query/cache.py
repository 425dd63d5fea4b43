"""Answers of read requests, kept per dataset version.

A version is never modified, so an answer computed for it never goes stale: the key is (the
version's table UUID, route, the request's parameters in a canonical order) and no other
invalidation is needed. The
cache is bounded in bytes (GAMELENS_CACHE_MB; 0 turns it off), evicts the least recently used
answer first, and a switch of versions drops every other version's answers. The ETag is a function
of the key alone, so a conditional request (If-None-Match) is answered without any work.

chDB builds ClickHouse's own query result cache as a no-op, hence this one in the application.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import orjson

from ..observe import CACHE_REQUESTS

Key = tuple[str, str, tuple[tuple[str, str], ...], tuple]


def make_key(identity: str, route: str, items: list[tuple[str, str]], constants: dict) -> Key:
    """`identity` names the dataset itself (its table's UUID), not only its upload id: two databases
    that each have an upload 1 never share a key or an ETag. `constants` are the settings bound into
    every read (the review multiple): changing one changes the answers, so the key too."""
    return identity, route, tuple(sorted(items)), tuple(sorted(constants.items()))


def etag(key: Key) -> str:
    return '"' + hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest() + '"'


class Cache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Key, tuple[int, Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: Key) -> Any | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
        CACHE_REQUESTS.labels("miss" if entry is None else "hit").inc()
        return None if entry is None else entry[1]

    def put(self, key: Key, value: Any) -> None:
        if self.max_bytes <= 0:
            return
        size = len(orjson.dumps(value))  # what the answer costs to keep, roughly
        if size > self.max_bytes // 4:  # one answer never crowds out the rest
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[0]
            self._items[key] = (size, value)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (dropped, _) = self._items.popitem(last=False)
                self._bytes -= dropped

    def keep_only(self, identity: str) -> None:
        """A switch: answers of other versions can no longer be asked for."""
        with self._lock:
            for key in [k for k in self._items if k[0] != identity]:
                self._bytes -= self._items.pop(key)[0]
