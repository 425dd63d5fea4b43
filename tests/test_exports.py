"""Exports arrive whole or visibly fail, honour limit/offset, say what they hold, are safe to open in a
spreadsheet, and upload again to the same rows."""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import uvicorn

from gamelens.api.app import create_app
from gamelens.errors import GameLensError
from gamelens.query import formats

from .conftest import AUTH, DATA_DIR, engine_of, make_settings, sample_table, upload, write_csv
from .conftest import test_clickhouse_url as engine_url


def _stored_rows(client) -> list[list]:
    """Every stored row (without the source row number), by app_id: independent of file order."""
    versions = client.app.state.uploads.versions
    table = versions.table(versions.active(fresh=True))
    return engine_of(client).select(f"SELECT COLUMNS('^[^_]') FROM {table} ORDER BY app_id, _row").rows


def test_a_full_csv_export_uploads_again_to_the_same_rows(make_client, files):
    source = make_client()
    assert upload(source, files.url("sample.csv"))["state"] == "succeeded"
    r = source.get("/api/v1/games", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["x-exported-count"] == "100"
    header = next(csv.reader(io.StringIO(r.text)))
    assert "release_date_raw" not in header  # the date column itself is written as the source wrote it
    rows = list(csv.DictReader(io.StringIO(r.text)))
    galactic = next(row for row in rows if row["name"] == "Galactic Bowling")
    assert galactic["release_date"] == "Oct 21, 2008" and galactic["genres"] == "Casual,Indie,Sports"
    assert galactic["supported_languages"] == "['English']"
    (files.root / "exported.csv").write_bytes(r.content)
    again = make_client()
    rec = upload(again, files.url("exported.csv"))
    assert rec["state"] == "succeeded" and rec["warnings"] == [], rec
    assert _stored_rows(again) == _stored_rows(source)


FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tTabbed", "\rReturned"]
# Spellings that spreadsheets also run: after leading whitespace (NBSP, newlines too), a pipe (DDE),
# full-width and small forms (NFKC), and a cell that already starts with ' and a formula.
SPELLINGS = [" =1+1", "\n=1+1", "\xa0=1+1", "|calc!A0", "\uff1d1+1", "\uff20SUM(A1)", "\ufe621+1", "'=1+1", "''@x"]


def test_csv_export_neutralises_formulas_and_still_round_trips(make_client, files):
    table = sample_table()
    name, about, dev, tags, price = (table[0].index(h) for h in ("Name", "About the game", "Developers", "Tags",
                                                                  "Price"))
    for i, formula in enumerate(FORMULAS, start=1):
        table[i][name] = formula
        table[i][about] = formula + " about"
        table[i][tags] = formula + ",Indie"
        table[i][dev] = formula
    for i, spelling in enumerate(SPELLINGS, start=len(FORMULAS) + 1):  # text columns keep them as written
        table[i][name] = spelling
        table[i][about] = spelling + " about"
    table[1][price] = "1.50"  # a number: never touched
    (files.root / "formulas.csv").write_bytes(write_csv(table))
    source = make_client()
    assert upload(source, files.url("formulas.csv"))["state"] == "succeeded"
    r = source.get("/api/v1/games", params={"format": "csv", "sort": "app_id"})
    rows = {row["app_id"]: row for row in csv.DictReader(io.StringIO(r.text, newline=""))}
    for i, formula in enumerate(FORMULAS, start=1):
        row = rows[table[i][1]]
        for field, text in (("name", formula), ("about_the_game", formula + " about"), ("tags", formula + ",Indie"),
                            ("developers", formula)):
            assert row[field] == "'" + text, (field, row[field])
    for i, spelling in enumerate(SPELLINGS, start=len(FORMULAS) + 1):
        row = rows[table[i][1]]
        # A source cell that starts with ' before a formula is that formula escaped (the upload drops
        # one '), so the export writes it as the source did; any other gains one '.
        escaped = spelling if spelling.startswith("'") else "'" + spelling
        assert (row["name"], row["about_the_game"]) == (escaped, escaped + " about"), spelling
    assert rows[table[1][1]]["price"] == "1.5"
    untouched = rows[table[20][1]]
    assert untouched["name"] == table[20][name]
    (files.root / "formulas_export.csv").write_bytes(r.content)
    again = make_client()
    assert upload(again, files.url("formulas_export.csv"))["state"] == "succeeded"
    assert _stored_rows(again) == _stored_rows(source)


def test_limit_and_offset_are_honoured_and_reported(sample_client):
    page = sample_client.get("/api/v1/games", params={"sort": "-positive", "fields": "app_id", "limit": 5}).json()
    r = sample_client.get("/api/v1/games", params={"sort": "-positive", "fields": "app_id", "limit": 3,
                                                    "offset": 2, "format": "ndjson"})
    assert [json.loads(line)["app_id"] for line in r.text.splitlines()] == [x["app_id"] for x in page["rows"][2:5]]
    assert r.headers["x-exported-count"] == "3" and r.headers["x-total-count"] == "100"
    assert r.headers["x-truncated"] == "false"
    assert int(r.headers["content-length"]) == len(r.content)
    r = sample_client.get("/api/v1/games", params={"offset": 98, "format": "ndjson"})
    assert len(r.text.splitlines()) == 2 and r.headers["x-exported-count"] == "2"


def test_aggregate_exports_carry_the_same_headers(sample_client):
    groups = sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres", "limit": 1000}).json()
    r = sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres", "format": "csv", "limit": 4,
                                                              "offset": 1})
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    assert [(p["genres"], int(p["count"])) for p in parsed] == [(g["genres"], g["count"]) for g in groups["rows"][1:5]]
    assert r.headers["x-total-count"] == str(groups["total_groups"])
    assert r.headers["x-exported-count"] == "4" and r.headers["x-truncated"] == "false"


