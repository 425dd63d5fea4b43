"""Regression tests for the chDB facts the engine is designed around (see engine.py's docstring)."""

import contextlib
import subprocess
import sys
import threading
import time

import pytest

import gamelens.engine as engine_module
from gamelens.engine import UNFINISHED, Engine
from gamelens.errors import EngineError, GameLensError
from gamelens.store import Store

from .conftest import DATA_DIR, long_statement, make_settings
from .conftest import test_clickhouse_url as engine_url


@pytest.fixture
def engine():
    e = Engine(make_settings())
    Store(e).create_database()
    yield e
    e.close()


def test_failed_query_output_never_leaks_into_the_next(engine):
    # chDB can return the failed statement's partial output to the next query on that connection.
    with pytest.raises(GameLensError):
        engine.select("SELECT number, throwIf(number = 300000) FROM numbers(1000000) SETTINGS max_block_size = 1000",
                      readonly=False)
    for _ in range(engine.settings.query_pool_size + 2):
        assert engine.select("SELECT 42 AS x").rows == [[42]]


def test_a_statement_that_raises_leaves_the_engine_running(engine_unheld, engine):
    """The connection that raised is closed; were it the only one, chDB would stop the engine and start
    it again at the next statement (its tables loaded again, its caches empty): uptime says which."""
    engine.close()  # no connection of this engine open; none of another app in this test either
    engine.select("SELECT 1")
    time.sleep(1.1)
    with pytest.raises(GameLensError):
        engine.select("SELECT throwIf(1)", readonly=False)
    assert engine.select("SELECT uptime()").scalar() >= 1


def test_an_engine_closed_under_a_statement_holds_the_engine_again(engine_unheld, engine, monkeypatch):
    """close() while a statement runs that outlives the close's cancel and wait (here: not cancelled, a short
    wait): its connection comes back to the pool afterwards, and the engine must hold its idle connection
    again before it is used (helper-69)."""
    monkeypatch.setattr(engine, "cancel_statements", lambda: None)
    monkeypatch.setattr(engine_module, "CANCELLED_WAIT_S", 0.1)
    engine.close()
    reading = threading.Thread(target=engine.select, args=("SELECT sleep(1.5)",), kwargs={"readonly": False})
    reading.start()
    time.sleep(0.3)
    engine.close()
    reading.join()
    with pytest.raises(GameLensError):
        engine.select("SELECT throwIf(1)", readonly=False)
    assert engine.select("SELECT uptime()").scalar() >= 1


def test_exchange_needs_our_atomic_database(engine):
    engines = dict(engine.select("SELECT name, engine FROM system.databases").rows)
    assert engines[engine.db] == "Atomic"
    assert engines["default"] != "Atomic"  # why we create our own
    db = f"`{engine.db}`"
    engine.execute(f"CREATE TABLE {db}.a (x UInt8) ENGINE = MergeTree ORDER BY x")
    engine.execute(f"CREATE TABLE {db}.b (x UInt8) ENGINE = MergeTree ORDER BY x")
    engine.execute(f"INSERT INTO {db}.a VALUES (1)")
    engine.execute(f"EXCHANGE TABLES {db}.a AND {db}.b")
    assert engine.select(f"SELECT count() FROM {db}.b").scalar() == 1


