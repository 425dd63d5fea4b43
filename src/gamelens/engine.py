"""The only module that talks to ClickHouse: connections, limits, errors. It writes no statement of
its own: users' queries come from query/, every other statement from store.py.

Two transports behind one small interface (run a statement, spool a result, stream an INSERT body):
- ChdbTransport: the embedded engine (chDB) in this process, persisting under GAMELENS_DATA_DIR;
- ConnectTransport: clickhouse-connect, to a ClickHouse server (http[s]://) or, with a chdb:// URL,
  to the same embedded engine through clickhouse-connect's chdb backend (used to test that path).

Both speak the same SQL and the same output formats, so callers never know which one runs.
Values are always bound as ClickHouse query parameters ({name:Type}); identifiers come from code.

chDB facts designed around (each has a regression test in tests/test_engine.py):
- one engine per process and data directory, so the service runs one worker process;
- a chDB connection runs one statement at a time, so reads use a small pool of connections;
- after a statement raises, the next one on that connection may return the failed one's partial
  output, so a connection that raised is closed and replaced, never reused;
- the engine stops when its last connection closes, and the next one starts it again (loading every
  table, its caches empty), so an in-process Engine holds one idle connection until close();
- EXCHANGE TABLES needs an Atomic database and chDB's `default` is not one: store.py creates ours.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import queue
import re
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from clickhouse_connect.driver.binding import format_bind_value

from .errors import EngineError, GameLensError
from .observe import ENGINE_ERRORS
from .schema import sql_text
from .settings import Settings

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")


def ident(name: str) -> str:
    """Quote an identifier that comes from code or the schema (never from a request)."""
    if not _IDENT.match(name):
        raise ValueError(f"not an identifier: {name!r}")
    return f"`{name}`"


def _ch_params(params: dict[str, Any] | None) -> dict[str, str]:
    # ClickHouse's text form of a query parameter (as sent over HTTP as param_<name>).
    return {k: format_bind_value(v) for k, v in (params or {}).items()}


def _server_binds(sql: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters `sql` names as `{name:Type}`. clickhouse-connect binds on the client, with
    Python's `%`, when a statement names none of the parameters it is given, and a literal `%` in the
    SQL (formatDateTime's '%Y-%m') then fails; given only what it names, it binds on the server or not at all."""
    return {k: v for k, v in (params or {}).items() if "{" + k + ":" in sql}


# --- transports ----------------------------------------------------------------------------------


