"""The upload API: asynchronous submit and progress, history, versions, concurrency, restarts."""

import errno
import gzip
import io
import os
import pathlib
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from gamelens.api import answers
from gamelens.ingest import received

from .conftest import (
    AUTH,
    SAMPLE,
    SHORT_GRACE,
    active_table,
    dataset_rows,
    engine_of,
    sample_table,
    upload,
    wait_state,
    write_csv,
)


def _count(client) -> int:
    return engine_of(client).select(f"SELECT count() FROM {active_table(client)}").scalar()


def _first_rows(files, name: str, n: int) -> str:
    (files.root / name).write_bytes(write_csv(sample_table()[: n + 1]))
    return files.url(name)


def test_submit_returns_202_and_location_then_progress(client, files):
    r = client.post("/api/v1/uploads", json={"url": files.url("sample.csv")})
    assert r.status_code == 202
    rec = r.json()
    answers.Upload.model_validate(rec)  # what OpenAPI declares (a route answering JSONResponse is not checked)
    assert r.headers["location"] == f"/api/v1/uploads/{rec['id']}"
    assert rec["state"] == "queued" and rec["url"] == files.url("sample.csv")
    done = wait_state(client, rec["id"], ("succeeded", "failed"))
    assert done["state"] == "succeeded", done
    size = (files.root / "sample.csv").stat().st_size
    assert done["bytes_received"] == size and done["bytes_expected"] == size
    assert done["rows_loaded"] == 100 and done["active"] and done["stored"]
    assert len(done["sha256"]) == 64
    answers.Upload.model_validate(client.post("/api/v1/uploads/sample?wait=true").json())
    assert 0 < done["stored_bytes"] < size  # compressed on disk
    assert {"download", "load", "swap"} <= set(done["timings_ms"]) <= {"download", "load", "swap", "indexes"}


def test_the_history_shows_a_running_uploads_progress_as_its_own_record_does(client, files):
    """The list showed a running upload's saved record (0 bytes received) while its own showed 5000 (helper-61)."""
    files.hold.clear()
    try:
        rec = client.post("/api/v1/uploads", json={"url": files.url("sample.csv", "hold")}).json()
        deadline = time.monotonic() + 10
        while not client.get(f"/api/v1/uploads/{rec['id']}").json()["bytes_received"]:
            assert time.monotonic() < deadline, "no byte arrived"
            time.sleep(0.05)
        listed = [r for r in client.get("/api/v1/uploads").json()["uploads"] if r["id"] == rec["id"]]
        own = client.get(f"/api/v1/uploads/{rec['id']}").json()
        assert listed[0]["state"] == "downloading" and listed[0]["bytes_received"] > 0, listed
        assert listed[0]["bytes_expected"] == own["bytes_expected"] == (files.root / "sample.csv").stat().st_size
    finally:
        files.hold.set()
    assert wait_state(client, rec["id"], ("succeeded", "failed"))["state"] == "succeeded"