def _typed(value):
    """A value as JSON writes it (dates as text, decimals as numbers)."""
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value.__class__.__name__ == "Decimal":
        return float(value)
    return value


# Each export format as a client reads it back into rows of {field: value}. A format added to the
# registry without a reader here fails test_every_export_format_holds_the_rows_of_the_page.
READERS = {
    "csv": lambda body: list(csv.DictReader(io.StringIO(body.decode()))),
    "ndjson": lambda body: [json.loads(line) for line in body.decode().splitlines()],
    "parquet": lambda body: [{k: _typed(v) for k, v in row.items()}
                             for row in pq.read_table(io.BytesIO(body)).to_pylist()],
}
TYPED_FIELDS = "app_id,name,release_date,price,genres,rating,windows"


@pytest.mark.parametrize("fmt", sorted(formats.EXPORTS))
def test_every_export_format_holds_the_rows_of_the_page(sample_client, fmt):
    assert set(READERS) == set(formats.EXPORTS)
    export = formats.EXPORTS[fmt]
    query = {"fields": TYPED_FIELDS, "sort": "-rating", "limit": 40, "price__lte": 20}
    page = sample_client.get("/api/v1/games", params=query).json()["rows"]
    r = sample_client.get("/api/v1/games", params={**query, "format": fmt})
    assert r.status_code == 200 and r.headers["content-type"] == export.media_type
    assert int(r.headers["content-length"]) == len(r.content) and r.headers["x-exported-count"] == str(len(page))
    rows = READERS[fmt](r.content)
    assert [int(row["app_id"]) for row in rows] == [p["app_id"] for p in page]
    if not export.source_form:  # typed: the same values as the JSON page
        assert rows == page
    for media in (export.media_type.split(";")[0], *export.also_accepted):
        by_accept = sample_client.get("/api/v1/games", params=query, headers={"Accept": media})
        assert by_accept.content == r.content, media
    nothing = sample_client.get("/api/v1/games", params={**query, "name": "no game is called this", "format": fmt})
    assert nothing.status_code == 200 and READERS[fmt](nothing.content) == []
    if fmt != "ndjson":  # the header row, or the schema, even without rows
        assert nothing.content
    groups = sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres", "metrics": "count,avg:price"})
    r = sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres", "metrics": "count,avg:price",
                                                              "format": fmt})
    rows = READERS[fmt](r.content)
    assert [(row["genres"], int(row["count"])) for row in rows] == [(g["genres"], g["count"])
                                                                     for g in groups.json()["rows"]]