@contextmanager
def _stderr_to_log():
    """chDB's engine writes start-up failures (e.g. "Code: 76 ... Cannot lock file") straight to file
    descriptor 2: keep them off the user's terminal and in the log, where our own message explains."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("chDB while opening: %s", text)


class ChdbTransport:
    def __init__(self, path: str, outgoing: Path, tag: str):
        import chdb  # imported here: only this module may touch the driver

        self._outgoing = outgoing
        try:
            with _stderr_to_log():
                self._conn = chdb.connect(path)
        except RuntimeError:  # chDB says only "Error initializing EmbeddedServer" (or its raw lock error)
            raise GameLensError(
                "data_dir_in_use", f"Cannot open the embedded database at {path}: another process (or another "
                "data directory in this process) holds it; one GameLens process per data directory.",
                503) from None
        try:
            self.command(f"SET log_comment = {sql_text(tag)}", None)  # for the session's statements (Engine.tag)
        except BaseException:
            # Closed here, not when the garbage collector frees it: whatever keeps the failure (its traceback,
            # a log record) keeps this object, and an open connection keeps the embedded engine running.
            self._conn.close()
            raise

    def run(self, sql: str, params: dict[str, Any] | None, fmt: str) -> bytes:
        return self._conn.query(sql, fmt, params=_ch_params(params)).bytes()

    def command(self, sql: str, params: dict[str, Any] | None) -> None:
        self._conn.query(sql, "TabSeparated", params=_ch_params(params))

    def spool(self, sql: str, params: dict[str, Any] | None, fmt: str, out) -> None:
        if fmt == "Parquet":
            self._parquet(sql, params, out)
            return
        chunks = self._stream(sql, params, fmt)
        try:
            _copy(chunks, out)
        finally:  # a write refused (a spool cap) ends the result here, on the thread that holds the connection
            chunks.close()

    def _stream(self, sql: str, params: dict[str, Any] | None, fmt: str) -> Iterator[bytes]:
        if fmt.endswith("WithNames"):
            yield from _one_header(self._blocks(sql, params, fmt))
        else:
            yield from self._blocks(sql, params, fmt)

    def _parquet(self, sql: str, params: dict[str, Any] | None, out) -> None:
        """chDB streams Parquet as one whole file per block; a client expects one file. The engine writes
        the result into one file of its own (row groups as the format's settings say: query/formats.py),
        which becomes the export's spool file (`out.adopt`: counted in its disk allowance then, not copied).
        Its name goes at once; a stop's leftovers go at the next start."""
        self._outgoing.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self._outgoing, suffix=".parquet")
        os.close(handle)
        try:
            self.command(f"{sql} INTO OUTFILE {sql_text(name)} TRUNCATE FORMAT Parquet", params)
            _check_parquet(name)
            out.adopt(name)
        finally:
            os.unlink(name)

    def _blocks(self, sql: str, params: dict[str, Any] | None, fmt: str) -> Iterator[bytes]:
        """The result as chDB streams it, block by block. For no rows chDB streams nothing at all, not even
        a CSV header or a Parquet schema: the statement is then run whole (its result is empty)."""
        result = self._conn.send_query(sql, fmt, params=_ch_params(params))
        blocks = 0
        try:
            for chunk in result:
                blocks += 1
                yield chunk.bytes()
        finally:
            result.close()
        if not blocks:
            yield self.run(sql, params, fmt)

    def insert_stream(self, table: str, columns: list[str], source, fmt: str, settings: dict) -> None:
        raise NotImplementedError("the embedded engine reads files directly")

    def insert_select(self, statement: str, source, fmt: str, settings: dict) -> None:
        raise NotImplementedError("the embedded engine reads files directly")

    def close(self) -> None:
        self._conn.close()


class ConnectTransport:
    def __init__(self, url: str, database: str, tag: str):
        import clickhouse_connect

        # Over HTTP, no session: concurrent statements must not queue behind a session lock.
        extra = {} if url.startswith("chdb:") else {"autogenerate_session_id": False}
        self._client = clickhouse_connect.get_client(dsn=url, settings={"log_comment": tag}, **extra)

    def run(self, sql: str, params: dict[str, Any] | None, fmt: str) -> bytes:
        return self._client.raw_query(sql, parameters=_server_binds(sql, params), fmt=fmt)

    def command(self, sql: str, params: dict[str, Any] | None) -> None:
        self._client.command(sql, parameters=_server_binds(sql, params))

    def spool(self, sql: str, params: dict[str, Any] | None, fmt: str, out) -> None:
        with self._client.raw_stream(sql, parameters=_server_binds(sql, params), fmt=fmt) as chunks:
            _copy(chunks, out)

    def insert_stream(self, table: str, columns: list[str], source, fmt: str, settings: dict) -> None:
        self._client.raw_insert(table, columns, insert_block=source, fmt=fmt, settings=settings)

    def insert_select(self, statement: str, source, fmt: str, settings: dict) -> None:
        """`statement` (INSERT ... SELECT ... FROM input(...)) with `source`'s bytes streamed as its body.
        clickhouse-connect sends `INSERT INTO <table> FORMAT <fmt>`: the statement stands in for the
        table, and the body follows as with any raw insert (over HTTP only: see store.load_csv)."""
        self._client.raw_insert(statement.removeprefix("INSERT INTO "), None, insert_block=source, fmt=fmt,
                                settings=settings)

    def close(self) -> None:
        self._client.close()


