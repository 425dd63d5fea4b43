"""Data written by earlier releases keeps serving after an upgrade.

Each release's database, as that release wrote it after two uploads (tests/data/layouts/<commit>,
captured by `python scripts/capture_layout.py <commit> <dir>`), is rebuilt from its DDL and rows;
then today's code starts on it. Every read route must answer, with the values the oracle computes
from the source rows; the older version must serve again after a new upload; a version whose
upgrade fails must stay as it was, be reported on its record and never be served."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from gamelens.api.app import create_app
from gamelens.engine import Engine
from gamelens.ingest import migrations, physical
from gamelens.store import Store

from .conftest import AUTH, make_settings, python_row, read_sample, table_names, upload

# As a new release's process would: the engine starts on the rebuilt tables, loading them from disk.
pytestmark = pytest.mark.usefixtures("engine_unheld")
LAYOUTS = Path(__file__).parent / "data" / "layouts"
RANK = physical.rank_column("name")
RELEASES = ["421b14a", "c1d0440"]  # the releases that landed before this layout's
READS = ["/api/v1/games", "/api/v1/games/summary", "/api/v1/games/aggregate?group_by=developers&metrics=avg:rating",
         "/api/v1/games/aggregate?group_by=genres,release_year&top=3", "/api/v1/games?format=csv",
         "/api/v1/games?developers=inc&sort=-rating", "/api/v1/games/aggregate?group_by=publishers&format=ndjson"]


def restore(settings, release: str) -> None:
    """Rebuild, in the settings' database, the database `release` wrote: its tables, then their rows."""
    engine = Engine(settings)
    try:
        Store(engine).create_database()
        db = engine.db
        for ddl in sorted((LAYOUTS / release).glob("*.sql")):
            engine.execute(ddl.read_text().replace("{db}.", f"`{db}`."))
            rows = ddl.with_suffix(".ndjson").read_text()
            if not rows:
                continue
            columns = engine.select("SELECT name, type FROM system.columns WHERE database = {db:String} AND "
                                    "table = {t:String} ORDER BY position", {"db": db, "t": ddl.stem},
                                    readonly=False).rows
            engine.execute(f"INSERT INTO `{db}`.`{ddl.stem}` SELECT * FROM format(JSONEachRow, {{s:String}}, "
                           "{rows:String})", {"s": ", ".join(f"`{n}` {t}" for n, t in columns), "rows": rows})
    finally:
        engine.close()


def held_ids(release: str, table: str) -> set[int]:
    """The app ids a version table of the release's database holds."""
    lines = (LAYOUTS / release / f"{table}.ndjson").read_text().splitlines()
    return {orjson.loads(line)["app_id"] for line in lines}


def oracle() -> dict[int, dict]:
    return {row["app_id"]: row for row in (python_row(r) for r in read_sample())}


def _same(got, want) -> bool:
    if isinstance(want, float) and got is not None:
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9)
    if isinstance(want, Decimal):  # prices: exact in the CSV, a JSON number in the answer
        return float(want) == got
    return got == want


def assert_served_as_the_oracle_says(client, app_ids: set[int]) -> None:
    want = oracle()
    names = list(next(iter(want.values())))
    body = client.get("/api/v1/games", params={"limit": 100, "fields": ",".join(names)}).json()
    assert {r["app_id"] for r in body["rows"]} == app_ids, body
    for row in body["rows"]:
        for name in names:
            assert _same(row[name], want[row["app_id"]][name]), (row["app_id"], name, row[name],
                                                                 want[row["app_id"]][name])


def assert_every_read_answers(client) -> None:
    for path in READS:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])


def assert_sorted_by_name_from_the_rank(client, app_ids: set[int]) -> None:
    versions = client.app.state.uploads.versions
    versions.active(fresh=True)
    assert RANK in versions.current().ranks
    names = {app_id: row["name"] for app_id, row in oracle().items()}
    body = client.get("/api/v1/games", params={"sort": "name", "limit": 100, "fields": "app_id"}).json()
    assert [r["app_id"] for r in body["rows"]] == sorted(app_ids, key=lambda i: (names[i].encode(), i))


@pytest.mark.parametrize("release", RELEASES)
def test_a_release_s_data_serves_after_the_upgrade(release, files):
    settings = make_settings()
    restore(settings, release)
    active = "games" if release == "421b14a" else "games_v2"  # 421b14a named the active version `games`
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert_every_read_answers(client)
        assert_served_as_the_oracle_says(client, held_ids(release, active))
        records = {u["id"]: u for u in client.get("/api/v1/uploads").json()["uploads"]}
        assert records[2]["active"] and records[1]["stored"], records
        assert all(u["state"] == "succeeded" and u["upgrade_error"] is None for u in records.values())
        tables = client.app.state.uploads.versions.holdings()
        assert {(h.name, h.layout, h.tagged) for h in tables} == {
            ("games_v1", migrations.LAYOUT, True), ("games_v2", migrations.LAYOUT, True)}
        # The older version, activated again after a new upload, serves too.
        new = upload(client, files.url("sample.csv"))
        assert new["state"] == "succeeded", new
        # The worker gave the old versions their sort ranks, packed fields and element bitmaps before it
        # took the upload.
        store = client.app.state.uploads.versions.store
        assert all(store.derived(name) == {RANK, physical.PACKED, physical.ELEMENTS}
                   for name in ("games_v1", "games_v2")), release
        assert client.post("/api/v1/uploads/1/activate").status_code == 200
        assert_every_read_answers(client)
        assert_served_as_the_oracle_says(client, held_ids(release, "games_v1"))
        assert_sorted_by_name_from_the_rank(client, held_ids(release, "games_v1"))


