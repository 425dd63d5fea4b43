"""The one module of statements that are not a user's query (store.py): the BI view follows the
active version, a server without text indexes still serves the same answers, the server-side load
is one statement, and a cluster gets the replicated forms there and nowhere else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from gamelens import store as store_module
from gamelens.engine import BAD_ARGUMENTS, SUPPORT_IS_DISABLED, Engine, Result
from gamelens.errors import EngineError
from gamelens.ingest import load, physical
from gamelens.store import Store

from .conftest import make_settings, sample_table, upload, write_csv


def _file(files, name: str, rows: int) -> str:
    (files.root / name).write_bytes(write_csv(sample_table()[:1] + sample_table()[1:rows + 1]))
    return files.url(name)


def _view_count(client) -> int:
    engine = client.app.state.engine
    return engine.select(f"SELECT count() FROM `{engine.db}`.games").scalar()


def test_bi_users_view_follows_every_switch(make_client, files):
    client = make_client()
    first = upload(client, _file(files, "v10.csv", 10))
    assert _view_count(client) == 10
    upload(client, _file(files, "v20.csv", 20))
    assert _view_count(client) == 20
    assert client.post(f"/api/v1/uploads/{first['id']}/activate").status_code == 200
    assert _view_count(client) == 10
    engine = client.app.state.engine
    columns = [r[0] for r in engine.select("SELECT name FROM system.columns WHERE database = {db:String} AND "
                                           "table = 'games'", {"db": engine.db}).rows]
    assert "_row" not in columns and "_bad" not in columns and "rating" in columns


def test_a_finished_version_is_one_part_with_every_index_written(make_client, files):
    """After the switch the version is merged into one part, then each declared index is written
    (versions.finish): declared and not written, an index serves nothing and its filters scan."""
    client = make_client()
    rec = upload(client, _file(files, "v30.csv", 30))  # waits for the indexes
    assert rec["indexes"] == "ready", rec
    engine = client.app.state.engine
    where = {"db": engine.db, "t": f"games_v{rec['id']}"}
    parts = engine.select("SELECT count() FROM system.parts WHERE database = {db:String} AND table = {t:String} "
                          "AND active", where, readonly=False).scalar()
    written = dict(engine.select("SELECT name, data_compressed_bytes FROM system.data_skipping_indices "
                                 "WHERE database = {db:String} AND table = {t:String}", where, readonly=False).rows)
    assert parts == 1
    assert set(written) == set(physical.INDEXES) and all(size > 0 for size in written.values()), written


def test_a_version_stores_each_column_in_its_declared_codec(make_client, files):
    """physical.CODECS: the descriptions are stored uncompressed (scans and sorted pages skip their
    decompression); every other column in the table's default (LZ4: physical.CODEC_SETTING)."""
    client = make_client()
    rec = upload(client, _file(files, "v5.csv", 5))
    engine = client.app.state.engine
    codecs = dict(engine.select("SELECT name, compression_codec FROM system.columns WHERE database = {db:String} "
                                "AND table = {t:String}", {"db": engine.db, "t": f"games_v{rec['id']}"},
                                readonly=False).rows)
    assert physical.CODECS == {"about_the_game": "NONE"}
    assert codecs["about_the_game"] == "CODEC(NONE)"
    assert {name: codec for name, codec in codecs.items() if name not in physical.CODECS and codec} == {}


def test_a_large_version_is_merged_in_lz4_not_in_the_zstd_the_engine_picks_for_large_parts():
    """The engine's default writes a part it expects to reach 100 MB in ZSTD(3) (ClickHouse pull request
    108786), which reads decompress up to twice as slowly: a version of the 500 MB file was stored that way.
    The merge that makes a version's one part declares physical.CODEC_SETTING (LZ4) first, for a table this
    release created and one an earlier release loaded and stopped before merging alike."""
    engine = Engine(make_settings())
    store = Store(engine)
    try:
        store.create_database()
        store.create_version_table("games_v1", "")
        for _ in range(2):  # two parts of ~120 MB, merged into one of ~240 MB
            engine.execute(f"INSERT INTO {store.q('games_v1')} (app_id, about_the_game) "
                           "SELECT number, randomPrintableASCII(1000) FROM numbers(120000)")
        store.merge("games_v1")
        parts = engine.select("SELECT default_compression_codec, bytes_on_disk FROM system.parts WHERE "
                              "database = {db:String} AND table = 'games_v1' AND active", {"db": engine.db},
                              readonly=False).rows
    finally:
        engine.close()
    assert len(parts) == 1 and parts[0][1] > 200e6, parts
    assert parts[0][0] == "LZ4", parts


