"""Several GameLens replicas on one database: N create_app() instances in this process, each with its
own pools, upload worker, caches and rate limiters, sharing nothing but the database (as processes
behind a load balancer do). Both suite passes run it: chDB's driver and clickhouse-connect."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid

import orjson
import pytest
from fastapi.testclient import TestClient

from gamelens import lease as lease_module
from gamelens.api.app import create_app
from gamelens.engine import Engine
from gamelens.errors import GameLensError
from gamelens.lease import WriterLease
from gamelens.records import UploadRecord
from gamelens.store import WRITER_LOCK, Store

from .conftest import AUTH, SHORT_GRACE, make_settings, sample_table, table_names, upload, write_csv


@pytest.fixture
def replicas():
    """start(role, **settings) -> a client of a new replica on this test's database; all closed at the end."""
    database = make_settings().database
    opened = []

    def start(role: str = "reader", **overrides) -> TestClient:
        client = TestClient(create_app(make_settings(database=database, role=role, **overrides)), headers=AUTH)
        client.__enter__()
        opened.append(client)
        return client

    start.database = database
    yield start
    for client in reversed(opened):
        client.__exit__(None, None, None)


def _file(files, name: str, rows: int) -> str:
    (files.root / name).write_bytes(write_csv(sample_table()[:1] + sample_table()[1:rows + 1]))
    return files.url(name)


def _served(client) -> tuple[int, int]:
    r = client.get("/api/v1/games", params={"limit": 1, "fields": "app_id"})
    assert r.status_code == 200, r.text
    return r.json()["version"], r.json()["total"]


