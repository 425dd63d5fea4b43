"""Dataset versions under bad luck: a failure at any step of a switch never costs a kept version and
the upload record tells the truth; every answer reads one version, even while versions switch; a
replaced version goes only once no read can be on it, by the database's clock, so no order of
uploads, reads, rollbacks and restarts leaves the service without its data."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from fastapi.testclient import TestClient

from gamelens.api.app import create_app
from gamelens.errors import GameLensError
from gamelens.ingest import physical
from gamelens.ingest.versions import Versions
from gamelens.store import Store

from .conftest import (
    AUTH,
    SHORT_GRACE,
    engine_of,
    make_settings,
    sample_table,
    statements_of,
    table_names,
    upload,
    wait_indexes,
    write_csv,
)


class Fault:
    """The first statement of `engine` (its `method`: execute, or select) whose SQL matches `pattern`
    (and whose parameters satisfy `when`) raises a transient `busy`, either instead of running or just
    after it ran."""

    def __init__(self, engine, pattern: str, after: bool = False, when=lambda params: True,
                 method: str = "execute"):
        self.engine, self.pattern, self.after, self.when = engine, re.compile(pattern), after, when
        self.fired, self.method = False, method
        self._real = getattr(engine, method)
        setattr(engine, method, self)  # an instance attribute: only this engine object is affected

    def __call__(self, sql, params=None, *args, **kw):
        hit = not self.fired and self.pattern.search(sql) and self.when(params or {})
        if hit:
            self.fired = True
            if self.after:
                self._real(sql, params, *args, **kw)
            raise GameLensError("busy", "The database is busy; try again shortly.", 503)
        return self._real(sql, params, *args, **kw)

    def remove(self):
        delattr(self.engine, self.method)


def _file(files, name: str, rows: list[list[str]]) -> str:
    (files.root / name).write_bytes(write_csv(sample_table()[:1] + rows))
    return files.url(name)


def eventually(check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.1)


@pytest.fixture
def three_versions(make_client, files):
    """An app keeping 3 versions, with uploads of 10, 20 and 30 rows (the last one active), whose
    replaced versions have been out of the pointer for longer than the (short) grace."""
    client = make_client(keep_versions=3, **SHORT_GRACE)
    ids = [upload(client, _file(files, f"v{n}.csv", sample_table()[1:n + 1]))["id"] for n in (10, 20, 30)]
    time.sleep(client.app.state.settings.version_grace_s)
    return client, ids


def _served(client) -> tuple[int, int]:
    body = client.get("/api/v1/games", params={"limit": 1, "fields": "app_id"}).json()
    return body["version"], body["total"]


def _stored(client) -> set[int]:
    return {int(n.removeprefix("games_v")) for n in table_names(engine_of(client)) if n.startswith("games_v")}


# (statement that fails, does it run before failing, does the new upload end up served)
STEPS = [
    ("rename_before", r"RENAME TABLE .*stage_", False, False),
    ("rename_after", r"RENAME TABLE .*stage_", True, False),
    ("switch_before", r"INSERT INTO .*active_version", False, False),
    ("switch_after", r"INSERT INTO .*active_version", True, True),
    ("prune", r"DROP TABLE .*games_v", False, True),
]


@pytest.mark.above_the_engine
@pytest.mark.parametrize("step,pattern,after,served", STEPS, ids=[s[0] for s in STEPS])
def test_a_failure_at_any_step_of_a_switch(three_versions, files, step, pattern, after, served):
    client, ids = three_versions
    fault = Fault(client.app.state.uploads.worker, pattern, after)
    rec = upload(client, _file(files, "v40.csv", sample_table()[1:41]))
    fault.remove()
    assert fault.fired
    if not served:  # the previous dataset is served, every kept version is there, nothing of the new one
        assert rec["state"] == "failed" and rec["error"]["code"] == "busy", rec
        assert _served(client) == (ids[-1], 30)
        assert _stored(client) == set(ids)
    elif step == "prune":  # served; pruning failed: a warning, and the idle worker drops it later
        assert rec["state"] == "succeeded" and any("GAMELENS_KEEP_VERSIONS" in w for w in rec["warnings"]), rec
        assert _served(client) == (rec["id"], 40)
        eventually(lambda: _stored(client) == {*ids[1:], rec["id"]})
        nxt = upload(client, _file(files, "v50.csv", sample_table()[1:51]))
        eventually(lambda: _stored(client) == {ids[-1], rec["id"], nxt["id"]})
    else:
        assert rec["state"] == "succeeded", rec
        assert _served(client) == (rec["id"], 40)
        assert _stored(client) == {*ids[1:], rec["id"]}  # the newest 3: the oldest was pruned, as configured


@pytest.mark.above_the_engine
def test_a_failure_after_the_switch_ends_the_upload_as_succeeded_with_a_warning(three_versions, files):
    """The pointer's reading right after the switch fails: the switch happened (the pointer says so when
    asked again), so the upload succeeded, and its record says what failed after it."""
    client, ids = three_versions
    worker, switched = client.app.state.uploads.worker, threading.Event()
    real_execute = worker.execute

    def execute(sql, *args, **kw):
        real_execute(sql, *args, **kw)
        if re.search(r"INSERT INTO .*active_version", sql):
            switched.set()

    worker.execute = execute  # the worker thread's idle chores read the pointer too: only after the switch
    fault = Fault(worker, r"^SELECT p\.upload_id", method="select", when=lambda params: switched.is_set())
    rec = upload(client, _file(files, "v40.csv", sample_table()[1:41]))
    fault.remove()
    del worker.execute
    assert fault.fired
    assert rec["state"] == "succeeded" and any("after the switch failed" in w for w in rec["warnings"]), rec
    assert _served(client) == (rec["id"], 40)
    eventually(lambda: _stored(client) == {*ids[1:], rec["id"]})  # its prune did not run: the idle worker's


@pytest.mark.above_the_engine
def test_the_record_refused_after_the_switch_is_written_later(three_versions, files):
    """Saving `succeeded` is refused after the switch: the upload still ends as succeeded, with no
    failure to report (nothing failed but that write), and its record is written at the next write."""
    client, ids = three_versions
    uploads = client.app.state.uploads
    fault = Fault(uploads.worker, r"INSERT INTO .*uploads",
                  when=lambda params: json.loads(params.get("doc", "{}")).get("state") == "succeeded")
    rec = upload(client, _file(files, "v40.csv", sample_table()[1:41]))
    fault.remove()
    assert fault.fired
    assert rec["state"] == "succeeded" and not any("failed" in w for w in rec["warnings"]), rec
    # The index build's write takes it (upload() saw `ready` in this process's memory, maybe before it landed).
    eventually(lambda: json.loads(uploads.store.upload_docs(rec["id"])[0])["indexes"] == "ready")
    assert json.loads(uploads.store.upload_docs(rec["id"])[0])["state"] == "succeeded"
    assert _served(client) == (rec["id"], 40)
    assert _stored(client) == {*ids[1:], rec["id"]}


@pytest.mark.above_the_engine
@pytest.mark.parametrize("after", [False, True], ids=["switch_fails", "switch_raises_after_it_happened"])
def test_activate_with_a_failing_switch(three_versions, after):
    client, ids = three_versions
    fault = Fault(client.app.state.uploads.worker, r"INSERT INTO .*active_version", after)
    r = client.post(f"/api/v1/uploads/{ids[0]}/activate")
    fault.remove()
    if after:
        assert r.status_code == 200 and r.json()["active"]
        assert _served(client) == (ids[0], 10)
    else:
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
        assert _served(client) == (ids[-1], 30)
    assert _stored(client) == set(ids)


class HeldRead:
    """An export of the active version, stopped inside its read (just before the engine computes its
    rows) until `finish()`: a slow export, deterministic."""

    def __init__(self, client, path: str = "/api/v1/games?format=ndjson&fields=app_id"):
        self.engine, self.inside, self.go = engine_of(client), threading.Event(), threading.Event()
        real = self.engine.spool

        def spool(*args, **kw):
            self.inside.set()
            self.go.wait(60)
            return real(*args, **kw)

        self.engine.spool = spool
        self.response = None
        self.thread = threading.Thread(target=lambda: setattr(self, "response", client.get(path)))
        self.thread.start()
        assert self.inside.wait(30)

    def finish(self):
        self.go.set()
        self.thread.join(60)
        del self.engine.spool
        return self.response


READ_ROUTES = ["/api/v1/games?limit=5", "/api/v1/games/summary", "/api/v1/games/aggregate?group_by=genres",
               "/api/v1/games?format=csv"]


def assert_serves(client, upload_id: int, rows: int) -> None:
    for path in READ_ROUTES:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert _served(client) == (upload_id, rows)


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_a_rollback_during_a_read_keeps_the_data_online(files):
    """Issue 16's reproduction, GAMELENS_KEEP_VERSIONS=1: while an export reads version 1, upload 2
    lands and version 1 is activated again. When the export ends, every read still answers from
    version 1; activating version 2 really switches; after a restart, both still serve."""
    settings = make_settings(keep_versions=1)
    with TestClient(create_app(settings), headers=AUTH) as client:
        v1 = upload(client, _file(files, "r10.csv", sample_table()[1:11]))
        read = HeldRead(client)
        v2 = upload(client, _file(files, "r20.csv", sample_table()[1:21]))
        assert v2["state"] == "succeeded", v2
        assert client.post(f"/api/v1/uploads/{v1['id']}/activate").status_code == 200
        exported = read.finish()
        assert exported.status_code == 200 and len(exported.text.splitlines()) == 10
        assert_serves(client, v1["id"], 10)
        assert client.post(f"/api/v1/uploads/{v2['id']}/activate").status_code == 200
        assert_serves(client, v2["id"], 20)
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert_serves(client, v2["id"], 20)
        assert client.post(f"/api/v1/uploads/{v1['id']}/activate").status_code == 200
        assert_serves(client, v1["id"], 10)


def test_rolling_back_to_the_oldest_kept_version_while_it_is_read(make_client, files):
    """The default 3 kept versions: the oldest is activated, an export of it runs, a new upload lands
    (the oldest is now beyond the 3) and the oldest is activated again: it serves, and so do the others."""
    client = make_client()
    ids = [upload(client, _file(files, f"o{n}.csv", sample_table()[1:n + 1]))["id"] for n in (10, 20, 30)]
    assert client.post(f"/api/v1/uploads/{ids[0]}/activate").status_code == 200
    read = HeldRead(client)
    v4 = upload(client, _file(files, "o40.csv", sample_table()[1:41]))
    assert v4["state"] == "succeeded", v4
    assert client.post(f"/api/v1/uploads/{ids[0]}/activate").status_code == 200
    assert len(read.finish().text.splitlines()) == 10
    assert_serves(client, ids[0], 10)
    for upload_id, rows in ((v4["id"], 40), (ids[2], 30), (ids[0], 10)):
        assert client.post(f"/api/v1/uploads/{upload_id}/activate").status_code == 200
        assert_serves(client, upload_id, rows)


def test_a_replaced_version_goes_only_after_the_longest_read(make_client, files):
    """keep_versions=1 and a grace of a few seconds: the replaced version stays (and can be activated
    again) until it has been out of the pointer that long; then the idle worker drops it, and
    activating it is refused with 409."""
    client = make_client(keep_versions=1, **SHORT_GRACE)
    v1 = upload(client, _file(files, "g10.csv", sample_table()[1:11]))
    v2 = upload(client, _file(files, "g20.csv", sample_table()[1:21]))
    assert _stored(client) == {v1["id"], v2["id"]}
    assert client.post(f"/api/v1/uploads/{v1['id']}/activate").status_code == 200
    assert_serves(client, v1["id"], 10)
    eventually(lambda: _stored(client) == {v1["id"]})
    elements = {n for n in table_names(engine_of(client)) if n.startswith(physical.elements_table(""))}
    assert elements == {physical.elements_table(f"games_v{v1['id']}")}  # v2's went with it
    r = client.post(f"/api/v1/uploads/{v2['id']}/activate")
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_not_kept", r.text
    assert_serves(client, v1["id"], 10)


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_a_restart_keeps_a_version_replaced_moments_ago(files):
    """Start-up reconciliation follows the same rule as pruning: a version replaced just before a
    restart may still be read (by another process, or a client's next page) and is kept."""
    settings = make_settings(keep_versions=1)
    with TestClient(create_app(settings), headers=AUTH) as client:
        v1 = upload(client, _file(files, "s10.csv", sample_table()[1:11]))
        upload(client, _file(files, "s20.csv", sample_table()[1:21]))
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert _stored(client) == {v1["id"], v1["id"] + 1}
        assert client.post(f"/api/v1/uploads/{v1['id']}/activate").status_code == 200
        assert_serves(client, v1["id"], 10)


def test_a_switch_lands_after_a_pointer_row_from_a_clock_ahead(make_client, files):
    """The pointer's order comes from the database's clock, and never goes back: a row written by a
    clock an hour ahead (an earlier release timed switches by the client) cannot hide later switches."""
    client = make_client()
    v1 = upload(client, _file(files, "c10.csv", sample_table()[1:11]))
    engine = engine_of(client)
    engine.execute(f"INSERT INTO `{engine.db}`.active_version SELECT toUInt64(toUnixTimestamp64Nano(now64(9))) + "
                   "3600000000000, {id:UInt64}", {"id": v1["id"]})
    v2 = upload(client, _file(files, "c20.csv", sample_table()[1:21]))
    assert_serves(client, v2["id"], 20)
    assert client.post(f"/api/v1/uploads/{v1['id']}/activate").status_code == 200
    assert_serves(client, v1["id"], 10)


def test_rollbacks_racing_uploads_and_exports(make_client, files):
    """Uploads, activations of any listed version, exports and pages at once (keep_versions=1): every
    read answers 200 with whole data of the version it names, and the service serves at the end."""
    client = make_client(keep_versions=1)
    sizes = {i: n for i, n in enumerate((10, 20, 30, 40, 50), start=1)}  # upload id -> its rows
    for upload_id in (1, 2):
        rec = upload(client, _file(files, f"x{upload_id}.csv", sample_table()[1:sizes[upload_id] + 1]))
        assert rec["id"] == upload_id
    bad, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            r = client.get("/api/v1/games", params={"format": "ndjson", "fields": "app_id"})
            if r.status_code != 200 or len(r.text.splitlines()) != sizes.get(int(r.headers["x-dataset-version"])):
                bad.append((r.status_code, r.text[:200]))
            page = client.get("/api/v1/games", params={"limit": 1, "fields": "app_id"})
            if page.status_code != 200:
                bad.append((page.status_code, page.text[:200]))

    def activator():
        while not stop.is_set():
            for u in client.get("/api/v1/uploads").json()["uploads"]:
                if u["stored"] and not u["active"]:
                    r = client.post(f"/api/v1/uploads/{u['id']}/activate")
                    if r.status_code not in (200, 409):
                        bad.append((r.status_code, r.text[:200]))

    threads = [threading.Thread(target=reader), threading.Thread(target=reader), threading.Thread(target=activator)]
    for t in threads:
        t.start()
    try:
        for upload_id in (3, 4, 5):
            rec = upload(client, _file(files, f"x{upload_id}.csv", sample_table()[1:sizes[upload_id] + 1]))
            assert rec["id"] == upload_id and rec["state"] == "succeeded", rec
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert bad == []
    version, total = _served(client)
    assert sizes[version] == total


def test_every_answer_reads_one_version_while_versions_switch(make_client, files):
    """Pages (rows, total, facets) are read while two versions are switched back and forth: each
    answer's rows, total and facet counts all come from the version it names."""
    client = make_client()
    table = sample_table()
    a = upload(client, _file(files, "half_a.csv", table[1:51]))
    b = upload(client, _file(files, "half_b.csv", table[61:101]))
    want = {a["id"]: sorted(int(r[1]) for r in table[1:51]), b["id"]: sorted(int(r[1]) for r in table[61:101])}
    seen, mixed, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            body = client.get("/api/v1/games", params={"limit": 1000, "fields": "app_id,genres",
                                                        "facet": "genres", "facet_size": 100}).json()
            ids = sorted(r["app_id"] for r in body["rows"])
            genres = sum(len(set(r["genres"])) for r in body["rows"])
            if ids != want[body["version"]] or body["total"] != len(ids) or \
                    sum(f["count"] for f in body["facets"]["genres"]) != genres:
                mixed.append(body["version"])
            seen.append(body["version"])

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    statuses, deadline = [], time.monotonic() + 4
    try:
        while time.monotonic() < deadline:
            for upload_id in (a["id"], b["id"]):
                statuses.append(client.post(f"/api/v1/uploads/{upload_id}/activate").status_code)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200}
    assert mixed == []
    assert set(seen) == {a["id"], b["id"]} and len(seen) > 50


