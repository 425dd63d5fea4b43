"""One writer per database: the process that runs uploads, start-up recovery, pruning and the admin
bootstrap holds the writer lease; any number of readers share the database with it.

The lease lives in the database. It is a generation: the empty table `writer_lock_<n>` with the
greatest n names the writer (its comment says who). A writer says it is alive every
GAMELENS_WRITER_LEASE_S / 3 (table `writer_lease`, timed by the server's clock). To take over, a
process creates `writer_lock_<n+1>`; CREATE TABLE is atomic, so of any number of processes trying at
once exactly one gets it, and it may try only when generation n is dead:
- its holder runs in this process (two apps in one process): alive;
- with the embedded engine, only this process can hold the data directory: any other holder is dead
  (a restart after a crash starts at once, even as pid 1 in a container again);
- on a server, a holder is dead once it has not been heard from for GAMELENS_WRITER_LEASE_S. A
  starting writer waits that long for a dead holder's lease to lapse, then refuses to start in one
  sentence if the holder is still alive.

A writer that finds a greater generation than its own (it was cut off longer than the lease and
another writer started) has lost: it stops doing writers' work (uploads and writes answer 409, as on
a reader), says so in the log, and blocks no one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from .errors import GameLensError
from .settings import Settings
from .store import WRITER_LOCK, Store

log = logging.getLogger(__name__)

# Holders whose writer runs in this process (several apps may share one process, as tests do).
_HERE: set[str] = set()


class WriterLease:
    def __init__(self, store: Store, settings: Settings):
        self.store, self.ttl = store, settings.writer_lease_s
        self.holder, self.host, self.pid = uuid.uuid4().hex, socket.gethostname(), os.getpid()
        url = settings.clickhouse_url
        self.embedded = url is None or url.startswith("chdb:")
        self.generation = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the writer's generation, or refuse (GameLensError writer_exists) while a writer lives."""
        deadline = time.monotonic() + self.ttl
        while True:
            top, holder = self._top()
            if self._dead(holder):
                # Above every generation that wrote an upload record too: its records fence the older
                # generations' (Store.save_upload), even if the lease's own tables were lost.
                after = max(top, self.store.newest_record_writer())
                if self._claim(after + 1):
                    break
                continue  # a lost race to create it: look again at once
            if time.monotonic() > deadline:
                raise self._refusal(holder)
            time.sleep(min(1.0, self.ttl / 5))
        self.generation = after + 1
        self._thread = threading.Thread(target=self._beat, name="gamelens-lease", daemon=True)
        self._thread.start()

    def _claim(self, generation: int) -> bool:
        """Claim a generation, alive before the claim shows: a contender that reads the claim finds its
        holder alive (in this process, or heard from), never dead in the moment between the claim and
        its first beat (it then took the next generation: two writers until the first one's next beat)."""
        _HERE.add(self.holder)
        claimed = False
        try:
            self.store.heartbeat(self.holder, self.host, self.pid)
            claimed = self.store.claim(f"{WRITER_LOCK}{generation}", f"holder:{self.holder}")
        finally:
            if not claimed:
                _HERE.discard(self.holder)
        return claimed

    def _top(self) -> tuple[int, str | None]:
        """The greatest generation and its holder (0, None when there is none)."""
        claims = self.store.claims(WRITER_LOCK)
        if not claims:
            return 0, None
        number, comment, _ = claims[-1]
        return number, comment.removeprefix("holder:")

    def _dead(self, holder: str | None) -> bool:
        if holder is None:
            return True
        if holder in _HERE:
            return False
        if self.embedded:
            return True
        heard = self.store.last_heard(holder)
        return heard is None or heard[2] > self.ttl

    def _refusal(self, holder: str) -> GameLensError:
        heard = self.store.last_heard(holder)
        where = f" (process {heard[1]} on {heard[0]}, heard from {heard[2]:.0f} s ago)" if heard else ""
        return GameLensError("writer_exists", f"Another GameLens writer{where} uses this database; start this one "
                             "with GAMELENS_ROLE=reader, or stop the other first.", 503)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.store.heartbeat(self.holder, self.host, self.pid)
            except GameLensError as exc:  # refused (a full disk) or away: the next beat tries again
                log.warning("the writer lease could not be renewed: %s", exc.code)
            # Read even when the beat was refused: a database that takes no writes still says whether
            # another writer took over meanwhile.
            try:
                top, holder = self._top()
            except GameLensError as exc:
                log.warning("the writer lease could not be read: %s", exc.code)
                continue
            if top > self.generation:
                self.lost = True
                log.error("another writer took this database over (generation %s); this process stops doing "
                          "writers' work", top)
                _HERE.discard(self.holder)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(5)
        _HERE.discard(self.holder)
        try:
            self.store.release(self.holder)
        except GameLensError:  # a server writer is taken for dead after GAMELENS_WRITER_LEASE_S anyway
            log.warning("the writer lease could not be released")
