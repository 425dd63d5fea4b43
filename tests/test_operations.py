"""Operations: JSON logs with request ids, metrics, graceful shutdown, engine failure mid-load,
and queries running throughout an upload."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from gamelens.api.app import create_app
from gamelens.ingest import load
from gamelens.observe import JsonFormatter
from gamelens.records import RUNNING, UploadRecord

from .conftest import AUTH, dataset_rows, long_statement, make_settings, sample_table, table_names, upload, write_csv


@pytest.mark.above_the_engine
def test_json_logs_carry_the_request_id(server_process, files):
    server = server_process().start()
    with server.client() as http:
        r = http.get("/api/v1/schema", headers={"X-Request-ID": "trace-abc.123"})
        assert r.headers["x-request-id"] == "trace-abc.123"
        generated = http.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32
        http.get("/api/v1/games?evil=1")
    server.stop()
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    assert len(lines) >= 4 and {"ts", "level", "logger", "msg"} <= set(lines[0])
    access = [x for x in lines if x["logger"] == "gamelens.access"]
    mine = [x for x in access if x.get("request_id") == "trace-abc.123"]
    assert mine and mine[0]["path"] == "/api/v1/schema" and mine[0]["status"] == 200 and "duration_ms" in mine[0]
    assert any(x.get("request_id") == generated for x in access)
    assert any(x["status"] == 400 and x["route"] == "/api/v1/games" for x in access)


def test_metrics(client, files):
    upload(client, files.url("sample.csv"))
    client.get("/api/v1/games?name=bowl")
    client.get("/api/v1/games?price=abc")
    text = client.get("/metrics").text
    assert 'gamelens_requests_total{method="GET",route="/api/v1/games",status="200"}' in text
    assert 'gamelens_requests_total{method="GET",route="/api/v1/games",status="400"}' in text
    assert "gamelens_request_seconds_bucket" in text
    assert 'gamelens_uploads_total{state="succeeded"}' in text
    assert "gamelens_upload_rows_total" in text and "gamelens_engine_errors_total" in text
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401


def test_graceful_shutdown_marks_the_running_upload(server_process, files):
    server = server_process(shutdown_grace_s=1).start()
    with server.client() as http:
        first = http.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")}).json()
        files.hold.clear()
        rec = http.post("/api/v1/uploads", json={"url": files.url("sample.csv", "hold")}).json()
        queued = http.post("/api/v1/uploads", json={"url": files.url("sample.csv")}).json()
        sent = http.post("/api/v1/uploads", files={"file": ("games.csv", write_csv(sample_table()), "text/csv")}).json()
        for _ in range(200):
            if http.get(f"/api/v1/uploads/{rec['id']}").json()["bytes_received"]:
                break
            time.sleep(0.05)
    incoming = server.data_dir / "incoming"
    assert len(list(incoming.glob("upload-*"))) == 1  # the queued upload's file, waiting its turn
    server.stop()  # SIGTERM
    files.hold.set()
    assert "marked interrupted at shutdown" in server.log.read_text()
    assert not list(incoming.glob("upload-*"))  # a file that never started goes at the stop, not the next start
    # The load's statement was still reading the download: the shutdown waits for it to end (cut at
    # the next block) before the engine closes; chDB crashes the process when a statement outlives it.
    assert server.proc.returncode == -signal.SIGTERM, server.log.read_text()[-3000:]  # uvicorn re-raises it
    server.start()
    with server.client() as http:
        for upload_id in (rec["id"], queued["id"], sent["id"]):
            after = http.get(f"/api/v1/uploads/{upload_id}").json()
            assert after["state"] == "interrupted" and "shut down" in after["error"]["message"], after
        assert http.get(f"/api/v1/uploads/{first['id']}").json()["active"]


def test_a_request_waiting_for_an_upload_is_answered_at_a_stop(server_process, files):
    """SIGTERM while `POST /uploads?wait=true` waits: when the upload's grace ends it gets a 503
    shutting_down JSON body naming the upload, not uvicorn's plain-text 500 when its own wait for
    requests in flight runs out; a queued upload never starts; the process exits by the signal."""
    server = server_process(shutdown_grace_s=1).start()
    answered: dict[str, object] = {}

    def post(name: str, url: str) -> None:
        with server.client() as http:
            answered[name] = http.post("/api/v1/uploads?wait=true", json={"url": url})

    files.hold.clear()
    waiting = [threading.Thread(target=post, args=("running", files.url("sample.csv", "hold")))]
    try:
        waiting[0].start()
        with server.client() as http:
            for _ in range(200):  # the upload is under way: its first bytes are in
                shown = http.get("/api/v1/uploads").json()["uploads"]
                if shown and http.get(f"/api/v1/uploads/{shown[0]['id']}").json()["bytes_received"]:
                    break
                time.sleep(0.05)
            waiting.append(threading.Thread(target=post, args=("queued", files.url("sample.csv"))))
            waiting[1].start()
            for _ in range(200):
                if len(http.get("/api/v1/uploads").json()["uploads"]) == 2:
                    break
                time.sleep(0.05)
        server.stop()  # SIGTERM
        for thread in waiting:
            thread.join(30)
    finally:
        files.hold.set()
    assert server.proc.returncode == -signal.SIGTERM, server.log.read_text()[-3000:]  # uvicorn re-raises it
    for name, r in answered.items():
        assert r.status_code == 503 and r.headers["content-type"] == "application/json", (name, r.text)
        body = r.json()
        assert body["error"]["code"] == "shutting_down" and r.headers["retry-after"], (name, body)
        assert r.headers["location"] == f"/api/v1/uploads/{body['upload']['id']}"
    assert answered["queued"].json()["upload"]["started_at"] is None  # never started (marked by the stop next)
    assert "waiting for its turn" in answered["queued"].json()["error"]["message"]  # not "did not end"
    assert "did not end within" in answered["running"].json()["error"]["message"]
    log = server.log.read_text()
    assert "timeout graceful shutdown exceeded" not in log and "marked interrupted" in log, log[-3000:]
    assert not (server.data_dir / "server.json").exists()  # a stop by SIGTERM removes the address too
    server.start()
    with server.client() as http:
        for r in answered.values():
            after = http.get(r.headers["location"]).json()
            assert after["state"] == "interrupted" and "shut down" in after["error"]["message"], after
        assert http.get("/api/v1/games?limit=1").status_code == 409  # nothing was ever switched in


@pytest.mark.above_the_engine
def test_requests_waiting_for_uploads_leave_the_server_answering(server_process, files):
    """Forty-two `?wait=true` uploads queued behind a link that stalls: health, readiness and reads still
    answer. Each wait held one of the 40 threads sync routes run in, so they all waited for the link."""
    server = server_process(uploads_per_hour=100).start()
    with server.client() as http:
        assert http.post("/api/v1/uploads/sample?wait=true").status_code == 200
    answered: list[int] = []
    (files.root / "not-games.csv").write_bytes(b"AppID,Title\n1,2\n")  # each fails at once when its link answers

    def post() -> None:
        with server.client(timeout=120) as http:
            answered.append(http.post("/api/v1/uploads?wait=true", json={"url": files.url("not-games.csv", "held")})
                            .status_code)

    files.hold.clear()
    waiting = [threading.Thread(target=post) for _ in range(42)]
    try:
        for thread in waiting:
            thread.start()
        with server.client(timeout=20) as http:  # they would wait until the link answers
            for _ in range(200):
                if len(http.get("/api/v1/uploads").json()["uploads"]) == 43:
                    break
                time.sleep(0.1)
            assert len(http.get("/api/v1/uploads").json()["uploads"]) == 43
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").status_code == 200
            assert http.get("/api/v1/games?limit=1").json()["total"] == 100
    finally:
        files.hold.set()
    for thread in waiting:
        thread.join(120)
    assert answered == [422] * 42  # each waited for its upload to end (missing columns)


# The start of a multipart body: the file's part headers and its first line.
_FORM_START = (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="g.csv"\r\n'
               b"Content-Type: text/csv\r\n\r\nAppID,Name\r\n")


def _send_part_of_a_body(server, content_type: str, length: int, first: bytes,
                         path: str = "/api/v1/uploads?wait=true", method: str = "POST") -> socket.socket:
    """A request that declares `length` bytes of body, sends `first`, and then nothing."""
    return _send_raw(server, f"{method} {path}", f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n",
                     first)


def _send_raw(server, request_line: str, headers: str, first: bytes = b"") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = (f"{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH['Authorization']}\r\n"
            f"Connection: close\r\n{headers}\r\n")
    conn.sendall(head.encode() + first)
    return conn


def _read_answer(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    with conn:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.above_the_engine
def test_a_body_that_stalls_at_a_stop_is_answered_503_at_once(server_process):
    """SIGTERM while clients are part-way through sending a body (a file; a link's JSON; a new key's
    JSON, which FastAPI itself reads) and then send nothing: each gets a 503 shutting_down JSON body at
    once, not uvicorn's plain-text 500 when its wait (GAMELENS_SHUTDOWN_GRACE_S + 5 s) runs out, nor
    FastAPI's 400 for a body it could not read; and the file's part is removed."""
    server = server_process(shutdown_grace_s=1).start()
    stalled = [_send_part_of_a_body(server, "multipart/form-data; boundary=b0undary", 100_000, _FORM_START),
               _send_part_of_a_body(server, "application/json", 100, b'{"url": "http://'),
               _send_part_of_a_body(server, "application/json", 100, b'{"name": "ci', "/api/v1/keys")]
    incoming = server.data_dir / "incoming"
    for _ in range(100):  # the file's part is on disk: the request is in the app
        if incoming.exists() and list(incoming.glob("upload-*")):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    signalled = time.monotonic()
    server.proc.terminate()
    answers = [_read_answer(conn) for conn in stalled]
    took = time.monotonic() - signalled
    assert server.proc.wait(30) == -signal.SIGTERM
    for status, headers, body in answers:
        assert status == 503 and headers["content-type"] == "application/json", (status, body)
        assert json.loads(body)["error"]["code"] == "shutting_down" and headers["retry-after"] == "30"
    assert took < 3, took  # uvicorn cancels requests after 1 + 5 s
    assert "timeout graceful shutdown exceeded" not in server.log.read_text()
    assert not list(incoming.glob("upload-*"))


@pytest.mark.above_the_engine
def test_a_body_that_stalls_is_answered_408(server_process):
    """Clients that send part of a body (a file; a link's JSON; a new key's JSON) and then nothing: after
    GAMELENS_BODY_TIMEOUT_S each gets a 408 JSON body, and the file's part is removed. uvicorn waits for a
    body forever: the connection and the partial file were held until the client left."""
    server = server_process(body_timeout_s=1).start()
    stalled = [_send_part_of_a_body(server, "multipart/form-data; boundary=b0undary", 100_000, _FORM_START),
               _send_part_of_a_body(server, "text/csv", 100_000, b"AppID,Name\r\n"),
               _send_part_of_a_body(server, "application/json", 100, b'{"url": "http://'),
               _send_part_of_a_body(server, "application/json", 100, b'{"name": "ci', "/api/v1/keys")]
    for status, headers, body in [_read_answer(conn) for conn in stalled]:
        assert status == 408 and headers["content-type"] == "application/json", (status, body)
        error = json.loads(body)["error"]
        assert error["code"] == "body_timeout" and "GAMELENS_BODY_TIMEOUT_S" in error["message"], error
    assert not list((server.data_dir / "incoming").glob("upload-*"))
    with server.client() as http:
        assert http.get("/api/v1/uploads").json()["uploads"] == []  # nothing was queued


@pytest.mark.above_the_engine
def test_a_client_that_leaves_mid_body_is_no_server_error(server_process):
    """A link's JSON body cut off by the client: logged as its 400, not as an unhandled error and a 500."""
    server = server_process().start()
    _send_part_of_a_body(server, "application/json", 100, b'{"url": "http://').close()
    for _ in range(100):
        access = [json.loads(line) for line in server.log.read_text().splitlines()
                  if line.startswith("{") and '"gamelens.access"' in line]
        if any(x["path"] == "/api/v1/uploads" for x in access):
            break
        time.sleep(0.05)
    assert [x["status"] for x in access if x["path"] == "/api/v1/uploads"] == [400]
    assert "unhandled error" not in server.log.read_text()


