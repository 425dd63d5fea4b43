"""One writer per database: the process that runs uploads, start-up recovery, pruning and the admin
bootstrap holds the writer lease; any number of readers share the database with it.

The lease lives in the database (table `writer_lease`), judged by the server's clock: a writer says
it is alive every GAMELENS_WRITER_LEASE_S / 3; its first word is its claim. Among the holders heard
from within GAMELENS_WRITER_LEASE_S, the earliest claim (then the holder's name) is the writer; every
process reads the same rows, so two starting at once agree on one. A second writer refuses to start,
in one sentence. A writer that stops says so (its rows go); one that was killed is forgotten after
GAMELENS_WRITER_LEASE_S. With the embedded engine, only this process can hold the data directory, so
holders recorded by other processes are known dead whatever their last word.

If a running writer finds an earlier live claim than its own (it was cut off for longer than the
lease and another writer started), it stops doing writers' work: uploads and writes answer 409, as
on a reader, and the log says why.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from .errors import GameLensError
from .settings import Settings
from .store import Store

log = logging.getLogger(__name__)


class WriterLease:
    def __init__(self, store: Store, settings: Settings):
        self.store, self.ttl = store, settings.writer_lease_s
        self.holder, self.host, self.pid = uuid.uuid4().hex, socket.gethostname(), os.getpid()
        url = settings.clickhouse_url
        self.embedded = url is None or url.startswith("chdb:")
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Claim the writer's work, or refuse (GameLensError writer_exists) while another writer lives."""
        self.store.heartbeat(self.holder, self.host, self.pid)
        first = self._first()
        if first is not None and first[0] != self.holder:
            self.store.release(self.holder)
            _, host, pid, age = first
            raise GameLensError(
                "writer_exists", f"Another GameLens writer (process {pid} on {host}, heard from {age:.0f} s ago) "
                "uses this database; start this one with GAMELENS_ROLE=reader, or stop the other first.", 503)
        self._thread = threading.Thread(target=self._beat, name="gamelens-lease", daemon=True)
        self._thread.start()

    def _first(self):
        """The live holder with the earliest claim (None if none), by the rule in the module doc."""
        for row in self.store.live_writers(self.ttl):
            holder, host, pid = row[0], row[1], row[2]
            if holder != self.holder and self.embedded and (pid != self.pid or host != self.host):
                continue  # an earlier process on this data directory: it cannot be alive
            return row
        return None

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.store.heartbeat(self.holder, self.host, self.pid)
                first = self._first()
            except GameLensError as exc:  # the database is away: the next beat tries again
                log.warning("the writer lease could not be renewed: %s", exc.code)
                continue
            if first is not None and first[0] != self.holder and not self.lost:
                self.lost = True
                log.error("another writer (process %s on %s) holds an earlier claim on this database; this "
                          "process stops doing writers' work", first[2], first[1])

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        try:
            self.store.release(self.holder)
        except GameLensError:  # forgotten after GAMELENS_WRITER_LEASE_S anyway
            log.warning("the writer lease could not be released")