def test_the_cap_applies_without_a_limit_and_bounds_it(make_client, files):
    client = make_client(export_max_rows=10)
    upload(client, files.url("sample.csv"))
    r = client.get("/api/v1/games", params={"format": "ndjson"})
    assert len(r.text.splitlines()) == 10
    assert [r.headers[h] for h in ("x-truncated", "x-total-count", "x-exported-count")] == ["true", "100", "10"]
    r = client.get("/api/v1/games/aggregate", params={"group_by": "tags", "format": "ndjson"})
    assert len(r.text.splitlines()) == 10 and r.headers["x-truncated"] == "true"
    r = client.get("/api/v1/games", params={"format": "csv", "limit": 11})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
    r = client.get("/api/v1/games", params={"format": "csv", "cursor": "abc"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "cursor"


def _outgoing(client) -> list[str]:
    """Files the embedded engine wrote for Parquet exports and that are still there."""
    outgoing = engine_of(client).outgoing
    return sorted(p.name for p in outgoing.iterdir()) if outgoing.exists() else []


def test_the_engine_s_parquet_files_are_removed_once_sent(sample_client):
    for path in ("/api/v1/games", "/api/v1/games/aggregate?group_by=genres"):
        r = sample_client.get(path, params={"format": "parquet"})
        assert r.status_code == 200 and pq.ParquetFile(io.BytesIO(r.content)).metadata.num_rows > 0
    r = sample_client.get("/api/v1/games", params={"format": "parquet", "name": "no such game"})
    assert r.status_code == 200 and pq.ParquetFile(io.BytesIO(r.content)).metadata.num_rows == 0
    assert _outgoing(sample_client) == []


def _fails(path: str) -> None:
    raise RuntimeError("Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)")


def _cut_short(path: str) -> None:
    """What the engine leaves when its write fails (a full disk, a file size limit): it says nothing."""
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.skipif(engine_url() is not None, reason="a server streams Parquet itself: no file here")
@pytest.mark.parametrize(("after_writing", "code"), [(_fails, "query_too_large"), (_cut_short, "export_failed")],
                         ids=["engine error", "short file"])
def test_a_parquet_export_the_engine_fails_is_refused_and_leaves_no_file(sample_client, monkeypatch,
                                                                         after_writing, code):
    from gamelens.engine import ChdbTransport

    real = ChdbTransport.command

    def write_then(self, sql, params):
        real(self, sql, params)
        after_writing(str(next(engine_of(sample_client).outgoing.glob("*.parquet"))))

    monkeypatch.setattr(ChdbTransport, "command", write_then)
    r = sample_client.get("/api/v1/games", params={"format": "parquet"})
    assert r.status_code == 503 and r.json()["error"]["code"] == code, r.text
    monkeypatch.undo()
    assert _outgoing(sample_client) == []


def test_a_stop_s_leftover_parquet_files_go_at_the_next_start(make_client):
    leftover = Path(make_settings().data_dir) / "outgoing" / "tmp_cut_off.parquet"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"PAR1")
    make_client()
    assert not leftover.exists()


@pytest.fixture(scope="module")
def live(files, tmp_path_factory):
    """The app on a real uvicorn server in this process (a 1 s query limit), with 200,000 short rows
    (several engine blocks: the old streaming export pulled them while the client read)."""
    table = sample_table()
    short = {table[0].index(h): "" for h in ("About the game", "Categories", "Tags", "Developers", "Publishers")}
    short[table[0].index("Supported languages")] = "['English']"
    rows = [[short.get(i, v) for i, v in enumerate(r)] for r in table[1:]]
    big = [table[0]] + [[*r[:1], str(10**6 + i), *r[2:]] for i, r in enumerate(rows * 2000)]
    (files.root / "many_rows.csv").write_bytes(write_csv(big))
    app = create_app(make_settings(query_timeout_s=1))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    rec = httpx.post(f"{base}/api/v1/uploads?wait=true", json={"url": files.url("many_rows.csv")}, headers=AUTH,
                     timeout=120).json()
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 200_000, rec
    yield base
    server.should_exit = True
    thread.join(30)


@pytest.mark.above_the_engine  # the sending of a spool computed whole; its statements are other tests'
def test_a_slow_reader_gets_every_row(live):
    """The query limit is 1 s; the client takes over 3 s to read: the export still arrives whole."""
    received, started = bytearray(), time.monotonic()
    with httpx.stream("GET", f"{live}/api/v1/games", params={"format": "ndjson", "fields": "app_id,name"},
                      headers=AUTH, timeout=60) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes(256 * 1024):
            received += chunk
            time.sleep(0.1)
    assert time.monotonic() - started > 3
    assert r.headers["x-exported-count"] == "200000" and received.count(b"\n") == 200_000
    assert len(received) == int(r.headers["content-length"])


def test_exports_of_many_engine_blocks_are_one_file(live):
    """The engine answers 200,000 rows in many blocks (chDB writes each block whole, with its header
    or as its own Parquet file): an export is still one CSV with one header, one Parquet file with few
    row groups, every row once, in order."""
    fields = {"fields": "app_id,name", "sort": "app_id", "limit": 50_000}
    r = httpx.get(f"{live}/api/v1/games", params={**fields, "format": "csv"}, headers=AUTH, timeout=60)
    lines = r.content.splitlines()
    assert lines.count(b'"app_id","name"') == 1 and len(lines) == 50_001
    ids = [int(row["app_id"]) for row in csv.DictReader(io.StringIO(r.text))]
    assert ids == sorted(ids) and len(set(ids)) == 50_000
    r = httpx.get(f"{live}/api/v1/games/aggregate", params={"group_by": "app_id", "format": "csv", "limit": 30_000},
                  headers=AUTH, timeout=60)
    assert r.content.splitlines().count(b'"app_id","count"') == 1 and len(r.content.splitlines()) == 30_001
    r = httpx.get(f"{live}/api/v1/games", params={**fields, "format": "parquet"}, headers=AUTH, timeout=60)
    parquet = pq.ParquetFile(io.BytesIO(r.content))
    assert parquet.metadata.num_rows == 50_000 and parquet.metadata.num_row_groups <= 2
    assert parquet.read().column("app_id").to_pylist() == ids


@pytest.mark.above_the_engine  # a spool cut after it was computed
def test_an_export_that_fails_midway_is_visibly_cut(live, monkeypatch):
    """The spool file loses its end after the export was computed (a disk error, say): the real sending
    path sends what it can read and the connection is dropped short of Content-Length, so the client
    gets an error, never a clean end with missing rows."""
    import os

    from gamelens.query.run import Explorer

    real = Explorer.export

    def export_then_lose_the_end(self, *args, **kw):
        spool, media, headers = real(self, *args, **kw)
        spool._file.flush()
        os.ftruncate(spool._file.fileno(), 1 << 16)
        return spool, media, headers

    monkeypatch.setattr(Explorer, "export", export_then_lose_the_end)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{live}/api/v1/games", params={"format": "ndjson", "fields": "app_id,name"}, headers=AUTH,
                  timeout=60)