@pytest.mark.above_the_engine
def test_an_export_whose_declared_body_never_came_streams_whole_through_a_stop(server_process, files):
    """Exports in flight at SIGTERM, the client reading nothing yet: one declared a body it never sent,
    one a chunked body with no chunk, one no body. Each streams whole: a streamed answer's wait for a
    disconnect, begun before the answer, is never refused as a body still arriving."""
    server = server_process(shutdown_grace_s=15, exports_per_key=5).start()
    (files.root / "big6000e.csv").write_bytes(write_csv(sample_table()[:1] + sample_table()[1:] * 60))
    with server.client() as http:
        assert http.post("/api/v1/uploads?wait=true", json={"url": files.url("big6000e.csv")}).status_code == 200
    export = "GET /api/v1/games?format=csv&sort=-rating"
    conns = [_send_raw(server, export, "Content-Length: 100\r\n"),
             _send_raw(server, export, "Transfer-Encoding: chunked\r\n"),
             _send_raw(server, export, "")]
    time.sleep(1.5)  # the answers began, and wait for the client to read
    server.proc.terminate()
    time.sleep(0.5)
    for status, headers, body in [_read_answer(conn) for conn in conns]:
        assert status == 200 and len(body) == int(headers["content-length"]) > 5_000_000, (status, len(body))
    assert server.proc.wait(30) == -signal.SIGTERM
    assert "unhandled error" not in server.log.read_text()