def test_bi_users_view_reads_the_upgraded_layout(files):
    """The view `games` (a real table of that name in release 421b14a) is made after the old table
    is renamed, and again after the upgrade: its columns are today's."""
    settings = make_settings()
    restore(settings, "421b14a")
    with TestClient(create_app(settings), headers=AUTH) as client:
        engine = client.app.state.engine
        rows = engine.select(f"SELECT toTypeName(developers), rating FROM `{engine.db}`.games LIMIT 1").rows
        assert rows[0][0] == "Array(String)", rows


def test_an_upgrade_restarted_after_it_completed_changes_nothing(files):
    settings = make_settings()
    restore(settings, "421b14a")
    with TestClient(create_app(settings), headers=AUTH) as client:
        first = client.get("/api/v1/games?limit=100").json()["rows"]
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert client.get("/api/v1/games?limit=100").json()["rows"] == first
        records = client.get("/api/v1/uploads").json()["uploads"]
        assert {u["indexes"] for u in records} == {"ready"}  # built after the upgrade, as after a load


def _failing_for(upload_id: int):
    """Step 2, failing on one version's copy after its first statements have run there."""
    real = migrations.STEPS[0]

    def statements(store, table: str) -> list[str]:
        sql = real.statements(store, table)
        if table == migrations.upgrade_name(upload_id):
            return [*sql[:3], f"ALTER TABLE {store.q(table)} MATERIALIZE COLUMN `no_such_column`"]
        return sql

    return (migrations.Step(real.to, real.what, statements),)


def test_a_version_that_cannot_be_upgraded_is_reported_and_never_served(files, monkeypatch):
    settings = make_settings()
    restore(settings, "421b14a")
    monkeypatch.setattr(migrations, "STEPS", _failing_for(2))
    with TestClient(create_app(settings), headers=AUTH) as client:
        records = {u["id"]: u for u in client.get("/api/v1/uploads").json()["uploads"]}
        assert "could not be upgraded" in records[2]["upgrade_error"], records[2]
        assert records[1]["upgrade_error"] is None
        # The active version could not be upgraded: the one that could is served instead.
        assert records[1]["active"] and not records[2]["active"]
        assert_every_read_answers(client)
        assert_served_as_the_oracle_says(client, held_ids("421b14a", "games_v1"))
        r = client.post("/api/v1/uploads/2/activate")
        assert r.status_code == 409 and r.json()["error"]["code"] == "version_not_upgraded", r.text
        # Untouched: still the old layout, every row there; no copy left behind.
        engine = client.app.state.engine
        columns = dict(engine.select("SELECT name, type FROM system.columns WHERE database = {db:String} AND "
                                     "table = 'games_v2'", {"db": engine.db}, readonly=False).rows)
        assert columns["developers"] == "String" and "reviews" not in columns
        assert engine.select(f"SELECT count() FROM `{engine.db}`.games_v2", readonly=False).scalar() == 11
        assert not [n for n in table_names(engine) if n.startswith("upgrade_")]
    monkeypatch.undo()
    with TestClient(create_app(settings), headers=AUTH) as client:  # the next start upgrades it
        assert client.get("/api/v1/uploads/2").json()["upgrade_error"] is None
        assert client.post("/api/v1/uploads/2/activate").status_code == 200
        assert_every_read_answers(client)
        assert_served_as_the_oracle_says(client, held_ids("421b14a", "games"))


def test_a_dataset_not_yet_upgraded_is_refused_plainly(files):
    """A table at an older layout under the pointer (as a reader process may find it before the writer
    has started) is answered with 503 and Retry-After, never with the engine's error."""
    settings = make_settings()
    restore(settings, "c1d0440")
    with TestClient(create_app(settings), headers=AUTH) as client:
        engine, versions = client.app.state.engine, client.app.state.uploads.versions
        engine.execute(f"ALTER TABLE `{engine.db}`.games_v2 MODIFY COMMENT 'upload:2'")
        versions.active(fresh=True)
        r = client.get("/api/v1/games")
        assert r.status_code == 503 and r.json()["error"]["code"] == "dataset_not_upgraded", r.text
        assert r.headers["retry-after"]


def _start_and_read(settings) -> tuple[int, dict]:
    """Start today's code on the database; the status of a page and the version it names."""
    with TestClient(create_app(settings), headers=AUTH) as client:
        r = client.get("/api/v1/games", params={"limit": 100, "fields": "app_id"})
        return r.status_code, r.json()