def _open_spools() -> int:
    """Spool files this process holds open (unlinked files under a data directory's tmp/, or outgoing/ for
    the Parquet files the engine wrote)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            spooled = "/tmp/" in target or "/outgoing/" in target
            if spooled and target.endswith("(deleted)") and str(DATA_DIR) in target:
                count += 1
    return count


def _eventually(check, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def no_gc():
    """Whatever frees a spool must do it by itself: the garbage collector does not run meanwhile."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_a_client_that_reads_a_little_and_leaves_frees_the_spool(live, no_gc):
    export = {"format": "csv", "fields": "app_id,name,release_date"}
    for _ in range(3):
        with httpx.stream("GET", f"{live}/api/v1/games", params=export, headers=AUTH, timeout=60) as r:
            assert r.status_code == 200
            next(r.iter_bytes(64 * 1024))
        # the client closed its connection after one block
    assert _eventually(lambda: _open_spools() == 0), f"{_open_spools()} spool files still open"


def test_exports_are_capped_per_key_and_free_their_slot_when_done(live, no_gc):
    """A key opens exports and does not read them: past GAMELENS_EXPORTS_PER_KEY (2) the next one is
    503 busy with Retry-After; once the clients close, exports run again and no spool is left."""
    # ~9 MB each, to a client that takes 4 KB at a time: more than the sockets hold, so the server is
    # still sending when the next export is asked for
    export = {"format": "csv", "fields": "app_id,name,genres,release_date"}
    small_window = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    slow_client = httpx.Client(transport=small_window, headers=AUTH, timeout=120)
    held = []
    try:
        for _ in range(2):
            stream = slow_client.stream("GET", f"{live}/api/v1/games", params=export)
            held.append(stream)
            assert stream.__enter__().status_code == 200
        r = httpx.get(f"{live}/api/v1/games", params=export, headers=AUTH, timeout=60)
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy", r.text
        assert int(r.headers["retry-after"]) > 0 and "GAMELENS_EXPORTS_PER_KEY" in r.json()["error"]["message"]
    finally:
        for stream in held:
            stream.__exit__(None, None, None)
        slow_client.close()
    assert _eventually(lambda: _open_spools() == 0)
    r = httpx.get(f"{live}/api/v1/games", params={**export, "limit": 10}, headers=AUTH, timeout=60)
    assert r.status_code == 200 and len(r.text.splitlines()) == 11  # the header and 10 rows


@pytest.mark.parametrize("cap,setting", [({"export_spool_mb": 1}, "GAMELENS_EXPORT_SPOOL_MB"),
                                         ({"min_free_disk_mb": 1 << 40}, "GAMELENS_MIN_FREE_DISK_MB")],
                         ids=["spool_bytes", "free_disk"])