class SwitchBetweenStatements:
    """Makes another version active just before the first statement of the request engine whose SQL
    matches `pattern` runs: the deterministic form of a switch landing in the middle of a request."""

    def __init__(self, client, pattern: str, to: int):
        self.engine = engine_of(client)
        self.versions, self.pattern, self.to, self.done = client.app.state.uploads.versions, pattern, to, False
        self._select = self.engine.select
        self.engine.select = self

    def __call__(self, sql, *args, **kw):
        if not self.done and re.search(self.pattern, sql):
            self.done = True
            self.versions.activate(self.to)
        return self._select(sql, *args, **kw)

    def remove(self):
        del self.engine.select


@pytest.mark.parametrize("path,params,pattern", [
    # a filter (every game), so the page counts: a page of a whole version takes its count read once
    ("/api/v1/games", {"limit": 1000, "fields": "app_id", "facet": "genres", "app_id__gte": "0"},
     r"^SELECT count\(\)"),
    ("/api/v1/games", {"limit": 1000, "fields": "app_id", "format": "ndjson"}, r"^SELECT count\(\)"),
], ids=["page_total", "export_count"])
def test_a_switch_in_the_middle_of_a_request_does_not_mix_versions(make_client, files, path, params, pattern):
    client = make_client(query_pool_size=1)  # one connection: a page's statements run one after another
    table = sample_table()
    a = upload(client, _file(files, "mid_a.csv", table[1:51]))
    b = upload(client, _file(files, "mid_b.csv", table[61:101]))
    hook = SwitchBetweenStatements(client, pattern, a["id"])  # b is active when the request starts
    r = client.get(path, params=params)
    hook.remove()
    assert hook.done and client.get("/api/v1/games", params={"limit": 1}).json()["version"] == a["id"]
    if params.get("format") == "ndjson":
        assert r.headers["x-dataset-version"] == str(b["id"])
        assert r.headers["x-exported-count"] == "40" and len(r.text.splitlines()) == 40
    else:
        body = r.json()
        assert body["version"] == b["id"] and body["total"] == len(body["rows"]) == 40