def _one_header(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """chDB streams a format with a header row (CSVWithNames) as a whole output per block, each with
    its header: the header is kept once, from the first block (names are identifiers: one line)."""
    for i, block in enumerate(blocks):
        if i == 0:
            yield block
        else:
            yield block.split(b"\n", 1)[1]


def _copy(chunks: Iterable[bytes], out) -> None:
    for chunk in chunks:
        out.write(chunk)


def _check_parquet(path: str) -> None:
    """The engine does not report a failed write of INTO OUTFILE (a full disk, a file size limit): it
    leaves a short file. A whole Parquet file starts and ends with PAR1, and its last 8 bytes give the
    length of the footer before them."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(size - 8, 0))
        tail = f.read(8)
    whole = size >= 12 and head == b"PAR1" and tail[4:] == b"PAR1"
    if not whole or int.from_bytes(tail[:4], "little") + 12 > size:
        raise GameLensError("export_failed", "The export could not be written (the server's disk may be full); "
                            "try again shortly.", 503)


def _open_pipe_writer(path: Path, reader: threading.Thread) -> int | None:
    """Open the pipe for writing once the database has opened it for reading (None if it never will)."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if not reader.is_alive():
                return None
            reader.join(0.005)
            continue
        os.set_blocking(fd, True)
        with contextlib.suppress(OSError):  # a larger pipe buffer: fewer context switches (Linux)
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        return fd


def _write_all(fd: int, chunks: Iterable[bytes]) -> None:
    with os.fdopen(fd, "wb", buffering=0) as pipe:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[pipe.write(view):]


# --- engine --------------------------------------------------------------------------------------


@dataclass
class Result:
    columns: list[str]
    rows: list[list[Any]]
    stats: dict = field(default_factory=dict)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


# ClickHouse error codes we branch on (src/Common/ErrorCodes.cpp), kept together here: callers
# compare against these names, never against message text.
CANNOT_PARSE_TEXT = 6
BAD_ARGUMENTS = 36
CANNOT_PARSE_QUOTED_STRING = 26
CANNOT_PARSE_INPUT_ASSERTION_FAILED = 27
CANNOT_PARSE_DATE = 38
CANNOT_PARSE_NUMBER = 72
TABLE_ALREADY_EXISTS = 57
UNKNOWN_TABLE = 60
INCORRECT_QUERY = 80
INCORRECT_DATA = 117
TOO_MANY_ROWS = 158
TIMEOUT_EXCEEDED = 159
TOO_SLOW = 160
MEMORY_LIMIT_EXCEEDED = 241
NOT_ENOUGH_SPACE = 243
UNFINISHED = 341
SUPPORT_IS_DISABLED = 344
QUERY_WAS_CANCELLED = 394
TOO_MANY_ROWS_OR_BYTES = 396
# A CSV that does not fit the declared structure fails its load with one of these.
CSV_PARSE_ERRORS = frozenset({CANNOT_PARSE_TEXT, CANNOT_PARSE_QUOTED_STRING, CANNOT_PARSE_INPUT_ASSERTION_FAILED,
                              CANNOT_PARSE_DATE, CANNOT_PARSE_NUMBER, INCORRECT_DATA})

# A server without the text indexes the load declares refuses ADD INDEX with one of these: an unknown
# index type (INCORRECT_QUERY), arguments it does not know (BAD_ARGUMENTS), an experimental feature
# switched off (SUPPORT_IS_DISABLED).
INDEXES_UNSUPPORTED = frozenset({BAD_ARGUMENTS, INCORRECT_QUERY, SUPPORT_IS_DISABLED})

# A statement that Engine.cancel_statements stopped ends with one of these: a mutation's wait (KILL
# MUTATION), any other statement (KILL QUERY). UNFINISHED also says that a mutation failed: only after
# a cancel does it mean one (Engine.was_cancelled).
CANCELLED = frozenset({UNFINISHED, QUERY_WAS_CANCELLED})
# How long a stop waits for cancelled statements (or the upload worker running them) to end: a cancelled
# statement ends at its next check (the merge of a 500 MB version took 2-2.5 s to end, by hand), so this
# bounds only a hang.
CANCELLED_WAIT_S = 30.0

# Limits a client can hit with a legal request, and how they are reported.
_LIMIT_ERRORS = {
    TIMEOUT_EXCEEDED: ("query_timeout", "The query took longer than the server allows; narrow the filters.", 503),
    TOO_SLOW: ("query_timeout", "The query would take longer than the server allows.", 503),
    MEMORY_LIMIT_EXCEEDED: ("query_too_large", "The query needed more memory than the server allows.", 503),
    TOO_MANY_ROWS_OR_BYTES: ("result_too_large", "The query would return more rows than the server allows.", 400),
    TOO_MANY_ROWS: ("result_too_large", "The query would read or group more rows than the server allows.", 400),
}
_CODE = re.compile(r"Code: (\d+)\.")

# JSON output that maps cleanly onto Python values: numbers as numbers, NaN never appears.
JSON_SETTINGS = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
    "output_format_json_named_tuples_as_objects": 1,
}