def test_history_newest_first_and_404(client, files):
    a = upload(client, _first_rows(files, "ten.csv", 10))
    b = upload(client, f"{files.base}/status/404")
    history = client.get("/api/v1/uploads").json()["uploads"]
    assert [u["id"] for u in history] == [b["id"], a["id"]]
    assert [u["state"] for u in history] == ["failed", "succeeded"]
    r = client.get("/api/v1/uploads/999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_versions_kept_pruned_and_reactivated(make_client, files):
    client = make_client(keep_versions=2, **SHORT_GRACE)
    ids = [upload(client, _first_rows(files, f"n{n}.csv", n))["id"] for n in (10, 20, 30)]
    assert _count(client) == 30

    def stored() -> list[bool]:
        recs = {u["id"]: u for u in client.get("/api/v1/uploads").json()["uploads"]}
        assert recs[ids[2]]["active"]
        return [recs[i]["stored"] for i in ids]

    deadline = time.monotonic() + 20  # the oldest goes once no read can be on it (a short grace here)
    while stored() != [False, True, True]:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    r = client.post(f"/api/v1/uploads/{ids[1]}/activate")
    assert r.status_code == 200 and r.json()["active"]
    assert _count(client) == 20
    r = client.post(f"/api/v1/uploads/{ids[2]}/activate")
    assert _count(client) == 30

    r = client.post(f"/api/v1/uploads/{ids[0]}/activate")
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_not_kept"
    assert client.post("/api/v1/uploads/12345/activate").status_code == 404


def test_queries_during_an_upload_see_old_or_new_never_a_mix(client, files):
    """Pages read while a 6,000-row upload replaces the 100-row sample: each page's total and rows
    belong to one dataset, and the new one is what is served once the upload is done."""
    upload(client, files.url("sample.csv"))
    table = sample_table()
    big = table[:1] + [[*r[:1], str(10**7 + i), *r[2:]] for i, r in enumerate(table[1:] * 60)]  # new app_ids
    (files.root / "big6000.csv").write_bytes(write_csv(big))
    old_ids = {int(r[1]) for r in table[1:]}
    seen, wrong, stop = set(), [], threading.Event()

    def reader():
        while not stop.is_set():
            body = client.get("/api/v1/games", params={"limit": 1000, "fields": "app_id"}).json()
            ids = {r["app_id"] for r in body["rows"]}
            old = body["total"] == 100 and ids == old_ids
            new = body["total"] == 6000 and len(body["rows"]) == 1000 and min(ids) >= 10**7
            if not (old or new):
                wrong.append(body.get("error") or body["total"])
            seen.add(body["total"])

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    rec = upload(client, files.url("big6000.csv"))
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert rec["state"] == "succeeded"
    assert wrong == []
    assert seen == {100, 6000}
    assert client.get("/api/v1/games", params={"limit": 1}).json()["total"] == 6000


def test_uploads_run_one_at_a_time_in_order(client, files):
    files.hold.clear()
    first = client.post("/api/v1/uploads", json={"url": files.url("sample.csv", "hold")}).json()
    second = client.post("/api/v1/uploads", json={"url": _first_rows(files, "five.csv", 5)}).json()
    wait_state(client, first["id"], ("downloading",))
    assert client.get(f"/api/v1/uploads/{second['id']}").json()["state"] == "queued"
    files.hold.set()
    assert wait_state(client, second["id"], ("succeeded",))["active"]
    assert client.get(f"/api/v1/uploads/{first['id']}").json()["state"] == "succeeded"


def test_a_stop_never_marks_interrupted_an_upload_that_ended_meanwhile(client, files):
    """A stop lists the running uploads, then marks each interrupted; the worker may switch one in and record
    it between the two (a CI run saw the record say `interrupted` while the pointer served its data). The
    upload's end stands: here the stop marks the record object it listed once the upload has succeeded."""
    uploads = client.app.state.uploads
    rec = upload(client, files.url("sample.csv"))
    listed = next(r for r in uploads._records() if r.id == rec["id"])
    listed.state = "loading"  # as the stop listed it: running
    done = next(r for r in uploads._records() if r.id == rec["id"])
    uploads._set(listed, state=done.state, finished_at=done.finished_at)  # the worker's end, in between
    uploads._interrupt(listed, "The server shut down during this upload.")
    after = client.get(f"/api/v1/uploads/{rec['id']}").json()
    assert after["state"] == "succeeded" and after["active"], after


def test_killed_mid_download_is_interrupted_after_restart(server_process, files):
    server = server_process().start()
    with server.client() as http:
        http.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")})
        before = http.get("/api/v1/uploads").json()
        checksum = _checksum(http)
        files.hold.clear()
        rec = http.post("/api/v1/uploads", json={"url": files.url("sample.csv", "hold")}).json()
        incoming = server.data_dir / "incoming"
        piped = "GAMELENS_CLICKHOUSE_URL" not in server.env
        for _ in range(200):  # until bytes flow (and, loading through a pipe, the database reads it)
            now = http.get(f"/api/v1/uploads/{rec['id']}").json()
            if now["bytes_received"] and (not piped or (incoming.exists() and list(incoming.iterdir()))):
                break
            time.sleep(0.05)
        assert now["state"] == "downloading"
    server.kill()
    files.hold.set()
    if piped:
        assert list(incoming.iterdir())  # the kill left the load's pipe behind
    server.start()
    with server.client() as http:
        after = http.get(f"/api/v1/uploads/{rec['id']}").json()
        assert after["state"] == "interrupted" and after["error"]["code"] == "interrupted"
        assert http.get(f"/api/v1/uploads/{before['uploads'][0]['id']}").json()["active"]
        assert _checksum(http) == checksum  # every row of the previous dataset, unchanged
        assert not incoming.exists()  # cleaned at start-up
        again = http.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")}).json()
        assert again["state"] == "succeeded"
    server.stop()
    kept = sorted(f"games_v{i}" for i in (before["uploads"][0]["id"], again["id"]))
    kept += [f"elements_{name}" for name in kept]  # their element bitmaps (ingest/physical.elements_table)
    names = [n for n in tables_in(server.data_dir) if not n.startswith(("upload_claim_", "writer_lock_"))]
    assert sorted(names) == sorted(["active_version", "api_keys", "games", *kept, "uploads", "writer_lease"])


def _checksum(http) -> str:
    """sha256 of every stored row, exported in a fixed order."""
    import hashlib

    body = http.get("/api/v1/games", params={"format": "ndjson", "sort": "app_id"}).content
    assert body.count(b"\n") == 100
    return hashlib.sha256(body).hexdigest()


def tables_in(data_dir) -> list[str]:
    """The tables of a stopped server's data directory (read by another process: one per directory)."""
    code = ("import sys; from gamelens.engine import Engine; from gamelens.settings import Settings;"
            "from gamelens.store import Store;"
            "print('\\n'.join(r[0] for r in Store(Engine(Settings(data_dir=sys.argv[1]))).tables()))")
    out = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_unknown_route_and_bad_body_use_the_error_body(client):
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post("/api/v1/uploads", json={"link": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter"
    assert r.json()["error"]["param"] == "url"
    r = client.post("/api/v1/uploads", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("method,path", [
    ("get", "/api/v1/uploads"), ("get", "/api/v1/uploads/1"), ("post", "/api/v1/uploads/1/activate"),
    ("get", "/api/v1/keys"), ("post", "/api/v1/keys"), ("delete", "/api/v1/keys/nobody"), ("get", "/api/v1/schema"),
])
def test_a_query_parameter_a_request_does_not_read_is_refused(client, method, path):
    """A typo (`?limt=5`) is a 400 naming it, as on the reads and uploads, not a silently ignored word."""
    r = client.request(method.upper(), path, params={"limt": "5"}, json={"name": "x", "role": "reader"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"code": "invalid_parameter", "param": "limt", "value": "5", "allowed": [],
                                 "message": "Unknown parameter 'limt'. This request takes no query parameter."}


def test_dataset_unchanged_by_failed_upload(client, files):
    upload(client, files.url("sample.csv"))
    before = dataset_rows(client)
    upload(client, f"{files.base}/html")
    assert dataset_rows(client) == before


def test_upload_a_file_from_disk(client, files):
    """The same pipeline as a link: a multipart file is streamed to disk, loaded, swapped, recorded,
    and its copy removed."""
    data = (files.root / "sample.csv").read_bytes()
    r = client.post("/api/v1/uploads?wait=true", files={"file": ("my games.csv", data, "text/csv")})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 100 and rec["active"]
    assert (rec["source"], rec["url"], rec["bytes_received"]) == ("file", "my games.csv", len(data))
    assert "path" not in rec
    assert not list(engine_of(client).incoming.glob("upload-*"))  # the copy is gone
    assert client.get("/api/v1/games", params={"limit": 1}).json()["total"] == 100


def test_a_form_without_its_closing_boundary_is_refused(client, files):
    """A multipart body that stops before `--boundary--` may hold a file cut short: it was loaded and
    served (50 of 100 rows); now a 400, nothing stored."""
    upload(client, files.url("sample.csv"))
    served = dataset_rows(client)
    half = SAMPLE.read_bytes()[:SAMPLE.read_bytes().index(b"\n", len(SAMPLE.read_bytes()) // 2) + 1]
    body, ctype = _multipart("half.csv", half)
    cut = body[:body.rindex(b"\r\n--")]
    r = client.post("/api/v1/uploads?wait=true", content=cut, headers={"Content-Type": ctype})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "file"), r.text
    assert "closing boundary" in r.json()["error"]["message"]
    assert dataset_rows(client) == served
    assert not list(engine_of(client).incoming.glob("upload-*"))
    r = client.post("/api/v1/uploads?wait=true", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200 and r.json()["rows_loaded"] > 0, r.text


def test_upload_the_csv_itself_as_the_body(make_client, files):
    """`curl --data-binary @games.csv -H 'Content-Type: text/csv'`: the body is the file (it was a 400
    asking for JSON or a form), named by a Content-Disposition header if one came; capped as a file is,
    with or without Content-Length, leaving nothing behind."""
    client = make_client(max_upload_mb=1)
    data = (files.root / "sample.csv").read_bytes()
    r = client.post("/api/v1/uploads?wait=true", content=data, headers={"Content-Type": "text/csv; charset=utf-8"})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert (rec["state"], rec["rows_loaded"], rec["source"]) == ("succeeded", 100, "file")
    assert (rec["url"], rec["bytes_received"]) == ("upload.csv", len(data))
    for disposition, name in (('attachment; filename="../my games.csv"', "my games.csv"),
                              ("attachment; filename*=UTF-8''j%C3%A9u.csv", "jéu.csv"),  # RFC 6266's form
                              ('attachment; filename="' + "x" * 5000 + '"', "x" * 255),  # kept to 255
                              ('attachment; filename="C:\\Users\\a\\héllo €.csv"'.encode(),
                               "héllo €.csv"),  # UTF-8 bytes, as clients send them; a Windows path's name
                              ("attachment; filename*=UTF-8''a%00b%0Ac.csv", "abc.csv")):  # no control characters
        named = {"Content-Type": "application/csv", "Content-Disposition": disposition}
        rec = client.post("/api/v1/uploads?wait=true", content=data, headers=named).json()
        assert (rec["state"], rec["url"]) == ("succeeded", name), rec
    big = write_csv(sample_table()[:1] + sample_table()[1:] * 40)  # ~6.6 MB

    def chunked():
        for i in range(0, len(big), 64 * 1024):
            yield big[i:i + 64 * 1024]

    for body in (big, chunked()):
        r = client.post("/api/v1/uploads", content=body, headers={"Content-Type": "text/csv"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text  # one code at any size over
    assert not list(engine_of(client).incoming.glob("upload-*"))
    assert client.get("/api/v1/games", params={"limit": 1}).json()["version"] == rec["id"]


def _zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("games.csv", data)
    return out.getvalue()


def test_a_gzip_file_is_unpacked_as_it_streams(make_client, files):
    """`games.csv.gz` by link, form, body or in two gzip members one after another loads as the CSV
    does (it failed as not UTF-8), so does one padded with NULs; one cut short, one that is not gzip past
    its first bytes, one followed by other bytes, one that unpacks past the cap and a zip archive are
    refused, each saying why (a zip was "not UTF-8", so were a gzip file or a zip archive gzipped again), and
    the data served stays."""
    client = make_client(max_upload_mb=1)
    data = (files.root / "sample.csv").read_bytes()
    assert upload(client, files.url("sample.csv"))["state"] == "succeeded"
    served = dataset_rows(client)
    packed = gzip.compress(data)
    (files.root / "sample.csv.gz").write_bytes(packed)
    half = data.index(b"\n", len(data) // 2) + 1
    (files.root / "members.csv.gz").write_bytes(gzip.compress(data[:half]) + gzip.compress(data[half:]))
    # padded with NULs after its end, as tape and block tools pad (gzip and Python's gzip skip them)
    (files.root / "padded.csv.gz").write_bytes(packed + b"\0" * 700)
    for name in ("sample.csv.gz", "members.csv.gz", "padded.csv.gz"):
        rec = upload(client, files.url(name))
        assert (rec["state"], rec["rows_loaded"]) == ("succeeded", 100), rec
        assert dataset_rows(client) == served
    # a host that sends the first byte alone (the gzip check read the first chunk only: "not UTF-8")
    rec = upload(client, files.url("sample.csv.gz", "byte-first"))
    assert (rec["state"], rec["rows_loaded"]) == ("succeeded", 100), rec
    # stacked Content-Encoding is refused: httpx unpacked every layer at once (a few KB -> gigabytes)
    r = client.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv", "gzip-gzip")})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "content_encoding"), r.text
    rec = client.post("/api/v1/uploads?wait=true", files={"file": ("games.csv.gz", packed)}).json()
    assert (rec["state"], rec["rows_loaded"], rec["bytes_received"]) == ("succeeded", 100, len(packed)), rec
    rec = client.post("/api/v1/uploads?wait=true", content=packed, headers={"Content-Type": "text/csv"}).json()
    assert (rec["state"], rec["rows_loaded"]) == ("succeeded", 100), rec
    served = dataset_rows(client)
    bomb = gzip.compress(data + b"\n" * (8 << 20))  # 8 MB unpacked from ~30 KB
    assert len(bomb) < 1 << 20
    for sent, code, status in ((packed[:len(packed) // 2], "truncated", 422),
                               (packed[:10] + b"not deflate at all" * 10, "bad_gzip", 422),
                               (bomb, "too_large", 413), (packed + b"trailing", "bad_gzip", 422),
                               (packed + b"\n", "bad_gzip", 422),  # it said "cut short"
                               (_zipped(data), "zip_not_csv", 422),
                               (gzip.compress(packed), "bad_gzip", 422),  # it said "not UTF-8"
                               (gzip.compress(_zipped(data)), "zip_not_csv", 422)):
        r = client.post("/api/v1/uploads?wait=true", files={"file": ("games.csv.gz", sent)})
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert dataset_rows(client) == served


@pytest.mark.above_the_engine
def test_a_sent_file_that_cannot_be_removed_costs_nothing_but_the_file(client, files, monkeypatch, caplog):
    """Removing the upload's copy can fail (permissions, a busy disk): the upload still succeeds, its
    waiting request is answered, the worker takes the next upload, and the copy is left for the next
    start's sweep of incoming/ (test_uploads_api's kill test), with a logged error."""
    real = pathlib.Path.unlink

    def refuse_sent_files(self, missing_ok=False):
        if self.name.startswith("upload-"):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", refuse_sent_files)
    data = (files.root / "sample.csv").read_bytes()
    for name in ("first.csv", "second.csv"):
        r = client.post("/api/v1/uploads?wait=true", files={"file": (name, data, "text/csv")})
        assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    assert len(list(engine_of(client).incoming.glob("upload-*"))) == 2
    assert "could not be removed" in caplog.text


def test_a_bad_file_fails_like_a_bad_link_and_keeps_the_data(client, files):
    upload(client, files.url("sample.csv"))
    before = dataset_rows(client)
    rows = sample_table()
    rows[3][5] = "abc"
    r = client.post("/api/v1/uploads?wait=true", files={"file": ("bad.csv", write_csv(rows), "text/csv")},
                    data={"max_rejected_rows": "0"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_rows"
    assert dataset_rows(client) == before
    # the failed record counts what it lists (it said rows_rejected 0 beside a listed row)
    failed = r.json()["upload"]
    assert failed["rows_rejected"] == 1 and len(failed["rejected_rows"]) == 1, failed
    assert r.json()["error"]["param"] == "file"
    tolerated = client.post("/api/v1/uploads?wait=true", files={"file": ("bad.csv", write_csv(rows), "text/csv")},
                            data={"max_rejected_rows": "1"}).json()
    assert tolerated["state"] == "succeeded" and tolerated["rows_rejected"] == 1
    # the CSV as the body: its tolerance in the query string (it had none but the default)
    raw = {"Content-Type": "text/csv"}
    r = client.post("/api/v1/uploads?wait=true&max_rejected_rows=0", content=write_csv(rows), headers=raw)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_rows", r.text
    r = client.post("/api/v1/uploads?wait=true&max_rejected_rows=1", content=write_csv(rows), headers=raw)
    assert r.status_code == 200 and r.json()["rows_rejected"] == 1, r.text
    for bad in ("-1", "lots", "1000001", "1_0", "5.0", "+5", "²"):  # the form's rule, before the file is read
        r = client.post("/api/v1/uploads", params={"max_rejected_rows": bad}, content=write_csv(rows), headers=raw)
        assert r.status_code == 400 and r.json()["error"]["param"] == "max_rejected_rows", (bad, r.text)
    # a link's and a form's go where they always went: in the query string it would be one of two places
    r = client.post("/api/v1/uploads?max_rejected_rows=1", json={"url": files.url("sample.csv")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_rejected_rows", r.text
    r = client.post("/api/v1/uploads?max_rejected_rows=1", files={"file": ("bad.csv", write_csv(rows), "text/csv")})
    assert r.status_code == 400 and "form field" in r.json()["error"]["message"], r.text


def test_a_file_of_rejected_rows_only_fails_whatever_it_tolerates(client, files):
    """Tolerated, its rows were dropped and an empty version was switched in: every read answered 0
    games (helper-61). It fails as a file with no rows does, and the data served stays."""
    upload(client, files.url("sample.csv"))
    before = dataset_rows(client)
    rows = sample_table()
    for row in rows[1:]:
        row[rows[0].index("Price")] = "abc"
    r = client.post("/api/v1/uploads?wait=true", files={"file": ("all_bad.csv", write_csv(rows), "text/csv")},
                    data={"max_rejected_rows": "1000"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_rows", r.text
    assert r.json()["error"]["message"].startswith("Every one of the file's 100 row(s)"), r.text
    assert r.json()["upload"]["state"] == "failed" and r.json()["upload"]["rows_rejected"] == 100
    assert dataset_rows(client) == before
    assert client.get("/api/v1/games?limit=1").json()["total"] == 100


def test_file_uploads_are_capped_and_checked(make_client, files):
    client = make_client(max_upload_mb=1)
    big = write_csv(sample_table()[:1] + sample_table()[1:] * 40)  # ~6.6 MB
    r = client.post("/api/v1/uploads", files={"file": ("big.csv", big, "text/csv")})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"  # as the route says it under the cap
    assert "1048576 bytes (GAMELENS_MAX_UPLOAD_MB)" in r.json()["error"]["message"], r.text  # not the form's 64 KB more
    r = client.post("/api/v1/uploads", content=big, headers={"Content-Type": "text/csv"})
    assert r.status_code == 413 and "1048576 bytes (GAMELENS_MAX_UPLOAD_MB)" in r.json()["error"]["message"], r.text
    assert not list(engine_of(client).incoming.glob("upload-*"))
    r = client.post("/api/v1/uploads", files={"other": ("x.csv", b"a,b\n", "text/csv")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = client.post("/api/v1/uploads", files={"file": ("x.csv", b"a,b\n", "text/csv")},
                    data={"max_rejected_rows": "lots"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_rejected_rows"


def _multipart(name: str, data: bytes, boundary: str = "gamelens-test-boundary") -> tuple[bytes, str]:
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _partial_files(server) -> list:
    return list((server.data_dir / "incoming").glob("upload-*"))


def test_file_uploads_are_capped_while_they_stream(server_process):
    """Without Content-Length (a chunked body) the cap holds as the bytes arrive; a client that sends
    half a file and disconnects leaves nothing behind; the server answers on."""
    import socket

    server = server_process(max_upload_mb=1).start()
    body, ctype = _multipart("big.csv", write_csv(sample_table()[:1] + sample_table()[1:] * 40))  # ~6.6 MB

    def chunked():
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    with server.client() as http:
        r = http.post("/api/v1/uploads", content=chunked(), headers={"Content-Type": ctype})
        assert "content-length" not in r.request.headers
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text  # one code at any size over
        assert not _partial_files(server)
        records = len(http.get("/api/v1/uploads").json()["uploads"])

    small, _ = _multipart("half.csv", SAMPLE.read_bytes())
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n"
                     f"Content-Type: {ctype}\r\nContent-Length: {len(small)}\r\n\r\n".encode())
        sock.sendall(small[:len(small) // 2])
        deadline = time.monotonic() + 10
        while not _partial_files(server) and time.monotonic() < deadline:  # the server is writing the part
            time.sleep(0.05)
        assert _partial_files(server)
    deadline = time.monotonic() + 10
    while _partial_files(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _partial_files(server)
    with server.client() as http:
        assert http.get("/healthz").status_code == 200
        assert len(http.get("/api/v1/uploads").json()["uploads"]) == records


def test_load_the_bundled_sample(client):
    rec = client.post("/api/v1/uploads/sample?wait=true").json()
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 100 and rec["source"] == "sample"
    assert client.get("/api/v1/games/20200").json()["name"] == "Galactic Bowling"


class _FullDisk:
    """A file on a disk with `room` bytes left: a write past it fails as the OS's does (ENOSPC), and so
    does the flush of what is buffered at close."""

    def __init__(self, path, room: int):
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close)
        self.room, self.full = room, False

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.full = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_a_file_arrives_is_a_507_and_leaves_nothing(make_client, monkeypatch):
    client = make_client()
    monkeypatch.setattr(received, "open", lambda path, mode: _FullDisk(path, 1000), raising=False)
    r = client.post("/api/v1/uploads", files={"file": ("games.csv", write_csv(sample_table()), "text/csv")})
    assert r.status_code == 507 and r.json()["error"]["code"] == "insufficient_storage", r.text
    assert client.get("/api/v1/uploads").json()["uploads"] == []
    assert not list(client.app.state.engine.incoming.iterdir())