def test_one_process_per_data_directory(engine):
    # While this process holds DATA_DIR open, another process gets a clear error, not chDB's bare one.
    assert Store(engine).ping()
    code = ("from gamelens.engine import Engine; from gamelens.settings import Settings;"
            "from gamelens.store import Store;"
            f"Store(Engine(Settings(data_dir={str(DATA_DIR)!r}))).ping()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "one GameLens process per data directory" in out.stderr


def test_reads_run_in_parallel_with_along_statement(engine):
    # One chDB connection runs one statement at a time; the pool lets a short read pass a long one.
    done = threading.Event()
    slow = Engine(make_settings(database=engine.db, query_timeout_s=3))  # the long one stops after 3 s

    def long():
        with contextlib.suppress(GameLensError):
            slow.select("SELECT count() FROM numbers(10000000000) WHERE sipHash64(number) % 7 = 1")
        done.set()

    threading.Thread(target=long, daemon=True).start()
    time.sleep(0.3)
    assert engine.select("SELECT 1").scalar() == 1
    assert not done.is_set()  # the short read did not wait for the long one
    assert done.wait(30)


def test_a_cancel_ends_a_statement_in_flight_and_is_told_from_a_failure(engine):
    """A stop's last step (Uploads._end_worker): the statement in flight ends at once, and was_cancelled says
    so. The code a killed mutation's wait ends with (UNFINISHED) is also a failed mutation's: before a
    cancel it stays a failure (a rank build that fails is abandoned, not left for the next start)."""
    assert not engine.was_cancelled(EngineError("a mutation failed", UNFINISHED))
    ended: list[BaseException] = []
    statement = long_statement(engine, ended)
    engine.cancel_statements()
    statement.join(20)
    assert not statement.is_alive() and len(ended) == 1 and engine.was_cancelled(ended[0]), ended
    assert engine.select("SELECT 1").scalar() == 1  # the engine serves on
    assert engine.was_cancelled(EngineError("a mutation's wait, killed", UNFINISHED))


def test_a_cancel_ends_only_its_own_engine_s_statements(engine):
    """The upload worker has an engine of its own beside the requests' (and tests run several apps in one
    process): a stop's cancel ends its own engine's statements, not another's (Engine.tag)."""
    other = Engine(engine.settings)
    ours, theirs = [], []
    mine, not_mine = long_statement(engine, ours), long_statement(other, theirs)
    try:
        engine.cancel_statements()
        mine.join(20)
        assert not mine.is_alive() and engine.was_cancelled(ours[0]), ours
        time.sleep(0.5)
        assert not_mine.is_alive() and theirs == []
    finally:
        other.cancel_statements()
        not_mine.join(20)
        other.close()
    assert not not_mine.is_alive() and other.was_cancelled(theirs[0]), theirs


def test_a_close_cancels_the_statements_still_running_and_waits_for_them(engine):
    """A request past the server's graceful timeout still runs its statement when the app closes the engine:
    the close cancels it and waits, instead of leaving it to hold the process (or to crash it as the
    interpreter exits under it)."""
    ended: list[BaseException] = []
    statement = long_statement(engine, ended)
    engine.close()
    statement.join(5)  # the connection came back before close returned; the thread then ends at once
    assert not statement.is_alive() and len(ended) == 1 and engine.was_cancelled(ended[0]), ended
    assert engine.select("SELECT 1").scalar() == 1  # a statement after a close opens the engine again


def test_read_path_is_read_only_and_limited(engine):
    with pytest.raises(GameLensError) as err:
        engine.select(f"CREATE TABLE `{engine.db}`.x (a UInt8) ENGINE = Memory")
    assert err.value.status == 503
    fast = Engine(make_settings(database=engine.db, query_timeout_s=1))
    with pytest.raises(GameLensError) as err:
        fast.select("SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 1")
    assert err.value.code == "query_timeout" and err.value.status == 503
    small = Engine(make_settings(database=engine.db, query_max_rows=10))
    with pytest.raises(GameLensError) as err:
        small.select("SELECT number FROM numbers(100)")
    assert err.value.code == "result_too_large" and err.value.status == 400


def test_values_are_bound_never_formatted(engine):
    hostile = "x' OR 1=1 --\t\\ \n%_"
    assert engine.select("SELECT {v:String}", {"v": hostile}).scalar() == hostile
    assert engine.select("SELECT {v:Array(String)}", {"v": [hostile, "b"]}).scalar() == [hostile, "b"]


def _mapped(uuid: str) -> list[str]:
    with open("/proc/self/maps") as maps:
        return [line.split()[-1] for line in maps if uuid in line]


def test_a_dropped_tables_mapped_files_are_unmapped(engine):
    """Scans map the files they read (engine.MAPPED_READS: from 8 MB; here from 1 byte, so this small
    table's file is mapped); dropping the table must unmap them, or its disk space stays taken."""
    if not engine.in_process:  # a server's own reads: GameLens asks it to map nothing
        assert engine.mapped_reads == {}
        return
    engine.mapped_reads["min_bytes_to_use_mmap_io"] = 1
    db = f"`{engine.db}`"
    engine.execute(f"CREATE TABLE {db}.m (s String) ENGINE = MergeTree ORDER BY tuple()")
    engine.execute(f"INSERT INTO {db}.m SELECT repeat('x', 1000) FROM numbers(20000)")
    uuid = engine.select("SELECT toString(uuid) FROM system.tables WHERE database = {db:String} AND name = 'm'",
                         {"db": engine.db}).scalar()
    assert engine.select(f"SELECT count() FROM {db}.m WHERE s LIKE '%y%'", settings=engine.mapped_reads).scalar() == 0
    assert any(path.endswith("/s.bin") for path in _mapped(uuid))
    Store(engine).drop("m")
    assert _mapped(uuid) == []



def test_only_a_needles_scan_maps_the_files_it_reads(make_client, files):
    """Reads are copied out of the page cache but for the scans of needles the text index cannot take
    whole (query/rows.py _scan): mapped files count in RSS, and a load's checks and warm-up mapped its parts."""
    from .conftest import upload

    client = make_client()
    engine = client.app.state.engine
    if not engine.in_process:  # a server's own reads: GameLens asks it to map nothing
        assert engine.mapped_reads == {}
        return
    engine.mapped_reads["min_bytes_to_use_mmap_io"] = 1
    rec = upload(client, files.url("sample.csv"))
    uuid = Store(engine).version_table(f"games_v{rec['id']}")[0]
    engine.unmap_files()
    for path in ("/api/v1/games?name=a", "/api/v1/games?about_the_game=zombie&sort=-positive",
                 "/api/v1/games/summary", "/api/v1/games/aggregate?group_by=tags"):
        assert client.get(path).status_code == 200
        assert _mapped(uuid) == [], path
    body = client.get("/api/v1/games?about_the_game=co-op").json()
    assert body["total"] > 0 and _mapped(uuid), body
    engine.unmap_files()


@pytest.mark.skipif(engine_url() is not None, reason="ChdbTransport's: a server's connections hold nothing of it")
def test_a_connection_whose_session_setting_failed_is_closed(engine_unheld, engine, monkeypatch):
    """ChdbTransport sets its session's log_comment as it opens; if that fails, the connection it just
    opened is closed, not left holding the embedded engine: with no other connection open, the engine
    stops, and the next statement starts it again (uptime says which). The failed transport is kept
    alive here, as a traceback or a log record may keep it: freed at once, chDB would close it anyway."""
    engine.close()  # no connection of this engine open; none of another app in this test either
    real = engine_module.ChdbTransport.command
    kept = []

    def refuse_set(self, sql, params):
        if sql.startswith("SET log_comment"):
            kept.append(self)
            raise RuntimeError("refused")
        return real(self, sql, params)

    monkeypatch.setattr(engine_module.ChdbTransport, "command", refuse_set)
    with pytest.raises(GameLensError):
        engine.select("SELECT 1")
    monkeypatch.setattr(engine_module.ChdbTransport, "command", real)
    time.sleep(1.1)
    assert engine.select("SELECT uptime()").scalar() < 1