def test_a_pointer_read_that_began_before_a_switch_never_undoes_it(make_client, files):
    """A request's pointer read returns (version 2) and is then descheduled; meanwhile version 1 is
    activated (200). The older reading must not be installed over the newer: version 1 is served."""
    client = make_client()
    v1 = upload(client, _file(files, "p10.csv", sample_table()[1:11]))
    upload(client, _file(files, "p20.csv", sample_table()[1:21]))
    versions, engine = client.app.state.uploads.versions, engine_of(client)
    real, returned, go, reader = engine.select, threading.Event(), threading.Event(), {}

    def select(sql, *args, **kw):
        res = real(sql, *args, **kw)
        if "active_version" in sql and threading.get_ident() == reader.get("thread"):
            returned.set()
            go.wait(30)
        return res

    def read():
        reader["thread"] = threading.get_ident()
        versions.active(fresh=True)

    engine.select = select
    thread = threading.Thread(target=read)
    thread.start()
    assert returned.wait(30)
    assert client.post(f"/api/v1/uploads/{v1['id']}/activate").status_code == 200
    go.set()
    thread.join(30)
    del engine.select
    assert _served(client) == (v1["id"], 10)


def test_a_read_that_could_outlast_the_grace_is_refused_before_it_starts(make_client, files):
    """keep_versions=1, one connection, a grace of 4 s, and statements made slow (0.9 s each): a page
    with five facets resolved version 1, then version 2 lands. Statements that could end after
    version 1 may go are refused (503 busy); none of them ever meets a dropped table."""
    from gamelens.query.run import Explorer

    client = make_client(keep_versions=1, query_pool_size=1, **SHORT_GRACE)
    upload(client, _file(files, "l10.csv", sample_table()[1:11]))
    real = Explorer.select

    def slow(self, snap, sql, *args, **kw):
        time.sleep(0.9)
        return real(self, snap, sql, *args, **kw)

    Explorer.select = slow
    try:
        out = {}
        page = "/api/v1/games?limit=1&fields=app_id&facet=genres&facet=tags&facet=categories&facet=developers" \
               "&facet=publishers"
        thread = threading.Thread(target=lambda: out.setdefault("r", client.get(page)))
        thread.start()
        time.sleep(0.3)
        v2 = upload(client, _file(files, "l20.csv", sample_table()[1:21]))
        assert v2["state"] == "succeeded"
        thread.join(60)
    finally:
        Explorer.select = real
    r = out["r"]
    assert r.status_code == 503 and r.json()["error"]["code"] == "busy", r.text
    assert r.headers["retry-after"]


