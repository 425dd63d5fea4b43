"""Dataset versions: one table per successful upload (`games_v<id>`) and a pointer to the active one.

Why a pointer rather than a well-known table name swapped by EXCHANGE: one request runs several
statements (a page, its total and facets; an export's count and rows). Each request resolves the
active version once (`current`) and reads every statement from that version's own table, so an
answer never mixes two datasets, and the response cache has a key that a switch makes stale.

Everything that decides which data is served lives in the database and is judged by its clock:
- the pointer (`active_version`) is a history of switches; each row's time is the server's clock,
  never earlier than the row before it, and the newest row names the served version;
- a version is dropped only once it has been out of the pointer for longer than the longest read may
  take (GAMELENS settings: export and query timeouts, connection waits, plus a margin). No process
  holds a lease: a request in any process that resolved a version just before a switch finishes its
  read before that time has passed;
- each table's COMMENT names its upload and the layout it was written with (see migrations.py).

Switching is a single INSERT into the pointer (the commit). Before it, a failure costs only the new
upload; after it, nothing can fail the upload or drop a kept version: pruning errors become warnings,
retried by the janitor (the upload worker, when idle) and at the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..engine import INDEXES_UNSUPPORTED, Engine
from ..errors import EngineError, GameLensError
from ..records import IndexState
from ..store import KEY_CLAIM, LEGACY_ACTIVE, UPLOAD_CLAIM, WRITER_LOCK, Store
from . import migrations, physical

log = logging.getLogger(__name__)

# The pointer is re-read when this process's copy is older than this (another process may switch).
# Past half of it, a request still reads the copy it has while one reading starts beside it: a server
# that is being read re-reads it before it is stale, and no request waits for it (~7 ms).
REFRESH_S = 1.0


def stage_name(upload_id: int) -> str:
    return f"stage_{int(upload_id)}"


def version_name(upload_id: int) -> str:
    return f"games_v{int(upload_id)}"


def no_dataset(kept: list[int] | None = None) -> GameLensError:
    """Nothing is served: nothing loaded yet, or only uploads loaded to be kept (`kept`, newest first)."""
    if kept:
        return GameLensError("no_dataset", f"No dataset is served yet: upload {kept[0]} is loaded and kept; "
                             f"POST /api/v1/uploads/{kept[0]}/activate serves it.", 409, value={"kept": kept[0]})
    return GameLensError("no_dataset", "No dataset has been loaded yet: POST a link to /api/v1/uploads.", 409)


@dataclass(frozen=True)
class Snapshot:
    """The version one request reads: its upload id, its quoted table, the table's UUID, which names
    the data itself (two databases that each have an upload 1 have different UUIDs), and the
    monotonic time by which every read of it must have ended: the pointer was read no later than
    the switch away from it, and the version stays for longer than that after the switch."""

    upload_id: int
    table: str
    identity: str
    deadline: float
    ranks: frozenset[str] = frozenset()  # the sort ranks its table holds (physical.RANKED)
    packed: bool = False  # its table holds the packed fields (physical.PACKED)
    elements: str = ""  # the quoted table of its element bitmaps (physical.elements_table); "" if it has none

    def check_time(self, needs_s: float) -> None:
        """Refuse (503 busy) a statement that might need `needs_s` (a connection wait and its time
        limit) and so might end after the deadline: its version could be gone by then."""
        if time.monotonic() + needs_s > self.deadline:
            raise GameLensError("busy", "The server is too busy to finish this request in time; try again.", 503,
                                headers={"Retry-After": "1"})


@dataclass(frozen=True)
class Held:
    """A dataset table of the catalogue."""

    name: str
    upload_id: int
    layout: int
    tagged: bool  # its comment records its layout (tables of releases before c1d0440's successor do not)

    @property
    def is_version(self) -> bool:  # not a staging table, nor an upgrade's copy
        return self.name == version_name(self.upload_id)


@dataclass(frozen=True)
class _Seen:
    """The pointer as this process last read it."""

    upload_id: int | None
    snapshot: Snapshot | None  # what requests read; None with a `problem`, or before the first upload
    problem: GameLensError | None  # the error requests get instead (e.g. the version is not upgraded)
    read_at: float  # monotonic time the reading started

    def age(self) -> float:
        return time.monotonic() - self.read_at

    def stale(self) -> bool:
        return self.age() > REFRESH_S


def _why(exc: GameLensError) -> str:
    """An engine error's code, or our own code for the engine's limit errors (for the log)."""
    if isinstance(exc, EngineError):
        return f"code {exc.engine_code}"
    return exc.code


def _left_at(history: list[tuple[int, int]]) -> dict[int, int]:
    """upload id -> when (server ns) the pointer last moved off it, from the pointer's rows in order;
    the version it names now has no entry."""
    left: dict[int, int] = {}
    previous = None
    for at, upload_id in history:
        if previous is not None and previous != upload_id:
            left[previous] = at
        previous = upload_id
    left.pop(previous, None)
    return left


# The database's tables as Store.tables reads them: (name, comment, column names, engine).
Catalogue = list[tuple[str, str, list[str], str]]


def _held(catalogue: Catalogue) -> list[Held]:
    """The dataset tables (versions, staging tables, upgrade copies) among the catalogue's (Store.tables)."""
    held = []
    for name, comment, columns, _ in catalogue:
        parsed = migrations.parse_comment(comment)
        if parsed:
            held.append(Held(name, parsed[0], migrations.layout_of(comment, columns), parsed[1] is not None))
    return held