def test_a_server_without_the_codec_setting_gets_its_table_without_it(make_client, files, monkeypatch):
    """A server before ClickHouse 25.4 refuses a MergeTree setting it does not know, as MODIFY SETTING here
    refuses a made-up one (code 115): its version tables are merged without physical.CODEC_SETTING (its
    parts are LZ4 by default anyway), and an upload is finished whole."""
    codec, _ = physical.CODEC_SETTING
    monkeypatch.setattr(physical, "CODEC_SETTING", ("made_up_codec_setting", "'LZ4'"))
    client = make_client()
    rec = upload(client, _file(files, "v7.csv", 7))
    assert rec["state"] == "succeeded" and rec["indexes"] == "ready", rec  # the merge, and the finish after it
    engine = client.app.state.engine
    ddl = engine.select("SELECT create_table_query FROM system.tables WHERE database = {db:String} AND "
                        "name = {t:String}", {"db": engine.db, "t": f"games_v{rec['id']}"}, readonly=False).scalar()
    assert "made_up_codec_setting" not in ddl and codec not in ddl, ddl
    assert client.get("/api/v1/games", params={"limit": 1}).json()["total"] == 7
    assert Store(engine).has_table_setting(codec) and not Store(engine).has_table_setting("made_up_codec_setting")


def test_a_server_without_text_indexes_serves_the_same_answers(make_client, files):
    """The server refuses ADD INDEX as one without text indexes does (SUPPORT_IS_DISABLED): the record
    says `indexes: unsupported`, the version is merged all the same, and substring answers do not change."""
    plain = make_client()
    upload(plain, files.url("sample.csv"))
    client = make_client()
    worker = client.app.state.uploads.worker
    real = worker.execute

    def refuse_text_indexes(sql, params=None, settings=None):
        if "ADD INDEX" in sql:
            raise EngineError("Code: 344. DB::Exception: Experimental full-text index feature is disabled.",
                              SUPPORT_IS_DISABLED)
        return real(sql, params, settings)

    worker.execute = refuse_text_indexes
    rec = upload(client, files.url("sample.csv"))
    del worker.execute
    assert rec["state"] == "succeeded" and rec["indexes"] == "unsupported", rec
    for query in ({"name": "bowl"}, {"about_the_game": "zombie"}, {"tags__has": "Horror"}, {"genres": "indie"}):
        params = {**query, "fields": "app_id", "limit": 100, "sort": "app_id"}
        assert client.get("/api/v1/games", params=params).json()["rows"] == \
            plain.get("/api/v1/games", params=params).json()["rows"], query


def test_the_server_side_load_is_one_statement(files):
    """What a ClickHouse server receives for a load: one INSERT ... SELECT ... FROM input(...), its
    body the CSV, so a balancer cannot split it. chDB cannot feed input() (it reads no body), so here
    the statement is parsed by the engine (EXPLAIN AST), and its SELECT, the same expressions, loads
    through the embedded path in every other test."""
    engine = Engine(make_settings())
    store = Store(engine)
    store.create_database()
    try:
        data = write_csv(sample_table()[:11])
        header, _ = load.read_header(iter([data]))
        columns, exprs = load.select_exprs(load.check_header(header)[0])
        store.create_version_table("stage_1", "upload:1 layout:2")
        target = f"{store.q('stage_1')} ({', '.join(f'`{c}`' for c in columns)})"
        structure = ", ".join(f"c{i} String" for i in range(len(header)))
        statement = Store.load_statement(target, ", ".join(exprs), structure)
        assert statement.count("INSERT") == 1 and f"FROM input('{structure}')" in statement
        with engine.connection() as conn:  # plain text: an EXPLAIN of an INSERT has no JSON form
            ast = conn.run(f"EXPLAIN AST {statement}", None, "TabSeparated").decode()
        assert "InsertQuery" in ast and "Function input" in ast, ast
    finally:
        engine.close()


