"""Dataset versions: one table per successful upload (`games_v<id>`) and a pointer to the active one.

Why a pointer rather than a well-known table name swapped by EXCHANGE: one request runs several
statements (a page, its total and facets; an export's count and rows). Each request resolves the
active version once (`reading`) and reads every statement from that version's own table, so an
answer never mixes two datasets, and the response cache has a key that a switch makes stale.

Switching is a single INSERT into `active_version` (the commit). Before it, a failure costs only
the new upload; after it, nothing can fail the upload or drop a kept version: pruning errors become
warnings, repaired by `reconcile` at the next start. Every dataset table carries `upload:<id>` in its
COMMENT, so the catalogue itself says what each table holds.

A version a request is reading is leased: pruning skips it and drops it when the last lease ends.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..engine import Engine, ident
from ..errors import GameLensError
from . import physical

log = logging.getLogger(__name__)

POINTER = "active_version"
LEGACY_ACTIVE = "games"  # before the pointer, the active version was the table named `games`
# Another GameLens process on the same ClickHouse server may switch versions: the pointer is
# re-read when the cached value is older than this.
REFRESH_S = 1.0
_COMMENT = re.compile(r"^upload:(\d+)$")


def comment_for(upload_id: int) -> str:
    return f"upload:{int(upload_id)}"


def stage_name(upload_id: int) -> str:
    return f"stage_{int(upload_id)}"


def version_name(upload_id: int) -> str:
    return f"games_v{int(upload_id)}"


def no_dataset() -> GameLensError:
    return GameLensError("no_dataset", "No dataset has been loaded yet: POST a link to /api/v1/uploads.", 409)


@dataclass(frozen=True)
class Snapshot:
    """The version one request reads: its upload id and its quoted table name."""

    upload_id: int
    table: str


class Versions:
    def __init__(self, engine: Engine, writer: Engine | None = None):
        self.engine = engine  # reads of the pointer and the catalogue (request side)
        self.writer = writer or engine  # renames, switches, drops (the upload worker's connections)
        self._lock = threading.Lock()  # switches, re-activations and pruning: one at a time
        self._leases: collections.Counter[int] = collections.Counter()
        self._doomed: set[int] = set()
        self._lease_lock = threading.Lock()
        self._active: int | None = None
        self._checked = 0.0
        self.on_switch: list[Callable[[int], None]] = []  # told the new active version (the cache)

    def _q(self, name: str) -> str:
        return f"{ident(self.engine.db)}.{ident(name)}"

    def table(self, upload_id: int) -> str:
        """The quoted table of a stored version."""
        return self._q(version_name(upload_id))

    def start(self) -> None:
        self.writer.execute(f"CREATE TABLE IF NOT EXISTS {self._q(POINTER)} (at UInt64, upload_id UInt64) "
                            "ENGINE = MergeTree ORDER BY at")

    # --- which version is active --------------------------------------------------------------

    def _read_pointer(self, engine: Engine | None = None) -> int | None:
        res = (engine or self.engine).select(f"SELECT upload_id FROM {self._q(POINTER)} ORDER BY at DESC LIMIT 1",
                                             readonly=False)
        upload_id = res.scalar()
        changed = upload_id != self._active and upload_id is not None
        self._active, self._checked = upload_id, time.monotonic()
        if changed:  # switched here or by another process on the same server
            for listener in self.on_switch:
                listener(upload_id)
        return upload_id

    def active(self, fresh: bool = False, engine: Engine | None = None) -> int | None:
        """The active upload id (None before the first upload), cached for REFRESH_S. The worker
        passes its own `engine`, so it never waits for a request's connection."""
        if fresh or time.monotonic() - self._checked > REFRESH_S:
            return self._read_pointer(engine)
        return self._active

    @contextmanager
    def reading(self) -> Iterator[Snapshot]:
        """Resolve the active version once for a request and keep its table while the request reads it."""
        upload_id = self.active()
        if upload_id is None:
            raise no_dataset()
        with self._lease_lock:
            self._leases[upload_id] += 1
        try:
            yield Snapshot(upload_id, self.table(upload_id))
        finally:
            with self._lease_lock:
                self._leases[upload_id] -= 1
                drop = self._leases[upload_id] == 0 and upload_id in self._doomed
                if self._leases[upload_id] == 0:
                    del self._leases[upload_id]
                if drop:
                    self._doomed.discard(upload_id)
            if drop:
                self._drop_quietly(version_name(upload_id))

    # --- the catalogue ----------------------------------------------------------------------------

    def _holdings(self, engine: Engine) -> dict[str, int]:
        """table name -> upload id it holds, for every dataset table."""
        out = {}
        for name, comment in engine.tables().items():
            m = _COMMENT.match(comment or "")
            if m:
                out[name] = int(m.group(1))
        return out

    def stored_ids(self, engine: Engine | None = None) -> list[int]:
        """Upload ids whose data is kept: the active one first, then newest first."""
        engine = engine or self.engine
        kept = sorted((i for n, i in self._holdings(engine).items() if n == version_name(i)), reverse=True)
        active = self.active(fresh=True, engine=engine)
        return ([active] if active in kept else []) + [i for i in kept if i != active]

    # --- switching --------------------------------------------------------------------------------

    def publish(self, upload_id: int, keep: int, before_switch: Callable[[Snapshot], None] | None = None
                ) -> list[str]:
        """Make the checked staging table of `upload_id` the active version; returns warnings.

        `before_switch` runs on the new version before anyone can read it (the cache warms there).
        """
        with self._lock:
            self.writer.execute(f"RENAME TABLE {self._q(stage_name(upload_id))} TO {self._q(version_name(upload_id))}")
            warnings = []
            if before_switch:
                try:
                    before_switch(Snapshot(upload_id, self.table(upload_id)))
                except Exception:  # only a cache: it fills as pages are read
                    log.exception("preparing the cache of upload %s failed", upload_id)
                    warnings.append("Preparing the new version's cached answers failed; they are computed as "
                                    "pages are read.")
            self._switch(upload_id)
            return warnings + self._prune_with_warning(keep)

    def activate(self, upload_id: int) -> None:
        """Make a kept older version active again."""
        with self._lock:
            stored = self.stored_ids(self.writer)
            if stored and stored[0] == upload_id:
                return
            if upload_id not in stored:
                raise GameLensError("version_not_kept", f"Upload {upload_id} has no stored data to re-activate "
                                    "(it failed, or it is older than GAMELENS_KEEP_VERSIONS).", 409,
                                    param="id", value=upload_id, allowed=stored)
            self._switch(upload_id)

    def _switch(self, upload_id: int) -> None:
        """The commit: one INSERT. If it raises, the pointer itself says whether it happened."""
        try:
            self.writer.execute(f"INSERT INTO {self._q(POINTER)} SELECT {{at:UInt64}}, {{id:UInt64}}",
                                {"at": time.time_ns(), "id": upload_id})
        except GameLensError:
            if self._read_pointer(self.writer) != upload_id:
                raise
            log.warning("switching to upload %s raised, but the switch happened", upload_id)
        self._active, self._checked = upload_id, time.monotonic()
        for listener in self.on_switch:
            listener(upload_id)

    def finish(self, upload_id: int) -> None:
        """Give a served version its final layout: one part, with its indexes (see physical.py).
        Readers keep reading meanwhile; their answers stay the same."""
        for sql in physical.finishing_statements(self.table(upload_id)):
            self.writer.execute(sql, settings={"mutations_sync": 2, "alter_sync": 2})

    def _prune_with_warning(self, keep: int) -> list[str]:
        try:
            self._prune(keep)
        except GameLensError as exc:
            log.warning("pruning old versions failed: %s", exc.message)
            return [f"Removing versions beyond GAMELENS_KEEP_VERSIONS failed ({exc.code}); they are removed at "
                    "the next upload or restart."]
        return []

    def _prune(self, keep: int) -> None:
        for upload_id in self.stored_ids(self.writer)[keep:]:
            with self._lease_lock:
                if self._leases[upload_id]:  # a request still reads it: dropped when it is done
                    self._doomed.add(upload_id)
                    continue
            self.writer.execute(f"DROP TABLE IF EXISTS {self._q(version_name(upload_id))} SYNC")

    def _drop_quietly(self, name: str) -> None:
        try:
            self.writer.execute(f"DROP TABLE IF EXISTS {self._q(name)} SYNC")
        except GameLensError:
            log.warning("dropping %s failed; the next start removes it", name)

    def discard(self, upload_id: int) -> None:
        """Drop what a failed upload built: its staging table and, if it got that far, its version
        table. Never the active version (checked against the pointer itself)."""
        self.writer.execute(f"DROP TABLE IF EXISTS {self._q(stage_name(upload_id))} SYNC")
        if self.active(fresh=True, engine=self.writer) != upload_id:
            self.writer.execute(f"DROP TABLE IF EXISTS {self._q(version_name(upload_id))} SYNC")

    # --- start-up ---------------------------------------------------------------------------------

    def reconcile(self, keep: int, acknowledged: set[int]) -> None:
        """At start-up: drop half-built tables and versions no upload record acknowledges, adopt a data
        directory written before the pointer existed, and prune to `keep` versions."""
        with self._lock:
            holdings = self._holdings(self.writer)
            legacy = holdings.pop(LEGACY_ACTIVE, None)
            if legacy is not None:
                self.writer.execute(f"RENAME TABLE {self._q(LEGACY_ACTIVE)} TO {self._q(version_name(legacy))}")
                holdings[version_name(legacy)] = legacy
                if self.active(fresh=True, engine=self.writer) is None:
                    self._switch(legacy)
            active = self.active(fresh=True, engine=self.writer)
            for name, upload_id in holdings.items():
                never_served = name == version_name(upload_id) and upload_id != active and upload_id not in acknowledged
                if name != version_name(upload_id) or never_served:
                    self.writer.execute(f"DROP TABLE IF EXISTS {self._q(name)} SYNC")
            for name in self.writer.tables():
                if name.startswith("stage_") and name.endswith("_csv"):
                    self.writer.execute(f"DROP TABLE IF EXISTS {self._q(name)} SYNC")
            self._prune(keep)
