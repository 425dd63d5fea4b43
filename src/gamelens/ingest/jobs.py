"""Upload records, the single worker that runs them in order, progress, and start-up recovery.

Records live in ClickHouse (table `uploads`, one typed document per upload, see records.py; the
newest write wins, by the server's clock). While an upload runs, its live progress is kept in memory
and written at every change of state. A record of how an upload ended that the database does not take
(its disk is full) is kept in memory, shown by this process, and written again while the worker is idle;
another process sees the record's last written state until then. When idle, the worker also drops
replaced versions whose time has come (versions.py).
"""

from __future__ import annotations

import logging
import math
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import CANCELLED_WAIT_S, WORKER_CONNECTIONS, Engine
from ..errors import GameLensError, shutting_down
from ..observe import UPLOAD_ROWS, UPLOAD_SECONDS, UPLOADS
from ..records import FINAL, RUNNING, UploadRecord
from ..settings import Settings
from ..store import Store
from . import download, load
from .versions import Versions, version_name

if TYPE_CHECKING:
    from ..lease import WriterLease

log = logging.getLogger(__name__)

# How often a request waiting for an upload's end looks whether the server began to stop, and a stop
# waiting for the worker whether its grace was ended meanwhile (Uploads._join_within_grace).
LEAVING_POLL_S = 0.2
# How often the idle worker tries again to write a record the database refused (Uploads._save_ended).
RECORD_RETRY_S = 2.0
SHUT_DOWN = "The server shut down before this upload ended; the previous dataset was kept. Submit it again."
NOT_THE_WRITER = ("This server stopped being the writer before this upload ended; the dataset was left as it was. "
                  "Submit it again to the writer.")