def test_an_export_past_the_disk_caps_is_busy_and_leaves_nothing(make_client, files, no_gc, cap, setting):
    client = make_client(**cap)
    (files.root / "thousand.csv").write_bytes(write_csv(sample_table()[:1] + sample_table()[1:] * 10))
    assert upload(client, files.url("thousand.csv"))["state"] == "succeeded"
    r = client.get("/api/v1/games", params={"format": "csv"})  # ~1.6 MB of CSV
    status, code = (507, "insufficient_storage") if setting == "GAMELENS_MIN_FREE_DISK_MB" else (503, "busy")
    assert r.status_code == status and r.json()["error"]["code"] == code and setting in r.json()["error"]["message"]
    assert r.headers["retry-after"]
    assert _open_spools() == 0
    small = client.get("/api/v1/games", params={"format": "csv", "limit": 5, "fields": "app_id"})
    assert small.status_code == (507 if setting == "GAMELENS_MIN_FREE_DISK_MB" else 200)


def test_a_parquet_export_past_the_disk_caps_is_busy_and_leaves_nothing(make_client, files, no_gc):
    """The engine writes a Parquet export whole: it is counted then, and refused past a cap as a write is."""
    client = make_client(min_free_disk_mb=1 << 40)
    assert upload(client, files.url("sample.csv"))["state"] == "succeeded"
    r = client.get("/api/v1/games", params={"format": "parquet"})
    assert r.status_code == 507 and r.json()["error"]["code"] == "insufficient_storage", r.text
    assert "GAMELENS_MIN_FREE_DISK_MB" in r.json()["error"]["message"]
    assert _open_spools() == 0 and _outgoing(client) == []


def test_a_spool_adopts_the_engine_s_file_and_counts_it(tmp_path):
    """Adopted, not copied: the spool sends the engine's own file (open after its name goes) and counts it
    in the allowance until closed."""
    from gamelens.query.spool import Spools

    spools = Spools(tmp_path / "spool", make_settings(export_spool_mb=1))
    written = tmp_path / "engine.parquet"
    written.write_bytes(b"PAR1" + b"x" * 1000 + b"PAR1")
    spool = spools.admit("key")
    spool.adopt(str(written))
    written.unlink()
    assert spool.size == 1008 and spools._bytes == 1008
    assert b"".join(spool.blocks()) == b"PAR1" + b"x" * 1000 + b"PAR1"
    spool.close()
    assert spools._bytes == 0 and spools.held == 0
    written.write_bytes(b"x" * (2 << 20))  # past the 1 MB allowance
    spool = spools.admit("key")
    with pytest.raises(GameLensError) as refused:
        spool.adopt(str(written))
    spool.close()
    assert refused.value.code == "busy" and spools._bytes == 0 and spools.held == 0


def test_a_stalled_reader_is_cut_off_and_frees_its_slot(live_rows, no_gc):
    """A client that stops reading holds its export slot and spool only for GAMELENS_EXPORT_SEND_TIMEOUT_S."""
    export = {"format": "csv", "fields": "app_id,name,genres,release_date"}
    small_window = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    with httpx.Client(transport=small_window, headers=AUTH, timeout=120) as stalled:
        held = [stalled.stream("GET", f"{live_rows}/api/v1/games", params=export) for _ in range(2)]
        for stream in held:
            assert stream.__enter__().status_code == 200  # headers came; the client reads nothing more
        assert _eventually(lambda: _open_spools() == 0, timeout=20)  # cut off after 1 s without progress
        r = httpx.get(f"{live_rows}/api/v1/games", params={**export, "limit": 5}, headers=AUTH, timeout=60)
        assert r.status_code == 200
        for stream in held:
            with contextlib.suppress(httpx.HTTPError):
                stream.__exit__(None, None, None)


@pytest.fixture(scope="module")
def live_rows(files):
    """A real uvicorn server (export send timeout 1 s) with 200,000 short rows."""
    table = sample_table()
    rows = [[*r[:7], "", "['English']", *r[9:]] for r in table[1:]]
    big = [table[0]] + [[*r[:1], str(10**6 + i), *r[2:]] for i, r in enumerate(rows * 2000)]
    (files.root / "stall_rows.csv").write_bytes(write_csv(big))
    with _serve(make_settings(export_send_timeout_s=1)) as base:
        rec = httpx.post(f"{base}/api/v1/uploads?wait=true", json={"url": files.url("stall_rows.csv")}, headers=AUTH,
                         timeout=120).json()
        assert rec["state"] == "succeeded", rec
        yield base


@contextlib.contextmanager
def _serve(settings):
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