def _active_first(held: list[Held], active: int | None) -> list[int]:
    """The upload ids whose versions are held: the active one first, then newest first."""
    kept = sorted((h.upload_id for h in held if h.is_version), reverse=True)
    return ([active] if active in kept else []) + [i for i in kept if i != active]


class Versions:
    def __init__(self, engine: Engine, writer: Engine | None = None):
        self.engine = engine  # reads of the pointer and the catalogue (request side)
        self.writer = writer or engine  # renames, switches, drops (the upload worker's connections)
        self.cluster = engine.settings.clickhouse_cluster
        self.store = Store(self.writer, self.cluster)  # every statement of the writing side
        self.grace_ns = int(engine.settings.version_grace_s * 1e9)
        self.longest_read_s = engine.settings.longest_read_s
        self._lock = threading.Lock()  # switches, re-activations, upgrades and pruning: one at a time
        self._seen_lock = threading.Lock()  # readings of the pointer are installed in the order they began
        self._seen = _Seen(None, None, None, -1e9)  # the pointer as last read
        self.on_switch: list[Callable[[Snapshot], None]] = []  # told each new active version (the cache)
        self._refresher: threading.Thread | None = None  # a reading of the pointer beside the requests
        self._refresher_lock = threading.Lock()
        self._refreshed_at = -1e9  # when the last reading beside the requests started (monotonic)
        self._closed = False  # no reading starts beside the requests once the engine is closing
        # table UUID -> its derived columns, once it holds them all: a table never loses a column
        self._all_derived: dict[str, frozenset[str]] = {}

    def _on(self, engine: Engine | None) -> Store:
        """The statements on `engine`'s connections (the request side's, unless the worker passes its own)."""
        return Store(engine or self.engine, self.cluster)

    def table(self, upload_id: int) -> str:
        """The quoted table of a stored version."""
        return self.store.q(version_name(upload_id))

    # --- which version is active --------------------------------------------------------------

    def _read_pointer(self, engine: Engine | None = None) -> int | None:
        """Read the pointer and the table it names; remember what a request may read (unless a reading
        that began later is already installed: this one may predate a switch)."""
        started = time.monotonic()
        pointer = self._on(engine).pointer()
        upload_id, snap, problem = None, None, None
        if pointer is not None:
            upload_id, uuid, comment = pointer
            derived = self._derived(upload_id, uuid, engine)
            snap, problem = self._servable(upload_id, uuid, comment, started + self.longest_read_s, derived,
                                           f"The active dataset (upload {upload_id})")
        with self._seen_lock:
            if started < self._seen.read_at:
                return self._seen.upload_id
            previous = self._seen.snapshot
            self._seen = _Seen(upload_id, snap, problem, started)
            if snap is not None and (previous is None or previous.identity != snap.identity):
                for listener in self.on_switch:  # switched here or by another process; in order
                    listener(snap)
        return upload_id

    def _derived(self, upload_id: int, uuid: str, engine: Engine | None) -> frozenset[str]:
        """The derived columns (sort ranks, packed fields: physical.DERIVED) of a version, read again only
        until it holds them all (a statement of their own, ~1 ms). There are none on a cluster (see finish)."""
        if self.cluster or not uuid:
            return frozenset()
        if uuid not in self._all_derived:
            derived = self._on(engine).derived(version_name(upload_id))
            if len(derived) < len(physical.DERIVED):
                return derived
            self._all_derived[uuid] = derived
        return self._all_derived[uuid]

    def _servable(self, upload_id: int, uuid: str, comment: str, deadline: float, derived: frozenset[str], what: str
                  ) -> tuple[Snapshot | None, GameLensError | None]:
        """A snapshot of a version table, or why it cannot be read (`what` names it in the message)."""
        if not uuid:  # cannot happen by our own hand: the active version is never dropped
            return None, GameLensError("dataset_missing", f"{what} is missing from the database; activate "
                                       "another upload or upload again.", 503)
        parsed = migrations.parse_comment(comment)
        if parsed is None or parsed[1] != migrations.LAYOUT:
            return None, GameLensError(
                "dataset_not_upgraded", f"{what} is not in the layout this release reads; it is upgraded "
                "when the server that writes starts (see the upload's record).", 503, headers={"Retry-After": "5"})
        ranks = derived - {physical.PACKED, physical.ELEMENTS}
        elements = ""
        if physical.ELEMENTS in derived:
            elements = self.store.q(physical.elements_table(version_name(upload_id)))
        return Snapshot(upload_id, self.table(upload_id), uuid, deadline, ranks, physical.PACKED in derived,
                        elements), None

    def active(self, fresh: bool = False, engine: Engine | None = None) -> int | None:
        """The active upload id (None before the first upload), cached for REFRESH_S. The worker
        passes its own `engine`, so it never waits for a request's connection."""
        if fresh or self._seen.stale():
            return self._read_pointer(engine)
        return self._seen.upload_id

    def current(self) -> Snapshot:
        """The version a request reads (resolved once per request; every statement reads its table)."""
        age = self._seen.age()
        if age > REFRESH_S:
            self._read_pointer()
        elif age > REFRESH_S / 2:
            self._refresh_beside()
        seen = self._seen
        if seen.problem is not None:
            raise seen.problem
        if seen.snapshot is None:
            raise no_dataset(self.stored_ids())
        return seen.snapshot

    def stored(self, upload_id: int) -> Snapshot:
        """A stored version a request names (`?version=N`), served or not: a kept upload read before it is
        activated, or an earlier one before a rollback. Its deadline is the active version's. A version
        the pointer left stays longer than that (see _prune), but a new upload can push one that was
        never served, or one beyond GAMELENS_KEEP_VERSIONS, out sooner: reads of it then end in 404
        version_gone (query/run.py)."""
        started = time.monotonic()
        found = self._on(None).version_table(version_name(upload_id))
        if found is None:
            stored = self.stored_ids()
            listed = ", ".join(str(i) for i in stored) or "none"
            raise GameLensError("unknown_version", f"No data of upload {upload_id} is stored; the uploads whose data "
                                f"is stored: {listed}.", 404, param="version", value=upload_id, allowed=stored)
        uuid, comment = found
        snap, problem = self._servable(upload_id, uuid, comment, started + self.longest_read_s,
                                       self._derived(upload_id, uuid, None), f"The data of upload {upload_id}")
        if problem is not None:
            raise problem
        return snap

    def _refresh_beside(self) -> None:
        """Re-read the pointer on a thread of its own: one reading at a time, at most one per half of
        REFRESH_S (a failed one is not retried by every request). If it fails, the first request past
        REFRESH_S reads it itself (and gets the error)."""
        with self._refresher_lock:
            if self._closed or time.monotonic() - self._refreshed_at < REFRESH_S / 2:
                return
            self._refreshed_at = time.monotonic()
            self._refresher = threading.Thread(target=self._refresh, name="gamelens-pointer", daemon=True)
            self._refresher.start()

    def _refresh(self) -> None:
        try:
            self._read_pointer()
        except Exception:  # a thread of its own: said here; the next request past REFRESH_S retries
            log.warning("reading the pointer beside the requests failed", exc_info=True)

    def close(self) -> None:
        """Start no more readings beside the requests and wait for one in flight (the engine is closed
        next: chDB crashes the process when a statement still runs as it shuts down)."""
        with self._refresher_lock:
            self._closed = True
            refresher = self._refresher
        if refresher is not None:
            refresher.join()

    # --- the catalogue ----------------------------------------------------------------------------

    def holdings(self, engine: Engine | None = None) -> list[Held]:
        """Every dataset table (versions, staging tables, upgrade copies) with its upload and layout."""
        return _held(self._on(engine).tables())

    def named_ids(self) -> set[int]:
        """Every upload the pointer has named (its history): those whose data was served."""
        _, history = self._history()
        return {upload_id for _, upload_id in history}

    def stored_ids(self, engine: Engine | None = None) -> list[int]:
        """Upload ids whose data is kept: the active one first, then newest first."""
        engine = engine or self.engine
        held = self.holdings(engine)
        return _active_first(held, self.active(fresh=True, engine=engine))

    # --- switching --------------------------------------------------------------------------------

    def publish(self, upload_id: int, keep: int, before_switch: Callable[[Snapshot], None] | None = None,
                switch: bool = True) -> list[str]:
        """Make the checked staging table of `upload_id` a kept version, and the active one unless
        `switch` is false; returns warnings.

        `before_switch` runs on the new version before anyone can read it (the cache warms there).
        """
        with self._lock:
            self.store.rename(stage_name(upload_id), version_name(upload_id))
            if not switch:  # kept for a later activate: nothing is served from it, nothing to warm
                return self._prune_with_warning(keep)
            warnings = []
            if before_switch:
                try:
                    uuid = self.store.uuid(version_name(upload_id))
                    before_switch(Snapshot(upload_id, self.table(upload_id), uuid,
                                           time.monotonic() + self.longest_read_s))
                except Exception:  # only a cache: it fills as pages are read
                    log.exception("preparing the cache of upload %s failed", upload_id)
                    warnings.append("Preparing the new version's cached answers failed; they are computed as "
                                    "pages are read.")
            catalogue = self._switch(upload_id)
            return warnings + self._prune_with_warning(keep, catalogue)

    def activate(self, upload_id: int) -> None:
        """Make a kept version active again. Compared against the pointer itself; a version whose table
        is gone, or that could not be upgraded, is refused (409). Returns only once the pointer names it."""
        with self._lock:
            held = {h.upload_id: h for h in self.holdings(self.writer) if h.is_version}
            if upload_id not in held:
                raise GameLensError("version_not_kept", f"Upload {upload_id} has no stored data to re-activate "
                                    "(it failed, or it was older than GAMELENS_KEEP_VERSIONS and was dropped).", 409,
                                    param="id", value=upload_id, allowed=sorted(held, reverse=True))
            if held[upload_id].layout != migrations.LAYOUT:
                raise GameLensError("version_not_upgraded", f"Upload {upload_id}'s data could not be brought to the "
                                    "layout this release reads (its record says why), so it cannot be served.", 409,
                                    param="id", value=upload_id)
            if self.active(fresh=True, engine=self.writer) == upload_id:
                return
            self._switch(upload_id)
            now = self.active(fresh=True, engine=self.writer)
            if now != upload_id:
                raise GameLensError("switch_superseded", f"Another switch landed at the same time: upload {now} is "
                                    "active.", 409, param="id", value=upload_id)

    def _switch(self, upload_id: int) -> Catalogue | None:
        """The commit: one INSERT, timed by the server's clock and never before the previous switch (a
        clock that stepped back cannot reorder the history). If it raises, the pointer says whether it
        happened. Returns the catalogue as read after it (None if that read failed), for the prune."""
        try:
            self.store.point_to(upload_id)
        except GameLensError:
            if self._read_pointer(self.writer) != upload_id:
                raise
            log.warning("switching to upload %s raised, but the switch happened", upload_id)
        self._read_pointer(self.writer)
        return self._point_view(upload_id)

    def _point_view(self, upload_id: int) -> Catalogue | None:
        """BI users' view `games` follows the switch. Not while release 421b14a's table still has that
        name (adopt renames it, then points the view); a failure costs only the view (logged). Returns
        the catalogue it read (None if it could not)."""
        try:
            catalogue = self.store.tables()
            if not any(name == LEGACY_ACTIVE and engine != "View" for name, _, _, engine in catalogue):
                self.store.point_view(version_name(upload_id))
        except GameLensError as exc:
            log.warning("pointing the view %s at upload %s failed: %s", LEGACY_ACTIVE, upload_id, exc.code)
            return None
        return catalogue

    def finish(self, upload_id: int) -> IndexState:
        """Give a served version its final layout: one part, then its indexes (one at a time unless the
        part is small: see physical.py). Readers keep reading meanwhile; their answers stay the same. On
        a server without some or all of the text indexes, the part is merged and gets those it can:
        `unsupported` (answers are the same, slower)."""
        name = version_name(upload_id)
        self.store.merge(name)
        self.writer.release_memory()
        if not self.cluster:  # a Join table is one replica's own: another would read no ranks from it
            for column in physical.RANKED:
                self._rank(name, column)
            self._pack(name)  # not tried on a cluster: no replica reads it there (see _derived)
            self._elements(name)
        refused: list[str] = []
        for indexes in physical.index_passes(self.store.stored_bytes(name)):
            if self._index_pass(name, indexes):
                continue
            if len(indexes) == 1:
                refused += indexes
                continue
            # One statement is all or nothing: each index is written alone, so the others are built.
            log.info("the server refused one of the text indexes %s of %s; writing them one at a time", indexes, name)
            refused += [index for index in indexes if not self._index_pass(name, [index])]
        if not refused:
            return "ready"
        self._drop_declared(name, refused)
        log.warning("this ClickHouse server cannot build the text indexes %s of %s: their filters scan", refused, name)
        return "unsupported"

    def _drop_declared(self, name: str, indexes: list[str]) -> None:
        """An ADD that went through before its MATERIALIZE was refused leaves a declaration with no data:
        dropped, so the table declares what it holds. A tidy-up: if it fails, answers are the same."""
        try:
            self.store.drop_indexes(name, indexes)
        except EngineError as exc:
            log.warning("dropping the unwritten text indexes %s of %s failed (code %s)", indexes, name,
                        exc.engine_code)

    def _index_pass(self, name: str, indexes: list[str]) -> bool:
        """Write `indexes` in one pass; False if this server cannot build one of them (left out: answers
        are the same, slower; finish() says which)."""
        written = True
        try:
            self.store.build_indexes(name, indexes)
        except EngineError as exc:
            if exc.engine_code not in INDEXES_UNSUPPORTED:
                raise
            log.debug("text indexes %s refused (code %s)", indexes, exc.engine_code)
            written = False
        self.writer.release_memory()
        return written

    def _rank(self, name: str, column: str) -> None:
        self._derive(f"the sort rank of {column} in {name}", "pages sorted by it read the text",
                     lambda: self.store.build_rank(name, column), lambda: self.store.abandon_rank(name, column))

    def _pack(self, name: str) -> None:
        self._derive(f"the packed fields of {name}", "pages read their columns",
                     lambda: self.store.build_packed(name), lambda: self.store.abandon_packed(name))

    def _elements(self, name: str) -> None:
        self._derive(f"the element bitmaps of {name}", "segments' top lists read the lists",
                     lambda: self.store.build_elements(name), lambda: self.store.abandon_elements(name))

    def _derive(self, what: str, meanwhile: str, build: Callable[[], None], abandon: Callable[[], None]) -> None:
        """Store something a finish derives from a version: a sort rank, the packed fields, the element
        bitmaps (readers use it from their next reading of the pointer). A failure costs speed only (what
        readers do `meanwhile`), and the indexes are built all the same: what it left is removed, and the next
        start tries again. Limit errors (memory, time) count as failures too: the engine reports them as
        our own errors (engine.engine_error), not as EngineError. A stop's cancel is no failure: it goes up,
        and the next start removes what it left, then builds again."""
        try:
            build()
        except GameLensError as exc:
            if self.writer.was_cancelled(exc):
                raise
            log.warning("storing %s failed (%s); %s", what, _why(exc), meanwhile)
            self._abandon(what, abandon)

    def _abandon(self, what: str, abandon: Callable[[], None]) -> None:
        try:
            abandon()
        except GameLensError as exc:
            log.warning("removing the unfinished %s failed (%s); the next start removes it", what, _why(exc))

    def rank_and_pack(self, stopping: Callable[[], bool]) -> None:
        """Versions finished without their ranks, packed fields or element bitmaps (by an earlier release, or
        after a failed build) get them: at start, once the resumed index builds are done, until `stopping()`
        says a stop's grace is over. Versions at another layout are left as they are (they are not served)."""
        if self.cluster:
            return
        for h in self.holdings(self.writer):
            if not (h.is_version and h.tagged and h.layout == migrations.LAYOUT):
                continue
            for column in physical.RANKED:
                if stopping():
                    return
                self._rank(h.name, column)
            if stopping():
                return
            self._pack(h.name)
            if stopping():
                return
            self._elements(h.name)

    def _abandon_rank(self, name: str, column: str) -> None:
        self._abandon(f"the sort rank of {column} in {name}", lambda: self.store.abandon_rank(name, column))

    # --- dropping by the server's clock -----------------------------------------------------------

    def prune(self, keep: int) -> list[str]:
        """Drop versions beyond the `keep` newest once no read can still be on them; returns warnings."""
        with self._lock:
            return self._prune_with_warning(keep)

    def _prune_with_warning(self, keep: int, catalogue: Catalogue | None = None) -> list[str]:
        try:
            self._prune(keep, catalogue)
        except GameLensError as exc:
            log.warning("pruning old versions failed: %s", exc.message)
            return [f"Removing versions beyond GAMELENS_KEEP_VERSIONS failed ({exc.code}); they are removed "
                    "later, or at the next start."]
        return []

    def _history(self) -> tuple[int, list[tuple[int, int]]]:
        """The server's time now (ns) and the pointer's rows (at, upload id) in order."""
        return self.store.pointer_history()

    def _prune(self, keep: int, catalogue: Catalogue | None = None) -> None:
        """`catalogue`: the tables as a switch just read them (a switch's prune reads them once, ~4 ms);
        none of them is dropped but here, under the same lock. The active version is the history's last."""
        if catalogue is None:
            catalogue = self.store.tables()
        now, history = self._history()
        current = history[-1][1] if history else None
        left = _left_at(history)
        for upload_id in _active_first(_held(catalogue), current)[keep:]:
            if upload_id == current:
                continue
            if upload_id in left and now - left[upload_id] <= self.grace_ns:
                continue  # a request that resolved it before the switch may still be reading it
            self.store.drop_version(version_name(upload_id))

    def discard(self, upload_id: int) -> None:
        """Drop what a failed upload built: its staging table and, if it got that far, its version
        table. Never a version the pointer has named (checked against the pointer itself, under the
        lock that switches take)."""
        with self._lock:
            self.store.drop(stage_name(upload_id))
            _, history = self._history()
            if all(named != upload_id for _, named in history):
                self.store.drop_version(version_name(upload_id))

    # --- start-up ---------------------------------------------------------------------------------

    def adopt(self, acknowledged: set[int]) -> None:
        """At start-up, first: give every version table its own name and make sure the pointer names a
        version when any is kept. Repairs what earlier releases and their crashes left:
        - release 421b14a named the active version `games`; a crash between its EXCHANGE and RENAME
          left a version under another version's or a staging table's name (its comment says whose);
        - a pointer that names nothing while acknowledged versions are kept."""
        with self._lock:
            for h in self.holdings(self.writer):
                own = (version_name(h.upload_id), stage_name(h.upload_id), migrations.upgrade_name(h.upload_id))
                if h.name != LEGACY_ACTIVE and h.name not in own:
                    self._rename_to_own_name(h)
            legacy = next((h for h in self.holdings(self.writer) if h.name == LEGACY_ACTIVE), None)
            if legacy is not None:
                if self.active(fresh=True, engine=self.writer) is None:  # first the pointer: a crash
                    self._switch(legacy.upload_id)  # before the rename is repaired at the next start
                self._rename_to_own_name(legacy)
            if self.active(fresh=True, engine=self.writer) is None:
                kept = [h.upload_id for h in self.holdings(self.writer) if h.is_version and h.upload_id in acknowledged]
                if kept:
                    log.warning("no version was active; upload %s (the newest kept) is served", max(kept))
                    self._switch(max(kept))
            active = self.active(fresh=True, engine=self.writer)
            if active is not None:
                self._point_view(active)

    def _rename_to_own_name(self, held: Held) -> None:
        names = {h.name for h in self.holdings(self.writer)}
        if version_name(held.upload_id) in names:
            log.warning("table %s holds upload %s, whose own name is taken; left as it is", held.name,
                        held.upload_id)
            return
        self.store.rename(held.name, version_name(held.upload_id))

    def tidy(self, keep: int, acknowledged: set[int]) -> None:
        """At start-up, once records are reconciled: drop half-built tables (staging tables, upgrade
        copies, a server-side load's raw table) and versions that no upload record acknowledges and no
        pointer row names; then prune, by the same rule as ever."""
        with self._lock:
            _, history = self._history()
            named = {upload_id for _, upload_id in history}
            for h in self.holdings(self.writer):
                never_served = h.upload_id not in named and h.upload_id not in acknowledged
                if not h.is_version or never_served:
                    self.store.drop_version(h.name)
            tables = {name: engine for name, _, _, engine in self.store.tables()}
            for name in tables:
                if name.startswith("stage_") and name.endswith("_csv"):
                    self.store.drop(name)
            self._drop_stray_elements(tables)
            self._abandon_rank_builds(tables)
            self._drop_old_claims()
            self._prune(keep)

    def _drop_stray_elements(self, tables: dict[str, str]) -> None:
        """Element bitmaps whose version is gone (a stop between Store.drop_version's two drops), and a
        stopped build's working table (Store.build_elements builds it again)."""
        prefix = physical.elements_table("")
        for name in tables:
            if not name.startswith(prefix):
                continue
            if name.endswith("_new") or name.removeprefix(prefix) not in tables:
                self.store.drop(name)

    def _abandon_rank_builds(self, tables: dict[str, str]) -> None:
        """Join tables are only a stopped Store.build_rank's: its version's build is abandoned (its
        update killed first), and the index builds resumed next start it over; one whose version is
        gone is dropped."""
        for name, engine in tables.items():
            if engine != "Join":
                continue
            for column in physical.RANKED:
                version = name.removesuffix(physical.rank_column(column))
                if version != name and version in tables:
                    self._abandon_rank(version, column)  # a failure (no room on the disk) is logged: a start goes on
            self.store.drop(name)

    def _drop_old_claims(self) -> None:
        """Upload id claims below the newest that are over an hour old: no claimer's count can be that
        stale, so none can claim those ids again (the newest stays: the next id counts from it); the
        writer's older generations; and claims on keys' changes over an hour old (keys.KeyStore._claim_change)."""
        claims = self.store.claims(UPLOAD_CLAIM)
        for number, _, age in claims[:-1]:
            if age > 3600:
                self.store.drop(f"{UPLOAD_CLAIM}{number}")
        for number, _, _ in self.store.claims(WRITER_LOCK)[:-1]:  # only the newest generation counts
            self.store.drop(f"{WRITER_LOCK}{number}")
        for name in self.store.old_tables(KEY_CLAIM, 3600):  # its key's record moved on long ago
            self.store.drop(name)

    def upgrade(self) -> dict[int, str | None]:
        """Bring every kept version below today's layout up to it (migrations.py), before serving.
        Returns upload id -> None (upgraded) or why it could not be, for each version it touched."""
        outcome: dict[int, str | None] = {}
        with self._lock:
            for h in self.holdings(self.writer):
                if not h.is_version or (h.tagged and h.layout >= migrations.LAYOUT):
                    continue
                try:
                    migrations.upgrade(self.store, h.name, h.upload_id, h.layout)
                    outcome[h.upload_id] = None
                except GameLensError as exc:
                    log.error("upload %s could not be upgraded from layout %s: %s", h.upload_id, h.layout,
                              getattr(exc, "detail", exc.message))
                    outcome[h.upload_id] = f"Its data (layout {h.layout}) could not be upgraded to layout " \
                                           f"{migrations.LAYOUT} ({exc.code}); it is kept as it was and not served."
            active = self._read_pointer(self.writer)
            if active is not None and active in outcome:  # the view's columns are fixed when it is made
                self._point_view(active)
        return outcome