@pytest.mark.above_the_engine
def test_an_upload_that_has_not_succeeded_cannot_be_activated(make_client, files):
    """Between its rename and its switch a new version's table exists; if the switch fails the upload
    is discarded. Activating it meanwhile is refused, so the discard never drops an active table."""
    client = make_client()
    v1 = upload(client, _file(files, "u10.csv", sample_table()[1:11]))
    uploads = client.app.state.uploads
    fault = Fault(uploads.worker, r"INSERT INTO .*active_version")
    real, inside, go = uploads.versions.discard, threading.Event(), threading.Event()

    def discard(upload_id):
        inside.set()
        go.wait(30)
        return real(upload_id)

    uploads.versions.discard = discard
    n = client.post("/api/v1/uploads", json={"url": _file(files, "u20.csv", sample_table()[1:21])}).json()["id"]
    assert inside.wait(30)
    r = client.post(f"/api/v1/uploads/{n}/activate")
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_not_succeeded", r.text
    go.set()
    assert uploads.wait(n, 30)["state"] == "failed"
    fault.remove()
    del uploads.versions.discard
    assert_serves(client, v1["id"], 10)


@pytest.mark.parametrize("age,beside", [(0.75, True), (1.5, False)], ids=["half-way", "stale"])
def test_a_request_waits_for_the_pointer_only_once_its_copy_is_stale(make_client, files, age, beside):
    """Past half of REFRESH_S, a request reads the copy it has and the pointer is read on a thread
    beside it (a server being read never makes a request wait ~7 ms for it); past REFRESH_S, the
    request reads it itself. Either way the copy is then fresh."""
    from dataclasses import replace

    client = make_client()
    upload(client, _file(files, "r10.csv", sample_table()[1:11]))
    versions, engine = client.app.state.uploads.versions, engine_of(client)
    real, readers = engine.select, []

    def select(sql, *args, **kw):
        if "active_version" in sql:
            readers.append(threading.current_thread().name)
        return real(sql, *args, **kw)

    def aged(seconds: float) -> None:
        """The copy is `seconds` old when the request looks at it, however long the request takes to get
        there (set beforehand, a request slower than REFRESH_S - seconds met a stale copy)."""
        real_current = versions.current

        def current():
            del versions.current  # once: the request's own look
            versions._seen = replace(versions._seen, read_at=time.monotonic() - seconds)
            return real_current()
        versions.current = current

    aged(age)
    engine.select = select
    asked_at = time.monotonic()
    try:
        assert client.get("/api/v1/games", params={"name": "a", "limit": 1}).status_code == 200
        versions.close()  # waits for a reading beside the request
    finally:
        del engine.select
    assert len(readers) == 1 and (readers[0] == "gamelens-pointer") == beside, readers
    # read again since the request (not "younger than 0.5 s": a loaded CI machine took 0.66 s to answer)
    assert versions._seen.read_at >= asked_at
    # Once closing, no reading starts beside a request (the engine is about to shut down).
    aged(0.75)
    versions._refreshed_at = -1e9
    engine.select = select
    try:
        assert client.get("/api/v1/games", params={"name": "b", "limit": 1}).status_code == 200
    finally:
        del engine.select
    assert len(readers) == 1, readers