@dataclass
class Recorder:
    """A transport that only records what it is asked to run (to read the rendered statements)."""

    db: str = "gamelens"
    ran: list = field(default_factory=list)

    def execute(self, sql, params=None, settings=None):
        self.ran.append((sql, settings or {}))

    def select(self, sql, params=None, *, readonly=True, settings=None):
        self.ran.append((sql, settings or {}))
        return Result(["x"], [[1]])


def test_a_cluster_gets_the_replicated_forms_and_one_node_the_plain_ones():
    for cluster in (None, "analytics"):
        recorder = Recorder()
        store = Store(recorder, cluster)
        store.create_database()
        store.create_bookkeeping()
        store.create_version_table("stage_1", "upload:1 layout:2")
        store.save_upload(1, "{}")
        store.upload_docs()
        ddl = " ".join(sql for sql, _ in recorder.ran)
        writes = [s for sql, s in recorder.ran if sql.startswith("INSERT")]
        reads = [s for sql, s in recorder.ran if sql.startswith("SELECT")]
        if cluster:
            assert "ON CLUSTER `analytics` ENGINE = Replicated('/clickhouse/databases/{database}'" in ddl
            assert "ReplicatedMergeTree()" in ddl and "ReplicatedReplacingMergeTree(version)" in ddl
            assert all(s.get("insert_quorum") == "auto" for s in writes)
            assert all(s.get("select_sequential_consistency") == 1 for s in reads)
        else:
            assert "ENGINE = Atomic" in ddl and "Replicated" not in ddl and "ON CLUSTER" not in ddl
            assert all("insert_quorum" not in s for s in writes)
            assert all("select_sequential_consistency" not in s for s in reads)



def test_a_small_part_writes_its_indexes_in_one_statement_and_a_large_one_one_at_a_time(make_client, files,
                                                                                       monkeypatch):
    """physical.index_passes: a part under ONE_PASS_INDEXES_BYTES has all its indexes declared by one
    statement and written by one; above it, one index per statement bounds the finishing peak."""
    client = make_client()
    worker, real, ran = client.app.state.uploads.worker, client.app.state.uploads.worker.execute, []

    def recorded(sql, *args, **kwargs):
        if "ADD INDEX" in sql or "MATERIALIZE INDEX" in sql:
            ran.append(sql)
        return real(sql, *args, **kwargs)

    def statements(verb):
        return [sql for sql in ran if verb in sql]

    def named(sql):
        return re.findall(r"INDEX (?:IF NOT EXISTS )?(\w+)", sql)

    monkeypatch.setattr(worker, "execute", recorded)
    assert upload(client, _file(files, "v15.csv", 15))["indexes"] == "ready"
    for verb in ("ADD INDEX", "MATERIALIZE INDEX"):
        assert len(statements(verb)) == 1 and named(statements(verb)[0]) == list(physical.INDEXES), verb
    ran.clear()
    monkeypatch.setattr(physical, "ONE_PASS_INDEXES_BYTES", 0)  # every part is "large"
    assert upload(client, _file(files, "v16.csv", 16))["indexes"] == "ready"
    for verb in ("ADD INDEX", "MATERIALIZE INDEX"):
        assert len(statements(verb)) == len(physical.INDEXES) > 1, verb
        assert [named(sql) for sql in statements(verb)] == [[index] for index in physical.INDEXES], verb