class Uploads:
    """`engine` serves the request side (submit, list, get); the worker runs on connections of its own."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine, self.settings = engine, settings
        self.worker = Engine(settings, pool_size=WORKER_CONNECTIONS)
        self.versions = Versions(engine, self.worker)
        # Statements on the request side's connections, and on the worker's own.
        self.store = Store(engine, settings.clickhouse_cluster)
        self.wstore = Store(self.worker, settings.clickhouse_cluster)
        self.before_switch = None  # set by the app: warms the response cache of a new version
        self._lease: WriterLease | None = None  # the writer lease it holds, if any (hold)
        self.writer_generation = 0  # its writer lease's generation, which fences its records (hold)
        self.fenced = False  # a record this process wrote was fenced off by a later writer's (_save)
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._live: dict[int, UploadRecord] = {}
        self._unwritten: dict[int, UploadRecord] = {}  # ended uploads whose record the database refused
        self._done: dict[int, threading.Event] = {}
        self._enders: dict[int, list[Callable[[], None]]] = {}  # called once an upload ended (when_ended)
        self._lock = threading.Lock()
        # A record's change of state and its write, one at a time (re-entered by _interrupt): the stop's cut
        # and the worker's end never cross, so the last record written is the last state decided.
        self._record_lock = threading.RLock()
        self._worker: threading.Thread | None = None
        # When a stop signal arrived (time.monotonic()), set by `gamelens serve` (cli.serve): the running
        # upload's grace starts then, new uploads are refused, queued ones do not start, and requests
        # waiting for an upload's end answer by the grace's end, before uvicorn's own wait for requests in
        # flight runs out and cancels them (a plain-text 500). A plain attribute: it is set from the
        # signal handler, where taking a lock could deadlock.
        self.leaving_at: float | None = None
        self._stopping = threading.Event()
        self._cut = threading.Event()  # the grace is over: the running upload stops (download.open_url's stop)

    # start-up and shutdown

    def hold(self, lease: WriterLease) -> None:
        """Do the writer's work under `lease` (taken by the caller): stop once it is lost, and mark every
        record with its generation (records.UploadRecord.writer)."""
        self._lease = lease
        self.writer_generation = lease.generation

    def may_write(self) -> bool:
        """Whether this process still does the writer's work: not once it lost its lease, nor once a
        record it wrote was fenced off by a later writer's (_save). Checked by the worker between steps
        and by the API before a write (api/auth.writer)."""
        if self.fenced:
            return False
        return self._lease is None or not self._lease.lost

    def start(self) -> None:
        """The writer's start-up work (recovery, reconciliation, upgrades) and its upload worker (the
        caller holds the writer lease: see lease.py)."""
        self.recover()
        self._worker = threading.Thread(target=self._run, name="gamelens-uploads", daemon=True)
        self._worker.start()

    def recover(self) -> None:
        """Uploads whose end was not recorded when the process died (it died while they ran, or the
        database refused their last record) are `interrupted`, or `succeeded` when the pointer named their
        kept data; so is an upload a stop marked `interrupted` while the worker switched its data in (the
        pointer has the last word); their leftovers go; kept versions written by earlier releases are
        upgraded (a version that cannot be is reported on its record, never served)."""
        records = self._records()
        # a version loaded to be kept (activate=false) is served only once asked, never by a repair
        self.versions.adopt({rec.id for rec in records if rec.state == "succeeded" and rec.activate})
        running = [rec for rec in records if rec.running]
        cut = [rec for rec in records if rec.state == "interrupted"]
        served: set[int] = set()
        if running or cut:  # the pointer's history and the stored tables are read only when there is one to judge
            served = self.versions.named_ids() & set(self.versions.stored_ids(self.worker))
        for rec in running:
            if rec.id in served:
                self._completed(rec, "The server stopped before this upload's end was recorded (its data had been "
                                "switched in); its record was completed at the next start.")
            else:
                self._interrupt(rec, "The server stopped before this upload's end was recorded; the previous "
                                "dataset was kept. Submit it again.")
        for rec in cut:
            if rec.id in served:  # the stop's mark came as the worker switched it in, and the worker was cut
                self._completed(rec, "The server stopped as this upload's data was switched in, and recorded it "
                                "as interrupted; the data was served, and its record was completed at the next start.")
        shutil.rmtree(self.engine.incoming, ignore_errors=True)  # pipes and received files of cut-off loads
        shutil.rmtree(self.engine.outgoing, ignore_errors=True)  # Parquet files of cut-off exports
        self.versions.tidy(self.settings.keep_versions, {rec.id for rec in records if rec.state == "succeeded"})
        self._record_upgrades(self.versions.upgrade(), {rec.id: rec for rec in records})

    def _completed(self, rec: UploadRecord, warning: str) -> None:
        """Record as succeeded an upload whose data the pointer named. Its indexes may not have been built (or
        their record was lost): built again, idempotently."""
        rows = self.wstore.count(version_name(rec.id))
        finished = rec.finished_at
        if finished is None:  # a stop's mark keeps its own time: the upload ended then
            finished = self._now()
        self._set(rec, state="succeeded", finished_at=finished, rows_loaded=rows, indexes="building", error=None,
                  warnings=[*rec.warnings, warning])

    def _record_upgrades(self, outcome: dict[int, str | None], records: dict[int, UploadRecord]) -> None:
        """Say on each upgraded version's record how it went. A version rewritten from an older layout has
        no text indexes yet: the worker builds them (as after a load). If the active version could not
        be upgraded, the newest one that could is served instead."""
        for upload_id, error in outcome.items():
            rec = records.get(upload_id)
            if rec is None:
                log.warning("version %s has no upload record; upgrade: %s", upload_id, error or "done")
                continue
            changes: dict[str, Any] = {"upgrade_error": error}
            if error is None and rec.indexes is None:
                changes["indexes"] = "building"
            self._set(rec, **changes)
        broken = {upload_id for upload_id, error in outcome.items() if error}
        active = self.versions.active(fresh=True, engine=self.worker)
        if active in broken:  # instead, the newest one that can be, but not one loaded to be kept unserved
            named = self.versions.named_ids()
            kept = {i for i, rec in records.items() if not rec.activate and i not in named}
            servable = [i for i in self.versions.stored_ids(self.worker) if i not in broken and i not in kept]
            if not servable:
                log.error("upload %s could not be upgraded and no other version can be served", active)
                return
            try:
                self.versions.activate(servable[0])
                log.error("upload %s could not be upgraded; upload %s is served instead", active, servable[0])
            except GameLensError as exc:  # reads say the dataset is not upgraded; the next start tries again
                log.error("upload %s could not be upgraded, nor upload %s served: %s", active, servable[0],
                          exc.message)

    def stopping(self) -> bool:
        """A stop began: a signal arrived (leaving_at), or the shutdown itself runs."""
        return self._stopping.is_set() or self.leaving_at is not None

    def _grace_ends(self) -> float:
        """When the running upload's grace ends (time.monotonic()); never, before a stop began."""
        if self.leaving_at is None:
            return math.inf
        return self.leaving_at + self.settings.shutdown_grace_s

    def stop(self, grace: bool = True) -> None:
        """Graceful shutdown: queued uploads do not start; the running one gets GAMELENS_SHUTDOWN_GRACE_S
        (from the stop signal, when there was one) to finish, then is marked interrupted (the next start
        removes what it left). `grace` false: no bound but a stop signal's (leaving_at), for the CLI, whose
        load ends once its version is finished, however long that takes."""
        self._stopping.set()
        self._queue.put(None)
        if self._worker:
            self._join_within_grace(grace)
        with self._lock:
            cut = [rec for rec in self._live.values() if rec.running]
        for rec in cut:
            never_started = rec.state == "queued"
            self._interrupt(rec, SHUT_DOWN)
            log.warning("upload %s marked interrupted at shutdown", rec.id)
            if never_started:  # the worker never opened its sent file: it goes now, not at the next start
                _remove_sent_file(rec)
        self._write_unwritten()  # a last try; the next start completes those still refused (recover)
        self._cut.set()
        if self._worker and self._worker.is_alive():
            self._end_worker(bool(cut))
        self.worker.close()

    def _end_worker(self, cut: bool) -> None:
        """Its statement in flight must end before the engine closes (chDB can crash the process when one
        outlives it). The grace is over, so it is cancelled (a finishing's statement can take longer than
        any wait: the next start builds what it cut); the download's connection is shut too
        (download.open_url's watch), and an interrupted upload takes no further step. Bounded, in case
        the worker still takes longer. (An idle worker ends at once, on the queue's None.)"""
        if cut:
            log.warning("cancelling the upload worker's statement in flight")
        try:
            self.worker.cancel_statements()
        except GameLensError as exc:
            log.error("cancelling the upload worker's statements failed (%s)", exc.code)
        self._worker.join(CANCELLED_WAIT_S)
        if self._worker.is_alive():
            log.error("the upload worker did not stop within %s s of its cancel; closing anyway", CANCELLED_WAIT_S)

    def _join_within_grace(self, grace: bool) -> None:
        """Wait for the worker until the grace ends (with `grace` false, only a stop signal's), in short waits:
        a grace ended while it waits (the CLI's Ctrl-C sets leaving_at) ends the wait too."""
        ends = math.inf
        if grace:
            ends = time.monotonic() + self.settings.shutdown_grace_s
        while self._worker.is_alive():
            left = min(ends, self._grace_ends()) - time.monotonic()
            if left <= 0:
                return
            self._worker.join(min(left, LEAVING_POLL_S))

    def _interrupt(self, rec: UploadRecord, message: str) -> None:
        """Mark a running upload interrupted. One that ended meanwhile keeps its end: a stop lists the running
        uploads, then marks them, and the worker may record a switch in between (the pointer names its data)."""
        with self._record_lock:
            if not rec.running:
                return
            self._set(rec, state="interrupted", finished_at=self._now(),
                      error={"code": "interrupted", "message": message})
        UPLOADS.labels("interrupted").inc()

    # records

    def _now(self):
        return self.wstore.now()

    def _save(self, rec: UploadRecord, store: Store | None = None) -> None:
        """Write the record (on the worker's own connections unless a request thread passes its store),
        marked with this process's writer generation: the database keeps it from overwriting a record a
        later writer wrote (records.UploadRecord.writer)."""
        doc = rec.model_copy(update={"writer": self.writer_generation}).doc()
        if (store or self.wstore).save_upload(rec.id, doc, self.writer_generation):
            return
        # A later writer recorded this upload: this process is no longer the writer, whether or not its
        # lease's next beat has seen it yet. It stops writers' work now rather than act on its own record.
        if not self.fenced:
            log.error("upload %s's record was not written: a later writer generation than %s recorded it; this "
                      "process stops doing writers' work", rec.id, self.writer_generation)
        self.fenced = True

    def _records(self) -> list[UploadRecord]:
        return [UploadRecord.model_validate_json(doc) for doc in self.store.upload_docs()]

    def _known_records(self) -> list[UploadRecord]:
        """The stored records, each replaced by this process's own where the database refused its last
        write (_unwritten): the worker acts on what it recorded, not on what the database kept."""
        with self._lock:
            unwritten = dict(self._unwritten)
        return [unwritten.get(rec.id, rec) for rec in self._records()]

    def list(self) -> list[dict]:
        """The records, with this process's uploads as get() shows them: a running one's progress (its
        saved record said 0 bytes, helper-61), an ended one's record not written yet."""
        stored, active = self.versions.stored_ids(), self.versions.active()
        with self._lock:
            local = {i: rec.model_copy(deep=True) for i, rec in {**self._unwritten, **self._live}.items()}
        return [self._present(local.get(rec.id, rec), stored, active) for rec in self._records()]

    def finishing(self) -> list[int]:
        """The uploads of this process whose versions are being finished (indexes: building)."""
        with self._lock:
            return [rec.id for rec in self._live.values() if rec.indexes == "building"]

    def get(self, upload_id: int) -> dict:
        with self._lock:
            live = self._live.get(upload_id)
            if live is None:  # ended, but its record is not written yet
                live = self._unwritten.get(upload_id)
            if live:
                live = live.model_copy(deep=True)
        if live:
            return self._present(live, self.versions.stored_ids(), self.versions.active())
        docs = self.store.upload_docs(upload_id)
        if not docs:
            raise GameLensError("not_found", f"There is no upload {upload_id}.", 404, param="id", value=upload_id)
        return self._present(UploadRecord.model_validate_json(docs[0]), self.versions.stored_ids(),
                             self.versions.active())

    @staticmethod
    def _present(rec: UploadRecord, stored: list[int], active: int | None) -> dict:
        """The record as the API shows it: without its hidden fields (UploadRecord.HIDDEN), with whether
        its data is kept, and whether the pointer names it."""
        shown = rec.model_dump(mode="json", exclude=set(UploadRecord.HIDDEN))
        shown["active"] = rec.id == active
        shown["stored"] = rec.id in stored
        return shown

    @staticmethod
    def states() -> dict[str, list[str]]:
        """The states an upload goes through, published once (GET /api/v1/uploads) for the CLI and page."""
        return {"running": list(RUNNING), "final": list(FINAL)}

    # submitting and waiting

    def submit(self, url: str, created_by: str | None = None, max_rejected_rows: int | None = None,
               activate: bool = True) -> dict:
        """Queue a link for loading (checked now, and again at every connection when it runs); with
        `activate` false its data is kept, not served (records.UploadRecord.activate)."""
        download.check_url(url, self.settings.allow_private_urls)
        return self._queue_record({"source": "link", "url": url, "activate": activate}, created_by, max_rejected_rows)

    def submit_file(self, path: Path, name: str, source: str, created_by: str | None = None,
                    max_rejected_rows: int | None = None, activate: bool = True) -> dict:
        """Queue a local file: `file` (sent in a request; removed once loaded), `sample` (the one shipped
        in the package) or `path` (a file the CLI names; left where it is)."""
        origin = {"source": source, "url": name, "path": str(path), "activate": activate}
        return self._queue_record(origin, created_by, max_rejected_rows)

    def check_keep(self, activate: bool) -> None:
        """An upload kept without being served needs room beside the version served: with one version kept
        (GAMELENS_KEEP_VERSIONS=1) it would be dropped as soon as it is stored."""
        if not activate and self.settings.keep_versions < 2:
            raise GameLensError("cannot_keep", "This server keeps one version (GAMELENS_KEEP_VERSIONS=1): an "
                                "upload loaded with activate=false would be dropped at once. Load it served, or "
                                "raise GAMELENS_KEEP_VERSIONS.", 409, param="activate", value=False, allowed=[True])

    def _queue_record(self, origin: dict, created_by: str | None, max_rejected_rows: int | None) -> dict:
        self.check_keep(origin.get("activate", True))
        if self.stopping():  # it could not run: say so now, and keep no record of it
            raise shutting_down("The server is shutting down and takes no new upload: send it again once the "
                                "server is back.")
        upload_id = self.store.claim_upload_id()  # unique across threads and processes (see store.py)
        rec = UploadRecord(id=upload_id, **origin, state="queued", created_by=created_by,
                           created_at=self.store.now(), max_rejected_rows=self._tolerance(max_rejected_rows))
        self._save(rec, self.store)
        with self._lock:
            self._live[rec.id] = rec
            self._done[rec.id] = threading.Event()
        self._queue.put(rec.id)
        return self._present(rec, [], None)

    def _tolerance(self, requested: int | None) -> int:
        return self.settings.max_rejected_rows if requested is None else requested

    def wait(self, upload_id: int, timeout: float = math.inf) -> dict:
        """The upload's record once it ended, after `timeout` seconds, or when the grace of a stop that
        began ends (then it may still be running). It holds its thread: the API waits with `waits_on`."""
        event = self._done.get(upload_id)
        deadline = time.monotonic() + timeout
        while event is not None and self.waits_on(upload_id, deadline):
            event.wait(LEAVING_POLL_S)
        return self.get(upload_id)

    def when_ended(self, upload_id: int, callback: Callable[[], None]) -> None:
        """Call `callback` once the upload ended here (its data served, or failed), from the worker's thread;
        at once if it has ended, or does not run here. For a waiter without a thread of its own (the API)."""
        with self._lock:
            event = self._done.get(upload_id)
            if event is not None and not event.is_set():
                self._enders.setdefault(upload_id, []).append(callback)
                return
        callback()

    def _end(self, upload_id: int) -> None:
        """The upload ended: wake whoever waits for it (the event, then the callbacks, each once)."""
        with self._lock:
            self._done[upload_id].set()
            callbacks = self._enders.pop(upload_id, [])
        for callback in callbacks:
            try:
                callback()
            except RuntimeError:  # a waiter's event loop already closed (the server stopping): nobody to wake
                log.debug("a waiter of upload %s could not be woken", upload_id, exc_info=True)

    def waits_on(self, upload_id: int, deadline: float = math.inf) -> bool:
        """Whether a client waiting for this upload waits on: it has not ended here, and neither `deadline`
        (time.monotonic()) nor the grace of a stop that began has passed."""
        event = self._done.get(upload_id)
        if event is None or event.is_set():
            return False
        return time.monotonic() < min(deadline, self._grace_ends())

    # the worker

    def _resume_indexes(self) -> None:
        """Indexes a stop interrupted (or an upgrade left to build) are built (the statements are idempotent),
        and those whose build failed are tried again (a disk with no room then may have some now, helper-67);
        then versions without their sort ranks get them."""
        stored = set(self.versions.stored_ids(self.worker))
        for rec in self._known_records():
            if self._cut.is_set():  # a stop's grace is over: the next start goes on
                return
            if rec.indexes in ("building", "failed") and rec.id in stored:
                self._index(rec)
        try:
            self.versions.rank_and_pack(self._cut.is_set)
        except GameLensError as exc:
            if not self.worker.was_cancelled(exc):
                raise
            log.warning("the stop cut a sort rank's, the packed fields' or the element bitmaps' build; the next "
                        "start builds it")

    def _janitor_interval(self) -> float:
        """How often the idle worker looks for replaced versions whose time has come."""
        return min(60.0, max(0.5, self.settings.version_grace_s / 4))

    def _idle_wait(self) -> float:
        """How long the idle worker waits for an upload before its chores: sooner while a record waits."""
        if self._unwritten:
            return RECORD_RETRY_S
        return self._janitor_interval()

    def _tidy(self) -> None:
        try:
            self._write_unwritten()
            self.versions.prune(self.settings.keep_versions)
        except Exception:  # the worker must survive anything; the next round tries again
            log.exception("the idle worker's chores failed")

    def _run(self) -> None:
        try:
            self._resume_indexes()
        except Exception:  # the worker must survive anything
            log.exception("resuming index builds failed")
        while True:
            try:
                upload_id = self._queue.get(timeout=self._idle_wait())
            except queue.Empty:
                self._tidy()
                continue
            if upload_id is None:
                return
            try:
                if self.stopping():  # a queued upload does not start once a stop began
                    self._interrupt(self._live[upload_id], SHUT_DOWN)
                    break
                if not self.may_write():  # another writer took over: leave the upload to no one, visibly
                    self._interrupt(self._live[upload_id], NOT_THE_WRITER)
                    continue
                self._process(self._live[upload_id])
            except Exception:  # the worker must survive anything one upload does
                log.exception("upload %s crashed the worker step", upload_id)
            finally:
                with self._lock:
                    rec = self._live.pop(upload_id, None)
                try:
                    _remove_sent_file(rec)  # one that never ran (another writer; at a stop, the first queued) too
                finally:
                    self._end(upload_id)  # a request waiting on it is answered whatever happened to the file
                    with self._lock:
                        self._done.pop(upload_id)

    def _set(self, rec: UploadRecord, persist: bool = True, **changes: Any) -> None:
        if not persist:  # progress: kept in memory, and no wait behind a record's write
            self._change(rec, changes)
            return
        with self._record_lock:
            self._change(rec, changes)
            if rec.running:  # a running upload whose record cannot be written fails, and says so
                self._save(rec)
                return
            self._save_ended(rec)

    def _change(self, rec: UploadRecord, changes: dict[str, Any]) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(rec, name, value)

    def _save_ended(self, rec: UploadRecord) -> None:
        """Write how an upload ended. If the database refuses (a full disk), the record waits in memory
        for the idle worker (_write_unwritten): the upload still ends, and this process shows how."""
        refused = self._write_ended(rec)
        if refused is not None:
            log.warning("the record of upload %s (%s) could not be written, kept to write later: %s",
                        rec.id, rec.state, refused.message)

    def _write_unwritten(self) -> None:
        """Try again to write the records the database refused; one refused again waits for the next try
        (its first refusal was logged). Not once another process is the writer: its start-up has
        completed them (recover), and they are dropped here (this process then shows the database's)."""
        if not self.may_write():
            with self._lock:
                left = sorted(self._unwritten)
                self._unwritten.clear()
            if left:
                log.warning("records of uploads %s were not written here: another writer took over", left)
            return
        with self._lock:
            waiting = list(self._unwritten.values())
        for rec in waiting:
            if self._write_ended(rec) is None:
                log.info("the record of upload %s (%s) is written", rec.id, rec.state)

    def _write_ended(self, rec: UploadRecord) -> GameLensError | None:
        """Write an ended upload's record; kept among the unwritten ones while the database refuses it."""
        try:
            self._save(rec)
        except GameLensError as exc:
            with self._lock:
                self._unwritten[rec.id] = rec
            return exc
        with self._lock:
            self._unwritten.pop(rec.id, None)
        return None

    def _read(self, rec: UploadRecord) -> load.LoadResult:
        """Say the upload began, then stream its bytes into its staging table. A file a request sent is
        removed once read, whatever happened, even if the record of the start was refused."""
        try:
            self._set(rec, state="downloading", started_at=self._now())
            if rec.source == "link":  # sent_as: the request's field its data's errors name
                opened, sent_as = download.open_url(rec.url, self.settings, self._progress(rec), stop=self._cut), "url"
            else:
                opened, sent_as = download.open_file(rec.path, self.settings, self._progress(rec)), "file"
            with opened as stream:
                try:
                    return load.load(self.worker, rec.id, self._then_loading(rec, stream), rec.max_rejected_rows,
                                     self.settings.load_max_memory_mb, sent_as)
                finally:  # a load refused for its rows names the file too, once every byte of it arrived
                    if stream.complete:
                        self._set(rec, False, sha256=stream.sha256)
        finally:
            _remove_sent_file(rec)

    def _process(self, rec: UploadRecord) -> None:
        t0 = time.monotonic()
        result = None
        try:
            result = self._read(rec)
            t1 = time.monotonic()
            if rec.state == "interrupted":  # shutdown gave up on it while it loaded: never switch to it
                self.versions.discard(rec.id)
                return
            if not self.may_write():  # another writer took over while it loaded: the data is not ours to switch
                self.versions.discard(rec.id)
                self._interrupt(rec, NOT_THE_WRITER)
                return
            result.warnings += self.versions.publish(rec.id, self.settings.keep_versions, self.before_switch,
                                                     rec.activate)
            timings = {**rec.timings_ms, "load": round((t1 - t0) * 1000),
                       "swap": round((time.monotonic() - t1) * 1000)}
            self._succeeded(rec, result, timings)
        except Exception as exc:
            self._after_error(rec, exc, result)
        finally:
            UPLOADS.labels(rec.state).inc()
            UPLOAD_SECONDS.observe(time.monotonic() - t0)
        if self._cut.is_set():  # the stop is closing the engine: no statement starts now
            return
        self._release_memory(rec)
        if rec.state == "succeeded":  # when a stop cut it, the next start builds them
            self._index(rec)

    def _release_memory(self, rec: UploadRecord) -> None:
        """Hand back what the load freed (~90 MB after a 500 MB load) before the index build, once the
        upload is served or has ended: the purge takes ~11 ms, which a waiting client no longer waits
        for (`python bench/timeline.py 50 2`). A refusal only leaves the memory with the allocator."""
        try:
            self.worker.release_memory()
        except GameLensError as exc:
            log.warning("handing back the memory of upload %s failed: %s", rec.id, exc.message)

    def _succeeded(self, rec: UploadRecord, result: load.LoadResult, timings: dict) -> None:
        self._set(rec, state="succeeded", finished_at=self._now(), rows_loaded=result.rows,
                  rows_rejected=result.rejected, rejected_rows=result.rejected_rows, warnings=result.warnings,
                  timings_ms=timings, stored_bytes=result.stored_bytes, error=None, indexes="building")
        UPLOAD_ROWS.inc(result.rows)
        self._end(rec.id)  # the data is served: a waiting client need not wait for the indexes

    def _index(self, rec: UploadRecord) -> None:
        """Give the new version its final layout (one part, with indexes) while it is already served;
        the record says when it is ready (a failure only leaves queries slower: answers are exact)."""
        t0 = time.monotonic()
        try:
            state = self.versions.finish(rec.id)
        except GameLensError as exc:
            if self.worker.was_cancelled(exc):  # a stop cut it: the record says building; the next start goes on
                log.warning("the stop cut the finishing of upload %s; the next start completes it", rec.id)
                return
            log.warning("building the indexes of upload %s failed: %s", rec.id, exc.message)
            state = "failed"
        took = round((time.monotonic() - t0) * 1000)
        self._set(rec, indexes=state, timings_ms={**rec.timings_ms, "indexes": took})

    def _after_error(self, rec: UploadRecord, exc: Exception, result: load.LoadResult | None) -> None:
        """Tell the truth: if the switch to this upload's data happened (the pointer says so), it
        succeeded, with a warning; otherwise it failed and what it built goes. When the pointer cannot
        be read, nothing is dropped (the next start reconciles)."""
        err = exc if isinstance(exc, GameLensError) else GameLensError(
            "internal", f"The upload failed unexpectedly: {type(exc).__name__}", 500)
        if not isinstance(exc, GameLensError):
            log.exception("upload %s failed", rec.id)
        try:
            switched = self.versions.active(fresh=True, engine=self.worker) == rec.id
            if not switched:
                self.versions.discard(rec.id)
        except GameLensError:
            log.warning("upload %s: cannot tell whether it was switched in; the next start reconciles", rec.id)
            switched = False
        if rec.state == "interrupted" and not switched:  # the shutdown cut it: its record says so already
            return
        if switched and result is not None:
            result.warnings.append(f"A step after the switch failed ({err.code}: {err.message}); the new data is "
                                   "served and the rest is repaired at the next upload or restart.")
            self._succeeded(rec, result, rec.timings_ms)
            return
        rejected = {}
        if isinstance(err, load.RejectedRows):  # how many rows, and the first of them
            rejected = {"rows_rejected": err.count, "rejected_rows": err.value}
        self._set(rec, state="failed", finished_at=self._now(), error=err.body()["error"], **rejected)

    def _progress(self, rec: UploadRecord):
        return lambda n, total: self._set(rec, False, bytes_received=n, bytes_expected=total)

    def _then_loading(self, rec: UploadRecord, stream: download.Stream):
        """Pass the bytes on; once the last has arrived, the database is finishing: `loading`."""
        t0 = time.monotonic()
        for block in stream:
            if self._cut.is_set():  # the grace is over (a link's connection is shut too: download.open_url)
                raise GameLensError("interrupted", "The server shut down during this upload.", 503)
            yield block
        self._set(rec, state="loading", timings_ms={"download": round((time.monotonic() - t0) * 1000)})


def _remove_sent_file(rec: UploadRecord | None) -> None:
    """A file a request sent is the upload's own copy: it goes once read or given up (the sample and the
    CLI's paths are left where they are)."""
    if rec is None or rec.source != "file":
        return
    try:
        Path(rec.path).unlink(missing_ok=True)
    except OSError:  # the worker must survive it; the file is left for the next start's sweep
        log.exception("the sent file of upload %s could not be removed", rec.id)