@pytest.mark.parametrize("path,content_type,first", [
    ("/api/v1/uploads", "application/json", b'{"url": "http://'),
    ("/api/v1/keys", "application/json", b'{"name": "ci'),  # a body FastAPI reads itself
    ("/api/v1/uploads", "multipart/form-data; boundary=b0undary", _FORM_START),
], ids=["link", "key", "file"])
@pytest.mark.above_the_engine
def test_every_route_tells_a_client_that_left_mid_body_apart(make_client, path, content_type, first):
    """Part of a body, then the client's disconnect (ASGI messages to the real app): a 400
    client_disconnected on every route that reads a body, and no file left behind."""
    client = make_client()
    messages = [{"type": "http.request", "body": first, "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    headers = [(b"host", b"x"), (b"content-type", content_type.encode()), (b"content-length", b"1000"),
               *((k.lower().encode(), v.encode()) for k, v in AUTH.items())]
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "state": {}}
    client.portal.call(client.app, scope, receive, send)
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert (sent[0]["status"], body["error"]["code"]) == (400, "client_disconnected"), body
    incoming = client.app.state.engine.incoming
    assert not incoming.exists() or not list(incoming.iterdir())


@pytest.mark.above_the_engine
def test_a_request_whose_body_is_in_is_answered_whole_during_a_stop(make_client, files):
    """Once a stop began, only a body still arriving is refused: an export sent with a (complete) body
    streams whole, its answer's wait for a disconnect untouched; a complete new key's body is read."""
    client = make_client()
    upload(client, files.url("sample.csv"))
    expected = client.get("/api/v1/games?format=csv&fields=app_id,name").text
    client.app.state.uploads.leaving_at = time.monotonic()
    r = client.request("GET", "/api/v1/games?format=csv&fields=app_id,name", content=b"{}",
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.text == expected and expected.count("\n") == 101
    r = client.post("/api/v1/keys", json={"name": "during-a-stop", "role": "reader"})
    assert r.status_code == 201, r.text


def _wait_in_background(client: TestClient, url: str) -> tuple[threading.Thread, list]:
    answered: list = []
    thread = threading.Thread(target=lambda: answered.append(client.post("/api/v1/uploads?wait=true",
                                                                         json={"url": url})))
    thread.start()
    return thread, answered


def _running(client: TestClient) -> None:
    for _ in range(200):
        shown = client.get("/api/v1/uploads").json()["uploads"]
        if shown and client.get(f"/api/v1/uploads/{shown[0]['id']}").json()["bytes_received"]:
            return
        time.sleep(0.05)
    raise AssertionError("the upload did not start")


@pytest.mark.above_the_engine
@pytest.mark.parametrize(("grace", "status"), [(30, 200), (0.5, 503)], ids=["ends_within", "outlasts"])
def test_a_waiting_request_is_answered_by_the_end_of_a_stop_s_grace(make_client, files, grace, status):
    """A stop signal (Uploads.leaving_at, set by `gamelens serve`) gives the running upload its grace: one
    that ends within it is answered as usual, one that outlasts it with a 503 shutting_down."""
    client = make_client(shutdown_grace_s=grace)
    files.hold.clear()
    try:
        thread, answered = _wait_in_background(client, files.url("sample.csv", "hold"))
        _running(client)
        client.app.state.uploads.leaving_at = time.monotonic()
        if status == 503:
            thread.join(30)  # the grace ends while the host still holds the file back
    finally:
        files.hold.set()
    thread.join(60)
    r = answered[0]
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["state"] == "succeeded"
    else:
        assert r.json()["error"]["code"] == "shutting_down" and r.json()["upload"]["state"] in RUNNING, r.text


@pytest.mark.above_the_engine
def test_a_waited_upload_this_server_may_no_longer_write_is_a_409(make_client, files):
    """No stop under way, but the writer lease was lost after the API took the upload (its writer check
    said yes) and before the worker started it: the upload is interrupted, and a waiting request says so
    with a 409, not a 200. (Lost before, the upload is refused up front: api/auth.writer.)"""
    client = make_client()
    answers = iter([True])  # the API's check; every later one (the worker's) finds the lease lost
    client.app.state.uploads.may_write = lambda: next(answers, False)
    r = client.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "interrupted" and r.json()["upload"]["state"] == "interrupted"
    assert "writer" in r.json()["error"]["message"]


@pytest.mark.above_the_engine
def test_a_server_that_began_to_stop_takes_no_new_upload(make_client, files):
    """Link, sample and file alike: a 503 shutting_down, no record, and no file left behind."""
    client = make_client()
    client.app.state.uploads.leaving_at = time.monotonic()
    answers = [client.post("/api/v1/uploads", json={"url": files.url("sample.csv")}),
               client.post("/api/v1/uploads/sample?wait=true"),
               client.post("/api/v1/uploads", files={"file": ("games.csv", write_csv(sample_table()), "text/csv")})]
    for r in answers:
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down", r.text
        assert r.headers["retry-after"]
    assert client.get("/api/v1/uploads").json()["uploads"] == []
    incoming = client.app.state.engine.incoming
    assert not incoming.exists() or not list(incoming.iterdir())


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_engine_failure_mid_load_keeps_the_previous_dataset(files):
    settings = make_settings()
    with TestClient(create_app(settings), headers=AUTH) as client:
        upload(client, files.url("sample.csv"))
        before = dataset_rows(client)
    big = sample_table()[:1] + sample_table()[1:] * 30
    (files.root / "big3000.csv").write_bytes(write_csv(big))
    starved = settings.model_copy(update={"load_max_memory_mb": 1})  # the INSERT cannot get its memory
    with TestClient(create_app(starved), headers=AUTH) as client:
        r = client.post("/api/v1/uploads?wait=true", json={"url": files.url("big3000.csv")})
        assert r.status_code == 422 and r.json()["upload"]["state"] == "failed", r.json()
        assert r.json()["error"]["code"] == "load_out_of_memory"
        assert dataset_rows(client) == before
        assert not any(n.startswith("stage_") for n in table_names(client.app.state.engine))


def test_a_disk_that_fills_up_during_a_load_is_a_507_and_keeps_the_previous_dataset(client, files, monkeypatch):
    """The engine refuses to write a part when its disk has too little room (NOT_ENOUGH_SPACE). Here the
    real engine is told that it needs more room than any disk has; a full disk (a small tmpfs, by hand)
    fails the same way, "Cannot reserve 9.38 MiB, not enough space"."""
    upload(client, files.url("sample.csv"))
    before = dataset_rows(client)
    monkeypatch.setitem(load.CSV_SETTINGS, "min_free_disk_bytes_to_perform_insert", 2**62)
    r = client.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")})
    assert r.status_code == 507, r.json()
    assert r.json()["error"]["code"] == "insufficient_storage" and r.json()["upload"]["state"] == "failed"
    assert "disk" in r.json()["upload"]["error"]["message"]
    assert dataset_rows(client) == before
    assert not any(n.startswith("stage_") for n in table_names(client.app.state.engine))


def _an_upload_whose_end_is_refused(client, files, monkeypatch) -> tuple[int, int]:
    """An upload on a full disk: the real engine refuses every write of the upload worker (records
    included) and the load. Returns its id and the dataset's rows before it."""
    upload(client, files.url("sample.csv"))
    before = dataset_rows(client)
    uploads = client.app.state.uploads
    monkeypatch.setitem(uploads.wstore._writes, "min_free_disk_bytes_to_perform_insert", 2**62)
    monkeypatch.setitem(load.CSV_SETTINGS, "min_free_disk_bytes_to_perform_insert", 2**62)
    r = client.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")})
    assert r.status_code == 507, r.json()
    assert r.json()["upload"]["state"] == "failed"
    return r.json()["upload"]["id"], before


def test_an_upload_whose_last_record_cannot_be_written_still_ends_and_is_written_later(client, files, monkeypatch):
    """On a full disk the upload's own record may not be writable either. The process that ran it still
    tells how it ended (wait=true, GET), and writes the record once the database takes writes again."""
    upload_id, before = _an_upload_whose_end_is_refused(client, files, monkeypatch)
    uploads = client.app.state.uploads
    assert client.get(f"/api/v1/uploads/{upload_id}").json()["state"] == "failed"
    listed = {u["id"]: u for u in client.get("/api/v1/uploads").json()["uploads"]}
    assert listed[upload_id]["state"] == "failed"
    stored = UploadRecord.model_validate_json(uploads.store.upload_docs(upload_id)[0])
    assert stored.running  # the database has not taken the record yet

    monkeypatch.delitem(uploads.wstore._writes, "min_free_disk_bytes_to_perform_insert")
    deadline = time.monotonic() + 30
    while stored.running and time.monotonic() < deadline:
        time.sleep(0.2)
        stored = UploadRecord.model_validate_json(uploads.store.upload_docs(upload_id)[0])
    assert stored.state == "failed" and stored.error["code"] == "insufficient_storage"
    assert dataset_rows(client) == before


def test_a_sent_file_whose_first_record_is_refused_is_not_left_on_disk(client, monkeypatch):
    """On a full disk the worker's first write (the record saying the upload began) is refused: the
    upload fails at once, and the file the request sent goes all the same (not only at the next start)."""
    uploads = client.app.state.uploads
    monkeypatch.setitem(uploads.wstore._writes, "min_free_disk_bytes_to_perform_insert", 2**62)
    r = client.post("/api/v1/uploads?wait=true", files={"file": ("games.csv", write_csv(sample_table()), "text/csv")})
    assert r.status_code == 507, r.json()
    assert r.json()["upload"]["state"] == "failed"
    assert [p.name for p in uploads.engine.incoming.iterdir()] == []


@pytest.mark.above_the_engine
def test_a_writer_that_lost_its_lease_leaves_its_unwritten_records_to_its_successor(client, files, monkeypatch):
    """Once another process is the writer, its start-up completed the records this one could not write
    (recover): this one drops them, writes none of them, and shows the database's."""
    upload_id, _ = _an_upload_whose_end_is_refused(client, files, monkeypatch)
    uploads = client.app.state.uploads
    monkeypatch.setattr(uploads, "may_write", lambda: False)  # a lost lease is never found again
    monkeypatch.delitem(uploads.wstore._writes, "min_free_disk_bytes_to_perform_insert")
    uploads._write_unwritten()
    stored = UploadRecord.model_validate_json(uploads.store.upload_docs(upload_id)[0])
    assert stored.running and not uploads._unwritten
    assert client.get(f"/api/v1/uploads/{upload_id}").json()["state"] == stored.state


def test_twenty_queries_during_an_upload_see_old_or_new(client, files):
    upload(client, files.url("sample.csv"))
    big = sample_table()[:1] + sample_table()[1:] * 60
    (files.root / "big6000b.csv").write_bytes(write_csv(big))
    seen, errors, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            r = client.get("/api/v1/games?limit=1&fields=app_id")
            if r.status_code != 200:
                errors.append(r.text)
            else:
                seen.append(r.json()["total"])

    threads = [threading.Thread(target=reader) for _ in range(20)]
    for t in threads:
        t.start()
    rec = upload(client, files.url("big6000b.csv"))
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert rec["state"] == "succeeded"
    assert errors == []
    assert set(seen) <= {100, 6000} and seen.count(100) and seen.count(6000)


def test_readers_holding_every_connection_cannot_fail_an_upload(make_client, files):
    """The upload worker has connections of its own: with every request connection taken (readers
    stuck on long queries), an upload still downloads, loads, switches and records its result."""
    import contextlib

    from gamelens.errors import GameLensError

    from .conftest import engine_of

    client = make_client(query_pool_size=1, queue_timeout_s=0.5)
    files.hold.clear()
    rec = client.post("/api/v1/uploads", json={"url": files.url("sample.csv", "hold")}).json()
    uploads = client.app.state.uploads
    held = contextlib.ExitStack()
    with held:
        while True:  # take every connection the request side can get
            try:
                held.enter_context(engine_of(client).connection())
            except GameLensError as exc:
                assert exc.code == "busy"
                break
        files.hold.set()
        assert uploads._done[rec["id"]].wait(60)
    done = client.get(f"/api/v1/uploads/{rec['id']}").json()
    assert done["state"] == "succeeded" and done["active"], done


@pytest.mark.above_the_engine
def test_metric_labels_cannot_be_chosen_by_clients(server_process):
    import socket

    server = server_process().start()
    for method in ("FOO1", "BREW", "get"):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(f"{method} /nowhere/{method} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            s.recv(4096)
    with server.client() as http:
        text = http.get("/metrics").text
    series = [line for line in text.splitlines() if line.startswith("gamelens_requests_total{")]
    methods = {line.split('method="')[1].split('"')[0] for line in series}
    routes = {line.split('route="')[1].split('"')[0] for line in series}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "other" in methods and not any("nowhere" in r for r in routes)


def test_a_stop_without_grace_after_the_bytes_are_in_ends_cleanly(server_process, files):
    """No grace, and a SIGTERM once the file's bytes are in: the load's statement or the new version's
    warm-up is running. The process waits for its statement in flight and exits by the signal (a chDB
    statement that outlives the engine crashes the process); the next start serves one whole dataset."""
    (files.root / "big10000s.csv").write_bytes(write_csv(sample_table()[:1] + sample_table()[1:] * 100))
    server = server_process(shutdown_grace_s=0).start()
    with server.client() as http:
        http.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")})
        rec = http.post("/api/v1/uploads", json={"url": files.url("big10000s.csv")}).json()
        for _ in range(600):
            if http.get(f"/api/v1/uploads/{rec['id']}").json()["state"] not in ("queued", "downloading"):
                break
            time.sleep(0.01)
    server.stop()  # SIGTERM
    assert server.proc.returncode == -signal.SIGTERM, server.log.read_text()[-3000:]  # uvicorn re-raises it
    server.start()
    with server.client() as http:
        after = http.get(f"/api/v1/uploads/{rec['id']}").json()
        assert after["state"] in ("interrupted", "succeeded"), after
        total = http.get("/api/v1/games?limit=1").json()["total"]
        rows = len(sample_table()) - 1
        assert total == (rows * 100 if after["state"] == "succeeded" else rows), (after, total)


def test_a_statement_still_running_when_the_app_stops_is_cancelled_first(files):
    """A request whose statement outlived the server's graceful timeout (uvicorn then runs the lifespan's end
    while its thread still reads): the stop cancels it and goes on, instead of waiting for it to end
    (GAMELENS_QUERY_LIMIT_S) in the explorer's close or at the interpreter's exit. The statement here is
    one of the request engine's; a client's requests end far sooner than any graceful timeout."""
    ended: list[BaseException] = []
    with TestClient(create_app(make_settings()), headers=AUTH) as client:
        upload(client, files.url("sample.csv"))
        engine = client.app.state.engine
        reading = long_statement(engine, ended)
    reading.join(5)
    assert not reading.is_alive() and len(ended) == 1 and engine.was_cancelled(ended[0]), ended


def test_a_host_that_trickles_bytes_does_not_hold_the_shutdown(server_process, files):
    """After the grace, the download's connection is shut (a gzip header that never ends makes no block
    for the cut to be seen on) and the worker's statement in flight is waited for."""
    server = server_process(shutdown_grace_s=0, read_timeout_s=2).start()
    with server.client() as http:
        rec = http.post("/api/v1/uploads", json={"url": files.url("sample.csv", "trickle-gzip")}).json()
        for _ in range(200):
            if http.get(f"/api/v1/uploads/{rec['id']}").json()["state"] == "downloading":
                break
            time.sleep(0.05)
    started = time.monotonic()
    server.stop()  # SIGTERM
    assert server.proc.returncode == -signal.SIGTERM, server.log.read_text()[-3000:]
    assert time.monotonic() - started < 12, "the host trickles for 20 s"
    # Ended by the stop's cut of its connection, not by giving up on it (the engine then closes under it).
    assert "did not stop within" not in server.log.read_text()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.above_the_engine
def test_an_unhandled_error_is_logged_once_with_its_request_id():
    """A bug's 500: our handler logs it (with the request id) and answers with the JSON error body;
    Starlette then re-raises it, and uvicorn's own copy of the same traceback is dropped."""
    app = create_app(make_settings())

    @app.get("/api/v1/boom", include_in_schema=False)
    def boom():
        raise RuntimeError("a bug")

    seen = _Records()
    watched = [logging.getLogger("uvicorn.error"), logging.getLogger("gamelens.api.app")]
    for logger in watched:
        logger.addHandler(seen)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/api/v1/boom",
                      headers={**AUTH, "X-Request-ID": "boom-1"})
    finally:
        server.should_exit = True
        thread.join(30)
        for logger in watched:
            logger.removeHandler(seen)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
    assert r.headers["x-request-id"] == "boom-1"
    logged = [rec for rec in seen.records if rec.exc_info and isinstance(rec.exc_info[1], RuntimeError)]
    assert [rec.name for rec in logged] == ["gamelens.api.app"], [(rec.name, rec.getMessage()) for rec in logged]
    assert json.loads(JsonFormatter().format(logged[0]))["request_id"] == "boom-1"