def _an_upload_whose_end_was_never_recorded(settings, files, rows: int) -> int:
    """A server whose database refuses the records of a successful upload's end (a full disk) until it
    stops: the database still says `loading`. Returns the upload's id."""
    with TestClient(create_app(settings), headers=AUTH) as client:
        uploads = client.app.state.uploads
        real = uploads.worker.execute

        def execute(sql, params=None, *args, **kw):
            ended = json.loads((params or {}).get("doc", "{}")).get("state") == "succeeded"
            if ended and re.search(r"INSERT INTO .*uploads", sql):
                raise GameLensError("insufficient_storage", "The database's disk is full.", 507)
            return real(sql, params, *args, **kw)

        uploads.worker.execute = execute
        url = _file(files, f"u{rows}.csv", sample_table()[1:rows + 1])
        r = client.post("/api/v1/uploads?wait=true", json={"url": url})
        assert r.status_code == 200 and r.json()["state"] == "succeeded", r.json()
        upload_id = r.json()["id"]
        assert json.loads(uploads.store.upload_docs(upload_id)[0])["state"] == "loading"
    return upload_id


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_a_record_still_unwritten_at_a_stop_is_completed_at_the_next_start(files):
    """The next start completes the record as succeeded (the pointer named its kept data), and its
    indexes are built (again: idempotent), whether or not the stopped server got to them."""
    settings = make_settings()
    upload_id = _an_upload_whose_end_was_never_recorded(settings, files, 10)
    with TestClient(create_app(settings), headers=AUTH) as client:
        eventually(lambda: client.get(f"/api/v1/uploads/{upload_id}").json()["indexes"] == "ready")
        rec = client.get(f"/api/v1/uploads/{upload_id}").json()
        assert rec["state"] == "succeeded" and rec["rows_loaded"] == 10 and rec["active"], rec
        assert "end was recorded" in rec["warnings"][-1]
        assert _served(client) == (upload_id, 10)


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_an_upload_a_stop_marked_interrupted_as_its_data_was_switched_in_is_succeeded_at_the_next_start(files):
    """A stop with no grace marks the running upload interrupted while the worker may be switching its data in,
    and the worker is then cut before it records its end: the pointer serves the upload while its record says
    `interrupted` (a run of tests/test_operations.py::test_a_stop_without_grace_after_the_bytes_are_in_ends_cleanly
    saw it). The pointer has the last word: the next start records it succeeded (at the stop's time), and builds
    its indexes. One stored but never switched in (kept with activate=false) stays interrupted, and goes."""
    settings = make_settings()
    with TestClient(create_app(settings), headers=AUTH) as client:
        served = upload(client, _file(files, "cut11.csv", sample_table()[1:12]))["id"]
        kept = _kept(client, _file(files, "cut5.csv", sample_table()[1:6]))["id"]
        uploads = client.app.state.uploads
        for rec in [r for r in uploads._records() if r.id in (served, kept)]:
            uploads._set(rec, state="interrupted", finished_at=uploads._now(), indexes=None,
                         error={"code": "interrupted", "message": "shut down"})
        marked = client.get(f"/api/v1/uploads/{served}").json()["finished_at"]
        assert kept in _stored(client)
    with TestClient(create_app(settings), headers=AUTH) as client:
        eventually(lambda: client.get(f"/api/v1/uploads/{served}").json()["indexes"] == "ready")
        rec = client.get(f"/api/v1/uploads/{served}").json()
        assert rec["state"] == "succeeded" and rec["rows_loaded"] == 11 and rec["active"], rec
        assert rec["error"] is None and "recorded it as interrupted" in rec["warnings"][-1], rec
        assert rec["finished_at"] == marked, rec
        assert _served(client) == (served, 11)
        left = client.get(f"/api/v1/uploads/{kept}").json()
        assert left["state"] == "interrupted" and not left["stored"], left
        assert kept not in _stored(client)