def engine_error(exc: Exception) -> EngineError | GameLensError:
    """The driver's exception as our error. The engine's own text goes to the log (with the request
    id), never to the client: it can name tables, settings and internals."""
    text = str(exc)
    m = _CODE.search(text)
    code = int(m.group(1)) if m else None
    ENGINE_ERRORS.labels(str(code)).inc()
    if code in _LIMIT_ERRORS:
        err_code, message, status = _LIMIT_ERRORS[code]
        return GameLensError(err_code, message, status)
    log.warning("engine error %s: %s", code, text.split("\n", 1)[0][:2000])
    if code == NOT_ENOUGH_SPACE:  # the server's own state, but one its operator must hear named
        return GameLensError("insufficient_storage", "The database's disk is full; try again once it has room.", 507)
    return EngineError(text.split("\n", 1)[0][:2000], code)


# Settings that make reads faster without changing answers.
READ_TUNING = {
    # Substrings of 2 and 3 letters (`vr`, `rpg`) are found in the text index's dictionary too; the
    # engine's default, 4, scanned every description: counting `about_the_game=vr` at 500 MB took 160 ms
    # by the scan, 11 ms so [bench/query.py line "description: 2 letters"]. 1 letter stays a scan:
    # its dictionary scan gives up past 50 postings, and then costs more than the scan alone.
    "text_index_like_min_pattern_length": 2,
}
# A needle's scan of every description (filters.Condition.scans; query/rows.py) maps the files it reads,
# 8 MB or more in all, instead of copying them out of the page cache: at 500 MB such needles run 10-26%
# faster [bench/query.py, the "description: ..." lines; docs/measured.md, thirtieth pass]. Only those
# statements: a mapped file's pages count in the process's RSS while it is mapped, and with every read
# mapped, a load's checks and the warm-up of its first views kept its parts mapped until the merge's parts
# were gone (+384 / +589 MB loading / finishing 500 MB against +208 / +286, bench/ingest.py 500; sorted
# pages were 8-16% faster so). The engine's cache keeps a file mapped, and so its disk space taken, after
# its table is dropped: Store.drop unmaps (Engine.unmap_files); the parts a merge replaces it unmaps
# itself as it removes them (helper-62). A server's reads keep its own settings.
MAPPED_READS = {"local_filesystem_read_method": "mmap", "min_bytes_to_use_mmap_io": 8 << 20}


def settings_clause(settings: dict[str, Any]) -> str:
    """Render engine-chosen settings (names and values from code, never from a request)."""
    return _settings_clause(tuple(settings.items()))