def _eventually(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def _pointer_names_a_table(client) -> bool:
    engine = client.app.state.engine
    pointer = Store(engine).pointer()
    return pointer is None or f"games_v{pointer[0]}" in table_names(engine)


def test_upload_ids_claimed_at_once_by_several_processes_never_collide():
    """The id scheme itself, with no writer lease in the way: four claimers on their own engines
    (connection pools), started together, 40 claims each; every id is distinct."""
    settings = make_settings()
    engines = [Engine(settings) for _ in range(4)]
    Store(engines[0]).create_database()
    Store(engines[0]).create_bookkeeping()
    got: list[int] = []
    lock, start = threading.Lock(), threading.Barrier(4)

    def claim(engine):
        store = Store(engine)
        start.wait()
        for _ in range(40):
            upload_id = store.claim_upload_id()
            with lock:
                got.append(upload_id)

    threads = [threading.Thread(target=claim, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.close()
    assert len(got) == 160 and len(set(got)) == 160


def test_simultaneous_submits_to_one_writer_get_distinct_ids(replicas, files):
    writer = replicas("writer")
    url, answers, start = _file(files, "d10.csv", 10), [], threading.Barrier(6)

    def submit():
        start.wait()
        answers.append(writer.post("/api/v1/uploads", json={"url": url}).json()["id"])

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(answers)) == 6
    for upload_id in answers:
        assert writer.app.state.uploads.wait(upload_id, 60)["state"] == "succeeded"


def test_concurrent_submits_across_replicas(replicas, files):
    """8 submits at once, spread over a writer and two readers: the writer's get distinct ids and
    every record is kept; the readers send the client to the writer."""
    writer = replicas("writer")
    readers = [replicas("reader", writer_url="http://writer.example:8000") for _ in range(2)]
    url = _file(files, "r10.csv", 10)
    answers: list = []

    def submit(client):
        answers.append((client, client.post("/api/v1/uploads", json={"url": url})))

    threads = [threading.Thread(target=submit, args=([writer, *readers][i % 3],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r.json()["id"] for c, r in answers if c is writer]
    refused = [r for c, r in answers if c is not writer]
    assert all(r.status_code == 409 and r.json()["error"]["code"] == "read_only_replica" for r in refused)
    assert all("http://writer.example:8000" in r.json()["error"]["message"] for r in refused)
    assert len(accepted) == len(set(accepted)) == 3
    for upload_id in accepted:
        writer.app.state.uploads.wait(upload_id, 60)
    records = {u["id"] for u in readers[0].get("/api/v1/uploads").json()["uploads"]}
    assert records == set(accepted)


def test_a_second_writer_refuses_to_start(replicas, caplog):
    replicas("writer", writer_lease_s=1)
    with pytest.raises(GameLensError) as err:
        replicas("all", writer_lease_s=1)  # it waits out one lease (the first might be dead), then refuses
    assert err.value.code == "writer_exists"
    assert "GAMELENS_ROLE=reader" in caplog.text


def test_writers_starting_at_once_agree_on_one():
    """Three would-be writers on their own engines, started together, ten times: one writer each time."""
    settings = make_settings(writer_lease_s=1)
    engines = [Engine(settings) for _ in range(3)]
    Store(engines[0]).create_database()
    Store(engines[0]).create_bookkeeping()
    try:
        for _ in range(10):
            won, start = [], threading.Barrier(3)
            threads = [threading.Thread(target=_take, args=(WriterLease(Store(e), settings), start, won))
                       for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(won) == 1
            won[0].release()
    finally:
        for e in engines:
            e.close()


@pytest.mark.parametrize("judged", ["embedded", "server"])
def test_a_claimed_generation_is_alive_before_its_first_beat(monkeypatch, judged):
    """Between a writer's claim and its first heartbeat, a contender that read the claim took its holder
    for dead and claimed the next generation (seen once in CI: two of three writers started at once)."""
    settings = make_settings(writer_lease_s=1)
    engine = Engine(settings)
    Store(engine).create_database()
    Store(engine).create_bookkeeping()
    make = _server_mode_lease if judged == "server" else (lambda e, s: WriterLease(Store(e), s))
    first, contender = make(engine, settings), make(engine, settings)
    claim, judged_dead = first.store.claim, []

    def claim_then_look(name: str, comment: str = "") -> bool:
        claimed = claim(name, comment)
        judged_dead.append(contender._dead(contender._top()[1]))  # as a contender reads it, at once
        return claimed

    monkeypatch.setattr(first.store, "claim", claim_then_look)
    try:
        first.acquire()
        assert judged_dead == [False]
    finally:
        first.release()
        engine.close()


def _take(one: WriterLease, start: threading.Barrier, won: list) -> None:
    start.wait()
    try:
        one.acquire()
        won.append(one)
    except GameLensError:
        pass


def _server_mode_lease(engine, settings) -> WriterLease:
    """A lease judged as on a ClickHouse server (heartbeats and their age), on the embedded engine."""
    lease = WriterLease(Store(engine), settings)
    lease.embedded = False
    return lease


def _bookkept_engine(settings) -> Engine:
    """An engine on a new database with its bookkeeping tables (the lease's among them)."""
    engine = Engine(settings)
    Store(engine).create_database()
    Store(engine).create_bookkeeping()
    return engine


def test_a_writer_whose_beats_are_refused_still_learns_it_was_taken_over():
    """A database that refuses writes (a full disk) refuses the writer's heartbeats too: its lease lapses
    and another process takes over. The refused beat must not hide that: the writer stands down."""
    settings = make_settings(writer_lease_s=1)
    engine = _bookkept_engine(settings)
    try:
        refused = _server_mode_lease(engine, settings)
        refused.acquire()

        def full_disk(*args):
            raise GameLensError("insufficient_storage", "The database's disk is full.", 507)

        refused.store.heartbeat = full_disk
        lease_module._HERE.discard(refused.holder)  # as if it ran elsewhere
        time.sleep(1.5)
        successor = _server_mode_lease(engine, settings)
        successor.acquire()  # the refused writer's lease has lapsed
        _eventually(lambda: refused.lost, timeout=5)
        assert not successor.lost
        successor.release()
        refused.release()
    finally:
        engine.close()


def test_a_record_is_not_written_over_one_a_later_writer_wrote(make_client):
    """The writer generation fences upload records (records.UploadRecord.writer): a writer that comes
    back after its successor recorded an upload's end cannot overwrite it, whatever the clocks say."""
    client = make_client()
    store = client.app.state.uploads.store
    assert store.save_upload(7, orjson.dumps({"state": "interrupted", "writer": 3}).decode(), 3)
    assert not store.save_upload(7, orjson.dumps({"state": "failed", "writer": 2}).decode(), 2)  # told, not silent
    assert orjson.loads(store.upload_docs(7)[0]) == {"state": "interrupted", "writer": 3}
    store.save_upload(7, orjson.dumps({"state": "succeeded", "writer": 3}).decode(), 3)
    assert orjson.loads(store.upload_docs(7)[0])["state"] == "succeeded"
    store.save_upload(7, orjson.dumps({"state": "failed", "writer": 4}).decode(), 4)
    assert orjson.loads(store.upload_docs(7)[0])["state"] == "failed"
    store.save_upload(8, orjson.dumps({"state": "queued"}).decode(), 0)  # no record yet: any writer may
    assert orjson.loads(store.upload_docs(8)[0])["state"] == "queued"


def test_a_writer_whose_record_was_fenced_off_stops_doing_writers_work(make_client, caplog):
    """A later writer recorded an upload; this process's next write of that record is refused. It stops
    at once (uploads answer 409 as on a reader), before its lease's next beat has seen the successor."""
    client = make_client()
    jobs = client.app.state.uploads
    later = jobs.writer_generation + 1
    rec = UploadRecord(id=jobs.store.claim_upload_id(), url="x.csv", state="loading", created_at=jobs.store.now())
    jobs.store.save_upload(rec.id, rec.model_copy(update={"writer": later}).doc(), later)
    assert jobs.may_write()
    jobs._save(rec.model_copy(update={"state": "failed"}))
    assert not jobs.may_write() and "not written" in caplog.text
    assert orjson.loads(jobs.store.upload_docs(rec.id)[0])["state"] == "loading"  # the later writer's stays
    r = client.post("/api/v1/uploads", json={"url": "http://example.com/g.csv"})
    assert r.status_code == 409, r.text


def test_a_writer_fenced_off_during_a_load_does_not_switch_to_its_data(make_client, files):
    """A later writer records an upload while this process downloads it: this process's next write of
    the record is refused, and its load ends without a switch: the served data stays the earlier one
    and the later writer's record stands."""
    client = make_client()
    jobs = client.app.state.uploads
    first = upload(client, files.url("sample.csv"))
    files.hold.clear()
    rec = client.post("/api/v1/uploads", json={"url": files.url("sample.csv", "hold")}).json()
    _eventually(lambda: client.get(f"/api/v1/uploads/{rec['id']}").json()["bytes_received"] > 0, timeout=10)
    later = jobs.writer_generation + 1
    theirs = UploadRecord.model_validate(rec).model_copy(update={"state": "interrupted", "writer": later})
    jobs.store.save_upload(rec["id"], theirs.doc(), later)
    files.hold.set()
    _eventually(lambda: not jobs.may_write() and jobs.versions.active(fresh=True) == first["id"]
                and client.get(f"/api/v1/uploads/{rec['id']}").json()["state"] == "interrupted", timeout=20)
    time.sleep(1)  # had it gone on, its switch would have landed by now
    assert jobs.versions.active(fresh=True) == first["id"]
    assert orjson.loads(jobs.store.upload_docs(rec["id"])[0])["writer"] == later
    assert f"games_v{rec['id']}" not in table_names(client.app.state.engine)


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_a_writer_generation_rises_above_the_records_even_if_the_lease_tables_were_lost():
    """A database whose writer_lock tables were lost (its records kept): the next writer still takes a
    generation above every record's writer, so its own records are not fenced off (Store.save_upload)."""
    settings = make_settings()
    with TestClient(create_app(settings), headers=AUTH) as client:
        store = client.app.state.uploads.store
        upload_id = store.claim_upload_id()
        left = UploadRecord(id=upload_id, url="x.csv", state="loading", created_at=store.now(), writer=5)
        store.save_upload(upload_id, left.doc(), 5)  # written by a fifth writer, then the process died
    engine = Engine(settings)
    try:
        for name in table_names(engine):
            if name.startswith(WRITER_LOCK):
                engine.execute(f"DROP TABLE `{engine.db}`.`{name}`")
    finally:
        engine.close()
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert client.app.state.lease.generation > 5
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["state"] == "interrupted"


def test_a_writer_cut_off_longer_than_its_lease_stands_down_and_blocks_no_one():
    settings = make_settings(writer_lease_s=1)
    engine = _bookkept_engine(settings)
    try:
        cut = _server_mode_lease(engine, settings)
        cut.acquire()
        cut._stop.set()  # its heartbeats stop reaching the database...
        cut._thread.join()
        lease_module._HERE.discard(cut.holder)  # ...as if it ran elsewhere
        time.sleep(1.5)
        successor = _server_mode_lease(engine, settings)
        successor.acquire()  # the cut-off writer's lease has lapsed
        cut._stop.clear()
        threading.Thread(target=cut._beat, daemon=True).start()  # ...then its connection comes back
        _eventually(lambda: cut.lost, timeout=5)
        assert not successor.lost
        successor.release()
        after = _server_mode_lease(engine, settings)
        after.acquire()  # the one that lost does not block the next writer
        after.release()
        cut.release()
    finally:
        engine.close()


def test_a_restart_on_the_same_host_and_pid_is_not_a_second_writer(replicas):
    """A container's server is pid 1 after every restart: with the embedded engine, a writer recorded
    by an earlier process cannot be alive, whatever its host and pid."""
    first = replicas("writer")
    store = Store(first.app.state.engine)
    first.__exit__(None, None, None)
    stale = uuid.uuid4().hex
    top = store.claims("writer_lock_")[-1][0]
    assert store.claim(f"writer_lock_{top + 1}", f"holder:{stale}")
    store.heartbeat(stale, socket.gethostname(), os.getpid())  # heard from just now, same host and pid
    replicas("all")


@pytest.mark.usefixtures("engine_unheld")  # a restart: the engine starts again too
def test_a_writer_that_stopped_is_followed_by_another(replicas, files):
    first = replicas("writer")
    upload(first, _file(files, "w10.csv", 10))
    first.__exit__(None, None, None)
    second = replicas("writer")
    assert _served(second) == (1, 10)
    assert upload(second, _file(files, "w20.csv", 20))["id"] == 2


def test_replicas_starting_during_a_load_and_a_switch(replicas, files):
    """A reader starting while the writer loads, and another while the writer is between its rename
    and its switch, do no start-up work: the upload succeeds, every replica reads it."""
    writer = replicas("writer")
    upload(writer, _file(files, "s10.csv", 10))
    versions = writer.app.state.uploads.versions
    real, started = versions._switch, []

    def switch_after_a_reader_started(upload_id):
        started.append(replicas("reader"))  # the renamed table exists; the pointer does not name it yet
        return real(upload_id)

    versions._switch = switch_after_a_reader_started
    files.hold.clear()
    rec = writer.post("/api/v1/uploads", json={"url": files.url("sample.csv", "hold")}).json()
    _eventually(lambda: writer.get(f"/api/v1/uploads/{rec['id']}").json()["state"] in ("downloading", "loading"))
    during_load = replicas("reader")
    files.hold.set()
    done = writer.app.state.uploads.wait(rec["id"], 60)
    del versions._switch
    assert done["state"] == "succeeded", done
    for client in (writer, during_load, *started):
        _eventually(lambda c=client: c.get("/api/v1/games?limit=1").json().get("version") == rec["id"])
        assert _served(client) == (rec["id"], 100)
        assert _pointer_names_a_table(client)


def test_a_prune_while_a_peer_reads(replicas, files):
    """keep_versions=1 and a short grace: the writer drops replaced versions while a reader reads
    continuously; every read answers 200 with the whole of the version it names."""
    writer = replicas("writer", keep_versions=1, **SHORT_GRACE)
    reader = replicas("reader", keep_versions=1, **SHORT_GRACE)
    sizes = {}
    rec = upload(writer, _file(files, "p10.csv", 10))
    sizes[rec["id"]] = 10
    bad, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            r = reader.get("/api/v1/games", params={"limit": 100, "fields": "app_id"})
            if r.status_code != 200 or len(r.json()["rows"]) != sizes.get(r.json()["version"]):
                bad.append((r.status_code, r.text[:200]))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in (20, 30, 40):
            sizes[n // 10] = n  # ids follow the uploads here
            assert upload(writer, _file(files, f"p{n}.csv", n))["id"] == n // 10
        # the janitor drops what it may: polled (2.6 s after the last upload on an idle machine; 4 s was fixed)
        _eventually(lambda: {n for n in table_names(writer.app.state.engine) if n.startswith("games_v")}
                    == {"games_v4"}, timeout=30)
        time.sleep(1.5)  # and the peer reads on past the drop
    finally:
        stop.set()
        thread.join()
    assert bad == []
    assert {n for n in table_names(writer.app.state.engine) if n.startswith("games_v")} == {"games_v4"}


def test_activate_racing_publish(replicas, files):
    writer = replicas("writer")
    reader = replicas("reader")
    for n in (10, 20):
        upload(writer, _file(files, f"a{n}.csv", n))
    stop, statuses = threading.Event(), []

    def activate():
        while not stop.is_set():
            for upload_id in (1, 2):
                statuses.append(writer.post(f"/api/v1/uploads/{upload_id}/activate").status_code)

    thread = threading.Thread(target=activate)
    thread.start()
    try:
        for n in (30, 40):
            assert upload(writer, _file(files, f"a{n}.csv", n))["state"] == "succeeded"
    finally:
        stop.set()
        thread.join()
    assert set(statuses) <= {200, 409}
    for client in (writer, reader):
        assert _pointer_names_a_table(client)
        version, total = _served(client)
        assert total == version * 10


def _last_miss(check, timeout: float = 10) -> float:
    """When the last probe that failed `check` started: the replica's delay without the probes' own
    time (a request took 0.66 s on a loaded CI machine)."""
    missed = time.monotonic()
    deadline = missed + timeout
    while True:
        started = time.monotonic()
        if check():
            return missed
        missed = started
        assert started < deadline, "never happened"
        time.sleep(0.05)


def test_a_key_created_and_revoked_on_the_writer_is_seen_by_a_reader_within_a_second(replicas):
    writer, reader = replicas("writer"), replicas("reader")
    key = writer.post("/api/v1/keys", json={"name": "carol", "role": "reader"}).json()["key"]
    as_carol = {"Authorization": f"Bearer {key}"}
    t0 = time.monotonic()
    assert _last_miss(lambda: reader.get("/api/v1/schema", headers=as_carol).status_code == 200) - t0 < 1.5
    assert writer.delete("/api/v1/keys/carol").status_code == 200
    t0 = time.monotonic()
    assert _last_miss(lambda: reader.get("/api/v1/schema", headers=as_carol).status_code == 401) - t0 < 1.5
    r = reader.post("/api/v1/keys", json={"name": "dave", "role": "reader"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "read_only_replica"


def test_the_admin_key_is_bootstrapped_once(files):
    """Three replicas start at once on an empty database with no GAMELENS_ADMIN_KEY: one admin key."""
    database = make_settings().database
    clients, errors = [], []

    def start(role):
        try:
            client = TestClient(create_app(make_settings(database=database, role=role, admin_key=None,
                                                         writer_lease_s=1)))
            client.__enter__()
            clients.append(client)
        except GameLensError as exc:
            errors.append(exc.code)

    threads = [threading.Thread(target=start, args=(role,)) for role in ("all", "all", "reader")]
    # (GAMELENS_WRITER_LEASE_S is 1 s below: the losing writer waits one lease before it refuses.)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        keys = Store(clients[0].app.state.engine).key_docs()
        assert len(keys) == 1 and '"admin"' in keys[0]
        assert errors == ["writer_exists"]
    finally:
        for client in clients:
            client.__exit__(None, None, None)


def test_a_replica_s_clock_does_not_order_anything(replicas, files, monkeypatch):
    """This process's wall clock an hour behind while the writer switches and records: the database's
    clock decides, so the newest switch is still the one served and nothing is dropped early."""
    writer = replicas("writer", keep_versions=1)
    reader = replicas("reader", keep_versions=1)
    upload(writer, _file(files, "c10.csv", 10))
    real_ns, real_time = time.time_ns, time.time
    monkeypatch.setattr(time, "time_ns", lambda: real_ns() - 3600 * 10**9)
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600)
    upload(writer, _file(files, "c20.csv", 20))
    monkeypatch.undo()
    for client in (writer, reader):
        _eventually(lambda c=client: _served(c) == (2, 20))
    assert {"games_v1", "games_v2"} <= set(table_names(writer.app.state.engine))  # v1 within its grace
    assert writer.post("/api/v1/uploads/1/activate").status_code == 200
    _eventually(lambda: _served(reader) == (1, 10))


def test_a_reader_warms_its_own_cache_when_it_sees_a_switch(replicas, files):
    writer, reader = replicas("writer"), replicas("reader")
    upload(writer, _file(files, "h10.csv", 10))
    _eventually(lambda: reader.get("/api/v1/games").headers.get("x-cache") == "hit")


def test_a_bounded_random_interleaving_of_three_replicas(replicas, files):
    """About 200 random steps over a writer and two readers on a 10-row file: uploads, activations of
    any upload, pages, exports, summaries, a reader restarting. After every step: the pointer names
    an existing table, upload ids are unique, no staging table lacks a running upload, and no read
    answered 5xx."""
    rng = random.Random(20261201)
    url = _file(files, "i10.csv", 10)
    writer = replicas("writer", keep_versions=2)
    pool = [writer, replicas("reader", keep_versions=2), replicas("reader", keep_versions=2)]
    reads = ["/api/v1/games?limit=5", "/api/v1/games?format=csv", "/api/v1/games/summary",
             "/api/v1/games/aggregate?group_by=genres"]
    for step in range(200):
        action = rng.choice(["upload", "activate", "read", "read", "read", "restart"])
        client = rng.choice(pool)
        if action == "upload":
            r = client.post("/api/v1/uploads", json={"url": url})
            assert r.status_code == (202 if client is writer else 409), (step, r.text)
        elif action == "activate":
            r = client.post(f"/api/v1/uploads/{rng.randint(1, 8)}/activate")
            assert r.status_code in ((200, 404, 409) if client is writer else (409,)), (step, r.text)
        elif action == "read":
            r = client.get(rng.choice(reads))
            assert r.status_code in (200, 409), (step, r.status_code, r.text[:200])  # 409: no dataset yet
        elif client is not writer:
            client.__exit__(None, None, None)
            pool[pool.index(client)] = replicas("reader", keep_versions=2)
        _check_invariants(writer, step)
    for upload_id in {u["id"] for u in writer.get("/api/v1/uploads").json()["uploads"]}:
        writer.app.state.uploads.wait(upload_id, 60)
    _check_invariants(writer, "end")


def _running(writer) -> set[int]:
    body = writer.get("/api/v1/uploads").json()
    return {u["id"] for u in body["uploads"] if u["state"] in body["states"]["running"]}


def _check_invariants(writer, step) -> None:
    engine = writer.app.state.engine
    assert _pointer_names_a_table(writer), step
    ids = [orjson.loads(doc)["id"] for doc in writer.app.state.uploads.store.upload_docs()]
    assert len(ids) == len(set(ids)), step
    before = _running(writer)  # a staging table's upload is running before or after the catalogue is read
    staged = {int(n.removeprefix("stage_")) for n in table_names(engine)
              if n.startswith("stage_") and not n.endswith("_csv")}
    assert staged <= before | _running(writer), (step, staged)