@pytest.mark.above_the_engine
@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_a_completed_record_the_database_refuses_at_start_still_gets_its_indexes(files, monkeypatch):
    """As above, and the next start's own completion of the record is refused once too: the worker
    builds the indexes from the record it holds (not from the database's, still `loading`), and the
    record is written once the database takes it."""
    settings = make_settings()
    upload_id = _an_upload_whose_end_was_never_recorded(settings, files, 12)
    refusals = []
    save = Store.save_upload

    def refuse_the_completion_once(self, upload_id, doc, writer=0):
        if "end was recorded" in doc and not refusals:
            refusals.append(doc)
            raise GameLensError("insufficient_storage", "The database's disk is full.", 507)
        return save(self, upload_id, doc, writer)

    monkeypatch.setattr(Store, "save_upload", refuse_the_completion_once)
    with TestClient(create_app(settings), headers=AUTH) as client:
        store = client.app.state.uploads.store
        eventually(lambda: json.loads(store.upload_docs(upload_id)[0])["indexes"] == "ready")
        assert refusals
        rec = client.get(f"/api/v1/uploads/{upload_id}").json()
        assert rec["state"] == "succeeded" and rec["indexes"] == "ready" and rec["rows_loaded"] == 12, rec
        assert _served(client) == (upload_id, 12)


def _kept(client, url: str) -> dict:
    """An upload with activate=false, waited for with its indexes."""
    r = client.post("/api/v1/uploads?wait=true&activate=false", json={"url": url})
    assert r.status_code == 200, r.text
    return upload_wait(client, r.json())


def upload_wait(client, rec: dict) -> dict:
    if rec.get("indexes") == "building":
        rec = wait_indexes(client, rec["id"])
    return rec


def test_an_upload_with_activate_false_is_kept_and_served_only_once_activated(make_client, files):
    """Loaded, checked and kept beside the data served: its record says what it holds, readers go on
    reading the version before, and POST /activate serves it (before, every upload that loaded, warnings
    and all, replaced the data at once)."""
    client = make_client(keep_versions=3)
    v1 = upload(client, _file(files, "k10.csv", sample_table()[1:11]))
    v2 = _kept(client, _file(files, "k20.csv", sample_table()[1:21]))
    assert v2["state"] == "succeeded" and v2["rows_loaded"] == 20 and v2["indexes"] == "ready", v2
    assert v2["activate"] is False and v2["stored"] and not v2["active"], v2
    assert _served(client) == (v1["id"], 10)
    listed = {u["id"]: u for u in client.get("/api/v1/uploads").json()["uploads"]}
    assert listed[v1["id"]]["active"] and not listed[v2["id"]]["active"] and listed[v2["id"]]["stored"]
    sent = client.post("/api/v1/uploads?wait=true&activate=false", files={"file": ("k30.csv", write_csv(
        sample_table()[:31]))}).json()
    assert sent["rows_loaded"] == 30 and not sent["active"] and sent["activate"] is False, sent
    upload_wait(client, sent)
    assert _served(client) == (v1["id"], 10)
    assert client.post(f"/api/v1/uploads/{v2['id']}/activate").json()["active"]
    assert _served(client) == (v2["id"], 20)


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_a_first_upload_kept_is_not_served_by_a_restart(files):
    """With nothing served yet, a kept upload stays unserved across a restart (start-up repairs a pointer
    that names nothing by serving the newest upload that was meant to be served, not this one)."""
    settings = make_settings()
    with TestClient(create_app(settings), headers=AUTH) as client:
        kept = _kept(client, files.url("sample.csv"))
        assert client.get("/api/v1/games").json()["error"]["code"] == "no_dataset"
    with TestClient(create_app(settings), headers=AUTH) as client:
        error = client.get("/api/v1/games").json()["error"]
        assert error["code"] == "no_dataset" and f"/api/v1/uploads/{kept['id']}/activate" in error["message"], error
        assert error["value"] == {"kept": kept["id"]}  # for the page, which says so on its empty screen
        assert client.get(f"/api/v1/uploads/{kept['id']}").json()["stored"]
        assert client.post(f"/api/v1/uploads/{kept['id']}/activate").status_code == 200
        assert _served(client) == (kept["id"], 100)