def test_a_crash_inside_the_old_release_s_activate_is_repaired(files):
    """421b14a re-activated upload 1 with EXCHANGE (`games` <-> `games_v1`) and then a RENAME; it
    died between the two: `games` holds upload 1 and `games_v1` holds upload 2."""
    settings = make_settings()
    restore(settings, "421b14a")
    engine = Engine(settings)
    engine.execute(f"EXCHANGE TABLES `{engine.db}`.games AND `{engine.db}`.games_v1")
    engine.close()
    for _ in range(2):  # and again: a repaired database starts as any other
        status, body = _start_and_read(settings)
        assert status == 200 and body["version"] == 1, body
        assert {r["app_id"] for r in body["rows"]} == held_ids("421b14a", "games_v1")


def test_a_crash_inside_the_old_release_s_publish_is_repaired(files):
    """421b14a published upload 3 with EXCHANGE (`games` <-> `stage_3`) and then a RENAME of
    `stage_3` to `games_v2`; it died between the two: upload 2's data is in `stage_3`."""
    settings = make_settings()
    restore(settings, "421b14a")
    engine = Engine(settings)
    db = engine.db
    engine.execute(f"CREATE TABLE `{db}`.stage_3 AS `{db}`.games")
    engine.execute(f"ALTER TABLE `{db}`.stage_3 MODIFY COMMENT 'upload:3'")
    engine.execute(f"INSERT INTO `{db}`.stage_3 SELECT * FROM `{db}`.games LIMIT 5")
    engine.execute(f"EXCHANGE TABLES `{db}`.games AND `{db}`.stage_3")
    engine.close()
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert client.get("/api/v1/games").json()["total"] == 5  # upload 3, as the old release served it
        versions = client.app.state.uploads.versions
        assert {h.name for h in versions.holdings()} == {"games_v1", "games_v2", "games_v3"}
        assert client.post("/api/v1/uploads/2/activate").status_code == 200  # upload 2, under its own name
        assert_served_as_the_oracle_says(client, held_ids("421b14a", "games"))


def test_a_start_that_failed_after_adopting_the_old_table_is_finished_by_the_next(files, monkeypatch):
    """The first start's pointer write fails (the start fails); the next start serves the version
    the old release served."""
    from gamelens.errors import GameLensError
    from gamelens.ingest.versions import Versions

    settings = make_settings()
    restore(settings, "421b14a")
    real, calls = Versions._switch, []

    def failing_once(self, upload_id):
        calls.append(upload_id)
        if len(calls) == 1:
            raise GameLensError("busy", "The database is busy; try again shortly.", 503)
        return real(self, upload_id)

    monkeypatch.setattr(Versions, "_switch", failing_once)
    with pytest.raises(GameLensError), TestClient(create_app(settings), headers=AUTH):
        pass
    monkeypatch.undo()
    status, body = _start_and_read(settings)
    assert status == 200 and body["version"] == 2, body


def test_the_active_version_that_cannot_be_upgraded_is_not_activated_either(files, monkeypatch):
    settings = make_settings()
    restore(settings, "421b14a")
    monkeypatch.setattr(migrations, "STEPS", _failing_everywhere())
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert client.get("/api/v1/games").json()["error"]["code"] == "dataset_not_upgraded"
        for upload_id in (1, 2):
            r = client.post(f"/api/v1/uploads/{upload_id}/activate")
            assert r.status_code == 409 and r.json()["error"]["code"] == "version_not_upgraded", r.text


def _failing_everywhere():
    real = migrations.STEPS[0]
    return (migrations.Step(real.to, real.what,
                            lambda store, t: [f"ALTER TABLE {store.q(t)} MATERIALIZE COLUMN `no_such`"]),)


def test_an_upload_kept_unserved_is_not_served_in_place_of_one_that_cannot_be_upgraded(files, monkeypatch):
    """The versions served before cannot be upgraded, a kept one can: reads still say the dataset is not
    upgraded, and the kept one stays unserved (a restart served it: nobody had asked for it)."""
    settings = make_settings()
    restore(settings, "421b14a")
    monkeypatch.setattr(migrations, "STEPS", _failing_everywhere())
    with TestClient(create_app(settings), headers=AUTH) as client:
        r = client.post("/api/v1/uploads?wait=true&activate=false", json={"url": files.url("sample.csv")})
        kept = r.json()
        assert r.status_code == 200 and kept["stored"] and not kept["active"], kept
    with TestClient(create_app(settings), headers=AUTH) as client:
        assert client.get("/api/v1/games").json()["error"]["code"] == "dataset_not_upgraded"
        assert not client.get(f"/api/v1/uploads/{kept['id']}").json()["active"]
        assert client.post(f"/api/v1/uploads/{kept['id']}/activate").status_code == 200  # when asked, it is
        assert client.get("/api/v1/games").json()["version"] == kept["id"]