@functools.lru_cache(maxsize=256)  # the same few combinations, on every read
def _settings_clause(settings: tuple[tuple[str, Any], ...]) -> str:
    parts = []
    for k, v in settings:
        if not re.fullmatch(r"[a-z_0-9]+", k):
            raise ValueError(k)
        parts.append(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {int(v)}")
    return " SETTINGS " + ", ".join(parts) if parts else ""


# The upload worker's own connections: the load's INSERT holds one while the worker thread feeds
# the pipe and saves the upload's progress on the other.
WORKER_CONNECTIONS = 2


class Engine:
    """One pool of connections and the statements that run on them.

    The app makes two: one for requests (GAMELENS_QUERY_POOL_SIZE connections) and one reserved
    for the upload worker (WORKER_CONNECTIONS), so readers can never make an upload wait or fail busy.
    """

    def __init__(self, settings: Settings, pool_size: int | None = None):
        self.settings = settings
        self.db = settings.database
        self.pool_size = pool_size or settings.query_pool_size
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._lent = 0  # connections taken from the pool and not yet given back: statements in flight
        self._given_back = threading.Condition(self._lock)
        # In every statement's `log_comment` (the transports set it): a cancel ends this engine's statements
        # only, not another's in this process (the upload worker has its own; tests run several apps).
        self.tag = f"gamelens-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._anchor = None  # in process: an idle connection that keeps the engine running (_hold)
        # Limits a request cannot lift: appended by the engine to every read statement.
        self.read_settings = {
            "max_execution_time": settings.query_limit_s,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": settings.query_max_memory_mb * 1024 * 1024,
            "max_result_rows": settings.query_max_rows,
            "result_overflow_mode": "throw",
            "max_rows_to_group_by": settings.query_max_rows,
            "group_by_overflow_mode": "throw",
            "use_query_condition_cache": int(settings.query_condition_cache),
            "readonly": 2,  # 2: reads only; settings above stay as set here
        }
        self._tuning: dict[str, Any] | None = None  # READ_TUNING as far as the engine knows it
        self._cancelled = False  # cancel_statements ran: a stop's (was_cancelled)
        self._jemalloc: bool | None = None  # whether the engine in this process can purge (see release_memory)
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # the engine's files, and load pipes
        self.incoming = Path(settings.data_dir) / "incoming"  # load pipes and files sent in requests
        self.outgoing = Path(settings.data_dir) / "outgoing"  # Parquet files the embedded engine writes
        # The engine runs in this process (chDB, directly or through clickhouse-connect's chdb://),
        # so it can read a local named pipe; a server cannot.
        url = settings.clickhouse_url
        self.in_process = url is None or url.startswith("chdb:")
        self.mapped_reads = dict(MAPPED_READS) if self.in_process else {}  # the settings of a scan (above)

    # connections

    def _open(self):
        s = self.settings
        if s.clickhouse_url:
            return ConnectTransport(s.clickhouse_url, self.db, self.tag)
        return ChdbTransport(str(s.data_dir.resolve()), self.outgoing, self.tag)

    @contextmanager
    def connection(self):
        """A pooled connection. One that raised is closed and replaced (see module doc); the
        driver's exceptions leave as GameLensError, so no caller sees chdb or clickhouse_connect."""
        conn = self._take()
        self._lend(1)
        try:
            yield conn
        except GameLensError:
            self._discard(conn)
            raise
        except Exception as exc:
            self._discard(conn)
            raise engine_error(exc) from exc
        except BaseException:  # e.g. a closed export stream: the connection may hold a half-read result
            self._discard(conn)
            raise
        else:
            self._pool.put(conn)
        finally:
            self._lend(-1)

    def _lend(self, n: int) -> None:
        with self._lock:
            self._lent += n
            self._given_back.notify_all()

    def _take(self):
        self._hold()
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self.pool_size:
                self._created += 1
                try:
                    return self._opened()
                except GameLensError:
                    self._created -= 1
                    raise
        try:
            return self._pool.get(timeout=self.settings.queue_timeout_s)
        except queue.Empty:
            raise GameLensError("busy", "The database is busy; try again shortly.", 503) from None

    def _opened(self):
        """_open, its failure (e.g. the server is unreachable) as a GameLensError."""
        try:
            return self._open()
        except GameLensError:
            raise
        except Exception as exc:
            raise engine_error(exc) from exc

    def _hold(self) -> None:
        """Open the in-process engine's anchor if it has none: also after a close() that a statement in
        flight outlived (its connection comes back to the pool). A connection that raised is closed (module
        doc): were it the only one open, every error would stop the engine and the next statement start it
        again (uptime back to 0: tests/test_engine.py)."""
        if not self.in_process or self._anchor is not None:
            return
        with self._lock:
            if self._anchor is None:
                self._anchor = self._opened()

    def _discard(self, conn) -> None:
        with self._lock:
            self._created -= 1
        try:
            conn.close()
        except Exception:  # a broken connection may fail to close; it is dropped either way
            log.debug("closing a failed connection raised", exc_info=True)

    def close(self) -> None:
        self.end_statements()
        while True:
            try:
                self._discard(self._pool.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            anchor, self._anchor = self._anchor, None
        if anchor is not None:  # the last connection: the engine stops here
            anchor.close()

    # statements

    def execute(self, sql: str, params: dict[str, Any] | None = None, settings: dict | None = None) -> None:
        """Run a statement on the write path (DDL, INSERT, bookkeeping)."""
        with self.connection() as conn:
            conn.command(sql + settings_clause(settings or {}), params)

    def select(self, sql: str, params: dict[str, Any] | None = None, *, readonly: bool = True,
               settings: dict | None = None) -> Result:
        # Caller settings first: the read-only limits come last and win.
        settings = {**JSON_SETTINGS, **(settings or {}), **(self._reads() if readonly else {})}
        with self.connection() as conn:
            raw = conn.run(sql + settings_clause(settings), params, "JSONCompact")
        doc = orjson.loads(raw) if raw.strip() else {"meta": [], "data": []}
        statistics = doc.get("statistics", {})
        return Result(
            [m["name"] for m in doc["meta"]],
            doc["data"],
            {"elapsed_ms": round(statistics.get("elapsed", 0) * 1000, 3),
             "rows_read": statistics.get("rows_read"),
             "rows_before_limit": doc.get("rows_before_limit_at_least")},
        )

    def cancel_statements(self) -> None:
        """Cancel the statements in flight and the unfinished mutations of this engine in this process: a
        stop's last step, for those that outlived its wait. chDB can crash the process when it closes under
        a running statement (tests/test_cli.py::test_a_stop_cancels_a_finishing_statement_that_outlives_it).
        On its own connection: the pool's may all be taken. A server's are left alone: closing a client
        does not harm it, and its statements may be other processes'."""
        if not self.in_process:
            return
        self._cancelled = True
        conn = self._opened()
        try:
            conn.command("KILL MUTATION WHERE database = {db:String} AND NOT is_done", {"db": self.db})
            conn.command("KILL QUERY WHERE Settings['log_comment'] = {tag:String} AND query_kind != 'KillQuery'",
                         {"tag": self.tag})  # not itself: its own connection carries the tag too
        except Exception as exc:
            raise engine_error(exc) from exc
        finally:
            conn.close()

    def end_statements(self) -> None:
        """Cancel the statements still running on this engine's connections, and wait for them (at most
        CANCELLED_WAIT_S): before the engine closes, a request that outlived the server's graceful timeout
        (`serve`'s stop) would otherwise hold the process until its statement ends (GAMELENS_QUERY_LIMIT_S),
        or crash it if the interpreter exits under it. Nothing to do when none runs (a CLI command's close)."""
        if not self.in_process or not self._lent:
            return
        log.warning("cancelling %s statement(s) still running at shutdown", self._lent)
        try:
            self.cancel_statements()
        except GameLensError as exc:
            log.error("cancelling the statements in flight failed (%s)", exc.code)
            return
        with self._lock:
            if not self._given_back.wait_for(lambda: self._lent == 0, CANCELLED_WAIT_S):
                log.error("%s statement(s) did not end within %s s of their cancel; closing anyway", self._lent,
                          CANCELLED_WAIT_S)

    def was_cancelled(self, exc: BaseException) -> bool:
        """Whether a statement ended because cancel_statements stopped it (a stop, not a failure)."""
        return self._cancelled and isinstance(exc, EngineError) and exc.engine_code in CANCELLED

    def release_memory(self) -> None:
        """Hand the memory a load or an index build freed back to the system. The engine's allocator
        (jemalloc) keeps freed pages for reuse; in this process they count in its RSS (~90 MB after a
        500 MB load: bench/physical.py "finishing peak RSS"). A server manages its own memory: nothing."""
        if not self.in_process:
            return
        if self._jemalloc is None:
            self._jemalloc = bool(self.select("SELECT count() FROM system.build_options WHERE name = 'USE_JEMALLOC' "
                                              "AND value IN ('1', 'ON')", readonly=False).scalar())
        if self._jemalloc:
            self.execute("SYSTEM JEMALLOC PURGE")

    def _reads(self) -> dict[str, Any]:
        """The settings of every read: the limits, and READ_TUNING's settings that this engine has
        (asked once: a server of another release may not know them, and would refuse every read)."""
        if self._tuning is None:
            known = self.select("SELECT name FROM system.settings WHERE name IN {names:Array(String)}",
                                {"names": list(READ_TUNING)}, readonly=False).rows
            self._tuning = {name: READ_TUNING[name] for (name,) in known}
        return {**self._tuning, **self.read_settings}

    def unmap_files(self) -> None:
        """Close the files the engine in this process keeps mapped (MAPPED_READS): a dropped table's
        files keep their disk space while they are mapped. A server's reads map nothing of ours."""
        if self.mapped_reads:
            self.execute("SYSTEM DROP MMAP CACHE")

    def spool(self, sql: str, params: dict[str, Any] | None, fmt: str, out, settings: dict | None = None) -> None:
        """Write the whole result in `fmt` into `out` (a query/spool.Spool: write(bytes), or adopt(path) of a
        file the engine wrote whole).

        Exports are computed to the end before their first byte is sent: a client's reading speed then
        never holds a connection or a running query (whose time limit would cut the export), and an
        engine failure is still a proper error response. `settings` may only be the server's own
        export limits (rows, time)."""
        settings = {**JSON_SETTINGS, **self._reads(), **(settings or {})}
        with self.connection() as conn:
            conn.spool(sql + settings_clause(settings), params, fmt, out)

    def through_pipe(self, name: str, chunks: Iterable[bytes], statement) -> None:
        """Run `statement(pipe_path)` in a thread while writing `chunks` into that named pipe.

        An error of the source (a failed download) wins over the statement's: the pipe is closed
        early, the statement sees a short file, and the caller discards what it loaded.
        """
        self.incoming.mkdir(parents=True, exist_ok=True)
        path = self.incoming / f"{self.db}.{name}.pipe"
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        outcome: list[BaseException] = []

        def run():
            try:
                statement(str(path))
            except BaseException as exc:  # handed to the caller's thread
                outcome.append(exc)

        reader = threading.Thread(target=run, name=f"load-{name}", daemon=True)
        reader.start()
        try:
            fd = _open_pipe_writer(path, reader)
            if fd is not None:
                _write_all(fd, chunks)
        except BrokenPipeError:  # the statement stopped reading: its own error says why
            pass
        finally:
            reader.join()
            path.unlink(missing_ok=True)
        if outcome:
            raise outcome[0]