def test_a_server_keeping_one_version_refuses_to_keep_another(make_client, files):
    """With GAMELENS_KEEP_VERSIONS=1 a kept upload was dropped as soon as it was stored, its record saying
    it succeeded and the page offering to activate it: refused at once, before anything is received."""
    client = make_client(keep_versions=1)
    v1 = upload(client, files.url("sample.csv"))
    for sent in ({"json": {"url": files.url("sample.csv")}}, {"files": {"file": ("g.csv", b"AppID\r\n1\r\n")}}):
        r = client.post("/api/v1/uploads?activate=false", **sent)
        assert r.status_code == 409 and r.json()["error"]["code"] == "cannot_keep", r.text
        assert r.json()["error"]["param"] == "activate"
    assert client.post("/api/v1/uploads/sample?activate=false").status_code == 409
    assert [u["id"] for u in client.get("/api/v1/uploads").json()["uploads"]] == [v1["id"]]


def test_an_upload_s_parameters_are_known_and_given_once(make_client, files):
    """`activated=false`, `activate` in the JSON body or as a form field, or given twice, was ignored and the
    data served: each is a 400 naming it."""
    client = make_client()
    url = files.url("sample.csv")
    for query, body in (("?activated=false", {"url": url}), ("?activate=false&activate=true", {"url": url}),
                        ("", {"url": url, "activate": False})):
        r = client.post(f"/api/v1/uploads{query}", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] in ("activated", "activate"), (query, r.text)
    r = client.post("/api/v1/uploads", files={"file": ("g.csv", b"AppID\r\n1\r\n")}, data={"activate": "false"})
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == "activate" and "?activate=false" in error["message"], error
    # a form field given twice (the last one won) and a body sent to the sample (ignored) are refused too
    r = client.post("/api/v1/uploads", files=[("file", ("g.csv", b"AppID\r\n1\r\n")),
                                              ("max_rejected_rows", (None, b"7")), ("max_rejected_rows", (None, b"3"))])
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_rejected_rows", r.text
    assert client.post("/api/v1/uploads/sample", json={"activate": False}).status_code == 400
    assert client.get("/api/v1/uploads").json()["uploads"] == []  # none of them was queued


def test_a_kept_upload_is_read_before_it_is_served(make_client, files):
    """`version=N` reads a stored version that is not served: every read endpoint and its exports, and a
    kept upload with nothing served yet. Before, only its record could be read before activating it."""
    client = make_client(keep_versions=3)
    kept = _kept(client, _file(files, "r20.csv", sample_table()[1:21]))
    assert client.get("/api/v1/games").json()["error"]["code"] == "no_dataset"
    page = client.get("/api/v1/games", params={"version": kept["id"], "limit": 5}).json()
    assert (page["version"], page["total"]) == (kept["id"], 20), page
    following = client.get(page["next"]).json()  # the next page keeps the version (it read the data served)
    assert (following["version"], len(following["rows"])) == (kept["id"], 5), following
    served = upload(client, _file(files, "r10.csv", sample_table()[1:11]))
    reads = {"/api/v1/games": {"fields": "app_id"}, "/api/v1/games/aggregate": {"group_by": "genres"},
             "/api/v1/games/summary": {}}
    for path, params in reads.items():
        own = client.get(path, params=params).json()
        answer = client.get(path, params={**params, "version": kept["id"]})
        chosen = answer.json()
        assert (own["version"], chosen["version"]) == (served["id"], kept["id"]), path
        assert answer.headers["x-dataset-version"] == str(kept["id"]), path
        assert own != {**chosen, "version": served["id"]}, path  # 10 games against 20
    assert _served(client) == (served["id"], 10)
    exported = client.get("/api/v1/games", params={"format": "csv", "version": kept["id"]})
    assert exported.headers["x-total-count"] == "20" and exported.headers["x-dataset-version"] == str(kept["id"])
    assert f'filename="games-upload{kept["id"]}.csv"' in exported.headers["content-disposition"]
    groups = client.get("/api/v1/games/aggregate", params={"group_by": "genres", "format": "csv",
                                                            "version": kept["id"]})
    assert groups.status_code == 200 and groups.headers["x-dataset-version"] == str(kept["id"])
    twentieth = sample_table()[20][1]  # its AppID (the first column is the sheet's row number)
    missing = client.get(f"/api/v1/games/{twentieth}")  # not among the 10 served, and it says where it looked
    assert missing.status_code == 404 and f"in upload {served['id']}'s data" in missing.json()["error"]["message"]
    game = client.get(f"/api/v1/games/{twentieth}", params={"version": kept["id"]})
    assert game.json()["app_id"] == int(twentieth) and game.headers["x-dataset-version"] == str(kept["id"])
    typo = client.get(f"/api/v1/games/{twentieth}", params={"versoin": kept["id"]})  # was the served one's 404
    assert typo.status_code == 400 and typo.json()["error"]["allowed"] == ["version"], typo.text
    other = client.get(f"/api/v1/games/{twentieth}", params={"app_id": 10})  # the path's app_id is the one read
    assert other.status_code == 400 and other.json()["error"]["param"] == "app_id", other.text