def _refusing(worker, monkeypatch, refuse):
    """Make `worker` refuse the index statements (ADD, MATERIALIZE, DROP) for which `refuse(sql)` holds,
    as a server without that kind of index does; returns the ADD INDEX statements it was sent, in order."""
    real, added = worker.execute, []

    def execute(sql, params=None, settings=None):
        if "ADD INDEX" in sql:
            added.append(sql)
        if "INDEX" in sql and refuse(sql):
            raise EngineError("Code: 36. DB::Exception: Unknown tokenizer.", BAD_ARGUMENTS)
        return real(sql, params, settings)

    monkeypatch.setattr(worker, "execute", execute)
    return added


def _written_indexes(client, upload_id):
    """The text indexes of a version that hold data, by name."""
    engine = client.app.state.engine
    rows = engine.select(
        "SELECT name FROM system.data_skipping_indices WHERE database = {db:String} AND table = {t:String} "
        "AND data_compressed_bytes > 0", {"db": engine.db, "t": f"games_v{upload_id}"}, readonly=False).rows
    return {row[0] for row in rows}


def test_a_server_without_one_kind_of_text_index_gets_the_others(make_client, files, monkeypatch):
    """A server that refuses the list columns' index (tokenizer = array) but builds the word indexes: a
    small part's one statement fails as a whole, so its indexes are written one at a time, the word
    ones are built, and the record says `unsupported` (some are missing)."""
    client = make_client()
    added = _refusing(client.app.state.uploads.worker, monkeypatch, lambda sql: "tokenizer = array" in sql)
    rec = upload(client, _file(files, "v17.csv", 17))
    assert rec["state"] == "succeeded" and rec["indexes"] == "unsupported", rec
    assert re.findall(r"INDEX IF NOT EXISTS (\w+)", added[0]) == list(physical.INDEXES), added[0]
    words = {i for i, (column, _) in physical.INDEXES.items() if column in physical.WORD_INDEXED}
    assert words and _written_indexes(client, rec["id"]) == words


def _declared_indexes(client, upload_id):
    """The text indexes a version's table declares, by name, whether they hold data or not."""
    engine = client.app.state.engine
    rows = engine.select("SELECT name FROM system.data_skipping_indices WHERE database = {db:String} AND "
                         "table = {t:String}", {"db": engine.db, "t": f"games_v{upload_id}"}, readonly=False).rows
    return {row[0] for row in rows}


def test_an_index_declared_but_refused_its_writing_is_not_left_declared(make_client, files, monkeypatch):
    """The server takes an index's ADD and refuses its MATERIALIZE: the record says `unsupported`, and
    the table declares only the indexes it holds, also after finish runs again (as at a start), so the
    record says what the table holds and no later merge tries to build the refused one."""
    client = make_client()
    _refusing(client.app.state.uploads.worker, monkeypatch, lambda sql: "MATERIALIZE INDEX i_tags" in sql)
    rec = upload(client, _file(files, "v19.csv", 19))
    assert rec["state"] == "succeeded" and rec["indexes"] == "unsupported", rec
    others = set(physical.INDEXES) - {"i_tags"}
    assert _declared_indexes(client, rec["id"]) == others
    assert _written_indexes(client, rec["id"]) == others
    assert client.app.state.uploads.versions.finish(rec["id"]) == "unsupported"
    assert _declared_indexes(client, rec["id"]) == _written_indexes(client, rec["id"]) == others


def test_a_failed_tidy_up_of_refused_indexes_leaves_the_record_unsupported(make_client, files, monkeypatch):
    """Dropping the declaration of an index the server would not write is a tidy-up: when the server
    refuses that too, the record still says `unsupported` (not `failed`), and the other indexes are written."""
    client = make_client()
    refused = "MATERIALIZE INDEX i_tags"
    _refusing(client.app.state.uploads.worker, monkeypatch, lambda sql: refused in sql or "DROP INDEX" in sql)
    rec = upload(client, _file(files, "v21.csv", 21))
    assert rec["state"] == "succeeded" and rec["indexes"] == "unsupported", rec
    assert _written_indexes(client, rec["id"]) == set(physical.INDEXES) - {"i_tags"}


