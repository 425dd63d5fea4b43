"""Dataset versions under bad luck: a failure at any step of a switch never costs a kept version and
the upload record tells the truth; every answer reads one version, even while versions switch."""

from __future__ import annotations

import re
import threading
import time

import pytest

from gamelens.errors import GameLensError

from .conftest import engine_of, sample_table, upload, write_csv


class Fault:
    """The first statement of `engine` whose SQL matches `pattern` (and whose parameters satisfy
    `when`) raises a transient `busy`, either instead of running or just after it ran."""

    def __init__(self, engine, pattern: str, after: bool = False, when=lambda params: True):
        self.engine, self.pattern, self.after, self.when = engine, re.compile(pattern), after, when
        self.fired = False
        self._real = engine.execute
        engine.execute = self  # an instance attribute: only this engine object is affected

    def __call__(self, sql, params=None, settings=None):
        hit = not self.fired and self.pattern.search(sql) and self.when(params or {})
        if hit:
            self.fired = True
            if self.after:
                self._real(sql, params, settings)
            raise GameLensError("busy", "The database is busy; try again shortly.", 503)
        return self._real(sql, params, settings)

    def remove(self):
        del self.engine.execute


def _file(files, name: str, rows: list[list[str]]) -> str:
    (files.root / name).write_bytes(write_csv(sample_table()[:1] + rows))
    return files.url(name)


@pytest.fixture
def three_versions(make_client, files):
    """An app keeping 3 versions, with uploads of 10, 20 and 30 rows (the last one active)."""
    client = make_client(keep_versions=3)
    ids = [upload(client, _file(files, f"v{n}.csv", sample_table()[1:n + 1]))["id"] for n in (10, 20, 30)]
    return client, ids


def _served(client) -> tuple[int, int]:
    body = client.get("/api/v1/games", params={"limit": 1, "fields": "app_id"}).json()
    return body["version"], body["total"]


def _stored(client) -> set[int]:
    return {int(n.removeprefix("games_v")) for n in engine_of(client).tables() if n.startswith("games_v")}


# (statement that fails, does it run before failing, does the new upload end up served)
STEPS = [
    ("rename_before", r"RENAME TABLE .*stage_", False, False),
    ("rename_after", r"RENAME TABLE .*stage_", True, False),
    ("switch_before", r"INSERT INTO .*active_version", False, False),
    ("switch_after", r"INSERT INTO .*active_version", True, True),
    ("prune", r"DROP TABLE .*games_v", False, True),
]


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
    elif step == "prune":  # served; pruning failed, so one version too many is kept, until the next upload
        assert rec["state"] == "succeeded" and any("GAMELENS_KEEP_VERSIONS" in w for w in rec["warnings"]), rec
        assert _served(client) == (rec["id"], 40)
        assert _stored(client) == {*ids, rec["id"]}
        nxt = upload(client, _file(files, "v50.csv", sample_table()[1:51]))
        assert _stored(client) == {ids[-1], rec["id"], nxt["id"]}
    else:
        assert rec["state"] == "succeeded", rec
        assert _served(client) == (rec["id"], 40)
        assert _stored(client) == {*ids[1:], rec["id"]}  # the newest 3: the oldest was pruned, as configured


def test_the_record_is_saved_after_the_switch_fails(three_versions, files):
    """Saving `succeeded` fails after the switch: the record still ends as succeeded, with a warning."""
    client, ids = three_versions
    fault = Fault(client.app.state.uploads.worker, r"INSERT INTO .*uploads",
                  when=lambda params: '"state": "succeeded"' in params.get("doc", ""))
    rec = upload(client, _file(files, "v40.csv", sample_table()[1:41]))
    fault.remove()
    assert fault.fired
    assert rec["state"] == "succeeded" and any("after the switch" in w for w in rec["warnings"]), rec
    assert _served(client) == (rec["id"], 40)
    assert _stored(client) == {*ids[1:], rec["id"]}


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


def test_a_version_being_read_is_not_dropped_under_the_reader(make_client, files):
    """keep_versions=1: the previous version goes at the switch, but not while a request reads it."""
    client = make_client(keep_versions=1)
    first = upload(client, _file(files, "k10.csv", sample_table()[1:11]))
    versions = client.app.state.uploads.versions
    with versions.reading() as snap:
        second = upload(client, _file(files, "k20.csv", sample_table()[1:21]))
        assert second["state"] == "succeeded"
        assert engine_of(client).select(f"SELECT count() FROM {snap.table}").scalar() == 10
    assert _stored(client) == {second["id"]}
    assert first["id"] != second["id"]


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
    ("/api/v1/games", {"limit": 1000, "fields": "app_id", "facet": "genres"}, r"^SELECT count\(\)"),
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