def test_a_version_that_is_not_stored_or_not_a_number_is_a_clear_error(make_client, files):
    client = make_client(keep_versions=2)
    served = upload(client, files.url("sample.csv"))
    error = client.get("/api/v1/games", params={"version": 99}).json()["error"]
    assert error["code"] == "unknown_version" and error["param"] == "version" and error["allowed"] == [served["id"]]
    for bad in ("x", "0", "-1", "1.5"):
        r = client.get("/api/v1/games/summary", params={"version": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == "version", (bad, r.text)
    r = client.get("/api/v1/games", params=[("version", str(served["id"]))] * 2)
    assert r.status_code == 400 and "only once" in r.json()["error"]["message"]
    assert client.get("/api/v1/games", params={"version": 99, "format": "csv"}).status_code == 404
    assert client.get("/api/v1/games/10", params={"version": 99}).status_code == 404


def test_a_version_pushed_out_while_it_is_read_is_a_404(make_client, files, monkeypatch):
    """A new upload can drop a version that is not served (beyond GAMELENS_KEEP_VERSIONS) between a
    request's statements: the request says so (404 version_gone), never a 503 engine_error. Here its
    table goes right after the request resolved it (renamed away, and back after each request)."""
    client = make_client(keep_versions=2)
    old = upload(client, _file(files, "p10.csv", sample_table()[1:11]))
    upload(client, _file(files, "p20.csv", sample_table()[1:21]))
    store, name = client.app.state.uploads.store, f"games_v{old['id']}"
    stored = Versions.stored

    def gone_once_resolved(self, upload_id):
        snap = stored(self, upload_id)
        store.rename(name, name + "_away")
        return snap

    monkeypatch.setattr(Versions, "stored", gone_once_resolved)
    reads = [("/api/v1/games", {}), ("/api/v1/games/summary", {}), ("/api/v1/games", {"format": "csv"}),
             ("/api/v1/games/aggregate", {"group_by": "genres", "format": "csv"})]
    for path, params in reads:
        r = client.get(path, params={**params, "version": old["id"], "name": "a"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "version_gone", (path, params, r.text)
        store.rename(name + "_away", name)


def test_reads_of_a_kept_version_beside_the_served_one_read_each_ranking_once(make_client, files, monkeypatch):
    """A list column's ranking (its elements, for filters, facets and top lists) is read once per version:
    turns between the version served and a kept one read by `version=N` do not read them again (one
    version's rankings were kept at a time)."""
    client = make_client(keep_versions=3)
    served = upload(client, _file(files, "t10.csv", sample_table()[1:11]))
    kept = _kept(client, _file(files, "t20.csv", sample_table()[1:21]))
    statements = statements_of(client.app.state.explorer, monkeypatch)
    rankings = []
    for turn in range(3):
        for version in (served["id"], kept["id"]):
            body = client.get("/api/v1/games", params={"version": version, "genres": "action", "limit": turn + 1})
            assert body.status_code == 200 and body.json()["version"] == version, body.text
        rankings.append([s for s in statements if "arrayEnumerateUniq" in s])
    assert rankings[0] and all(f"games_v{kept['id']}" in s for s in rankings[0]), rankings  # the kept one's
    assert rankings[2] == rankings[0], rankings  # and none after the first turn


def test_the_rankings_kept_are_those_of_the_versions_read_last(make_client, files, monkeypatch):
    """With room for two versions' rankings, the served one read between two kept ones keeps its rankings
    (least recently used out; first in, first out pushed it out and read it again)."""
    monkeypatch.setattr("gamelens.query.run.RANKED_VERSIONS", 2)
    client = make_client(keep_versions=3)
    served = upload(client, _file(files, "t10.csv", sample_table()[1:11]))
    first = _kept(client, _file(files, "t20.csv", sample_table()[1:21]))
    second = _kept(client, _file(files, "t30.csv", sample_table()[1:31]))
    statements = statements_of(client.app.state.explorer, monkeypatch)
    for turn, version in enumerate((served["id"], first["id"], served["id"], second["id"], served["id"])):
        body = client.get("/api/v1/games", params={"version": version, "genres": "action", "limit": turn + 1})
        assert body.status_code == 200 and body.json()["version"] == version, body.text
    ranked = [s for s in statements if "arrayEnumerateUniq" in s]
    assert ranked and not [s for s in ranked if f"games_v{served['id']}`" in s], ranked
    first_read = [s for s in ranked if f"games_v{first['id']}`" in s]
    assert first_read, ranked  # the kept ones were ranked when read
    # and there is room for two: the first kept one, pushed out by the second, is ranked again
    body = client.get("/api/v1/games", params={"version": first["id"], "genres": "action", "limit": 6})
    assert body.status_code == 200, body.text
    again = [s for s in statements if "arrayEnumerateUniq" in s and f"games_v{first['id']}`" in s]
    assert len(again) > len(first_read), again