def test_indexes_written_one_at_a_time_after_a_refused_statement_are_ready(make_client, files, monkeypatch):
    """When the statement of all the indexes is refused but each index alone is built, every index is
    there: the record says `ready`, not `unsupported`."""
    client = make_client()
    _refusing(client.app.state.uploads.worker, monkeypatch, lambda sql: sql.count("ADD INDEX") > 1)
    rec = upload(client, _file(files, "v18.csv", 18))
    assert rec["state"] == "succeeded" and rec["indexes"] == "ready", rec
    assert _written_indexes(client, rec["id"]) == set(physical.INDEXES)


# A table of two ~16 MB parts of text that does not compress, on a 60 MB disk: the engine rewrites a part
# only with 1.1 times it unreserved, and the part it replaced stays on the disk a while; so the second part's
# rewrite waited for ever when the first had room (store.REWRITE_ROOM, Store._check_room).
_NO_ROOM = """
import sys
from gamelens.errors import GameLensError
from gamelens.settings import Settings
from gamelens.engine import Engine
from gamelens.store import Store
engine = Engine(Settings(data_dir=sys.argv[1]))
store = Store(engine)
store.create_database()
db = f"`{engine.db}`"
for name, parts, rows in (("big", 2, 160_000), ("small", 1, 1_000)):
    engine.execute(f"CREATE TABLE {db}.{name} (k UInt64, s String) ENGINE = MergeTree ORDER BY k")
    engine.execute(f"SYSTEM STOP MERGES {db}.{name}")
    for _ in range(parts):
        engine.execute(f"INSERT INTO {db}.{name} SELECT number, randomPrintableASCII(100) FROM numbers({rows})")
    engine.execute(f"SYSTEM START MERGES {db}.{name}")  # (mutations too): big has no room to merge its two
for name in ("big", "small"):
    try:
        store.rewrite(name, f"ALTER TABLE {db}.{name} UPDATE s = upper(s) WHERE 1")
        print(name, "rewritten")
    except GameLensError as exc:
        print(name, exc.status, exc.code)
"""


def test_a_rewrite_without_room_on_the_disk_is_refused_not_waited_for(tmp_path):
    """helper-66: on a nearly full disk the finishing mutations (ranks, packing, indexes; dropping a stopped
    build's column at a start) waited for ever. Now they are refused (507) when the disk lacks the room
    the engine needs; a table with room is rewritten. In its own process: chDB opens one data directory."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk (tmpfs) needs root, as CI runs")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=60m", "tmpfs", str(disk)], check=True)
    try:
        out = subprocess.run([sys.executable, "-c", _NO_ROOM, str(disk / "data")], capture_output=True, text=True,
                             timeout=120)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert out.stdout.split("\n")[:2] == ["big 507 insufficient_storage", "small rewritten"], out.stderr[-2000:]


def test_a_version_finished_without_room_is_served_and_says_its_indexes_failed(make_client, files, monkeypatch):
    """No room to rewrite the version (as above): its ranks, packed fields and indexes are left out, the
    upload succeeds and serves, and the record says the indexes failed; nothing waits. Its element bitmaps,
    a small table of their own and no rewrite, are written."""
    monkeypatch.setattr(store_module, "REWRITE_ROOM", 1e15)
    client = make_client()
    rec = upload(client, _file(files, "v23.csv", 23))
    assert (rec["state"], rec["indexes"], rec["rows_loaded"]) == ("succeeded", "failed", 23), rec
    assert client.get("/api/v1/games", params={"sort": "name", "limit": 3}).json()["total"] == 23
    assert Store(client.app.state.engine).derived(f"games_v{rec['id']}") == {physical.ELEMENTS}
    monkeypatch.undo()  # room again: a start builds what failed (it never did: helper-67)
    client.app.state.uploads._resume_indexes()
    assert client.get(f"/api/v1/uploads/{rec['id']}").json()["indexes"] == "ready"
    assert Store(client.app.state.engine).derived(f"games_v{rec['id']}") == set(physical.DERIVED)
