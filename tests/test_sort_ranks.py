"""Text sorted by a stored rank (ingest/physical.RANKED, Store.build_rank): the same order as the text
itself, used only once every row of the version has its rank."""

import csv
import io

import pytest

from gamelens.engine import engine_error
from gamelens.ingest import migrations, physical
from gamelens.ingest.versions import version_name

from .conftest import (
    decoded_cursor,
    encoded_cursor,
    engine_of,
    finished_app,
    fresh_snapshot,
    sample_named,
    statements_of,
    walk,
)

RANK = physical.rank_column("name")
# Ties, case, accents, an empty name, a prefix and a trailing space: byte order decides, as in the engine.
NAMES = ["b", "B", "a", "", "é", "e", "ä", "Z", "b", "b ", "ab", "a", "Ω", "Bowl", "bowl"]


@pytest.fixture(scope="module")
def ranked(files):
    """An app whose version has names with every kind of tie and order, finished (ranks built)."""
    with finished_app(files, "ranked_names.csv", sample_named(NAMES)) as app:
        yield app


def _versions(client):
    return client.app.state.uploads.versions


def _python_order(client, sort: str) -> list[int]:
    rows = client.get("/api/v1/games", params={"limit": 1000, "fields": "app_id,name,positive"}).json()["rows"]
    if sort == "name":
        rows.sort(key=lambda r: (r["name"].encode(), r["app_id"]))
    elif sort == "-name":
        rows.sort(key=lambda r: r["app_id"])
        rows.sort(key=lambda r: r["name"].encode(), reverse=True)
    else:  # -positive,name
        rows.sort(key=lambda r: (-r["positive"], r["name"].encode(), r["app_id"]))
    return [r["app_id"] for r in rows]


def _ids(client, sort: str, use_cursor: bool) -> list[int]:
    return [r["app_id"] for r in walk(client, {"sort": sort, "limit": 7, "fields": "app_id"}, use_cursor)]


def _drop_rank(client, table: str) -> None:
    """Make the version one without ranks (as earlier releases wrote them). In service a table never
    loses a column, so a process keeps what it saw: this one forgets it."""
    engine_of(client).execute(f"ALTER TABLE {table} DROP COLUMN {RANK}", settings={"mutations_sync": 2})
    _versions(client)._all_derived.clear()


def _stored_ranks(client, upload_id: int) -> dict[str, set[int]]:
    table = _versions(client).table(upload_id)
    ranks: dict[str, set[int]] = {}
    for name, rank in engine_of(client).select(f"SELECT name, {RANK} FROM {table}").rows:
        ranks.setdefault(name, set()).add(rank)
    return ranks


def test_every_name_has_the_rank_of_its_place_in_byte_order(ranked):
    client, upload_id = ranked
    ranks = _stored_ranks(client, upload_id)
    ordered = sorted(ranks, key=str.encode)
    assert {name: ranks[name] for name in ordered} == {name: {i} for i, name in enumerate(ordered, 1)}


@pytest.mark.parametrize("sort", ["name", "-name", "-positive,name"])
def test_pages_sorted_by_name_read_the_rank_and_keep_the_order(ranked, monkeypatch, sort):
    client, _ = ranked
    assert RANK in fresh_snapshot(client).ranks
    want = _python_order(client, sort)
    statements = statements_of(client.app.state.explorer, monkeypatch)
    assert _ids(client, sort, use_cursor=False) == want
    assert _ids(client, sort, use_cursor=True) == want
    pages = [s for s in statements if "ORDER BY" in s and "count()" not in s]
    assert pages and all(RANK in s for s in pages), pages
    export = client.get("/api/v1/games", params={"sort": sort, "format": "csv", "fields": "app_id"})
    assert [int(r[0]) for r in list(csv.reader(io.StringIO(export.text)))[1:]] == want


def test_a_cursor_compares_ranks_in_its_own_version_and_values_in_another(ranked, monkeypatch):
    """A next_cursor carries its keys' ranks in the version it came from: there the keyset condition
    compares numbers; a cursor from another version (after a switch), or from a release before, compares
    the values: the same rows."""
    client, _ = ranked
    params = {"sort": "-positive,name", "limit": 4, "fields": "app_id"}
    statements = statements_of(client.app.state.explorer, monkeypatch)
    assert _ids(client, "-positive,name", use_cursor=True) == _python_order(client, "-positive,name")
    keyset_pages = [s for s in statements if "{c1:" in s]
    assert keyset_pages and all(f"{RANK} > {{c1:UInt32}}" in s for s in keyset_pages), keyset_pages
    doc = decoded_cursor(client.get("/api/v1/games", params=params).json()["next_cursor"])
    here = client.get("/api/v1/games", params={**params, "cursor": encoded_cursor(doc)}).json()["rows"]
    elsewhere = {**doc, "r": {"t": "another version", "v": doc["r"]["v"]}}
    before_ranks = {k: v for k, v in doc.items() if k != "r"}
    for cursor in (elsewhere, before_ranks):
        statements.clear()
        assert client.get("/api/v1/games", params={**params, "cursor": encoded_cursor(cursor)}).json()["rows"] == here
        page = [s for s in statements if "count()" not in s][-1]
        assert "`name` > {c1:String}" in page and RANK not in page.split(" WHERE ")[1].split("ORDER BY")[0], page
    for bad in ({"t": doc["r"]["t"], "v": [-1]}, {"t": doc["r"]["t"], "v": [1, 2]}, {"t": 5, "v": [1]}, [1],
                {"t": doc["r"]["t"], "v": [True]}):
        r = client.get("/api/v1/games", params={**params, "cursor": encoded_cursor({**doc, "r": bad})})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor", (bad, r.text)


def test_a_version_without_ranks_sorts_by_the_text_and_a_finish_builds_them(ranked, monkeypatch):
    """Versions of earlier releases have no rank column: the same answers, from the text."""
    client, upload_id = ranked
    table = _versions(client).table(upload_id)
    _drop_rank(client, table)
    assert RANK not in fresh_snapshot(client).ranks
    want = _python_order(client, "-positive,name")
    statements = statements_of(client.app.state.explorer, monkeypatch)
    assert _ids(client, "-positive,name", use_cursor=True) == want
    assert statements and not any(RANK in s for s in statements)
    assert _versions(client).finish(upload_id) == "ready"
    assert RANK in fresh_snapshot(client).ranks
    assert _ids(client, "-positive,name", use_cursor=False) == want


def test_a_start_ranks_the_versions_finished_without_their_ranks(ranked):
    """A rank build that failed, or a version an earlier release finished: the next start ranks it
    (test_upgrades.py starts on the earlier releases' own databases)."""
    client, upload_id = ranked
    _drop_rank(client, _versions(client).table(upload_id))
    assert RANK not in fresh_snapshot(client).ranks
    client.app.state.uploads._resume_indexes()
    assert RANK in fresh_snapshot(client).ranks
    assert _ids(client, "-name", use_cursor=True) == _python_order(client, "-name")


def test_a_start_stopping_ranks_no_more_versions(ranked):
    client, upload_id = ranked
    _drop_rank(client, _versions(client).table(upload_id))
    _versions(client).rank_and_pack(stopping=lambda: True)
    assert RANK not in fresh_snapshot(client).ranks
    _versions(client).rank_and_pack(stopping=lambda: False)
    assert RANK in fresh_snapshot(client).ranks


def test_a_start_leaves_a_newer_release_s_version_as_it_is(ranked):
    """A version a newer release wrote (then rolled back) is not served here, nor changed."""
    client, upload_id = ranked
    store, name = _versions(client).store, version_name(upload_id)
    _drop_rank(client, _versions(client).table(upload_id))
    store.comment(name, f"upload:{upload_id} layout:{migrations.LAYOUT + 1}")
    try:
        _versions(client).rank_and_pack(stopping=lambda: False)
        assert RANK not in store.derived(name)
    finally:
        store.comment(name, f"upload:{upload_id} layout:{migrations.LAYOUT}")
    _versions(client).rank_and_pack(stopping=lambda: False)
    assert RANK in fresh_snapshot(client).ranks


def test_a_rank_build_stopped_midway_starts_over(ranked):
    """A stop can leave the working column and the Join table: the next build replaces both, and the
    next start drops a Join table whose build it does not resume."""
    client, upload_id = ranked
    versions, engine = _versions(client), engine_of(client)
    name, table = version_name(upload_id), versions.table(upload_id)
    _drop_rank(client, table)
    engine.execute(f"ALTER TABLE {table} ADD COLUMN {RANK}_new UInt32 DEFAULT 7", settings={"mutations_sync": 2})
    join = versions.store.q(f"{name}{RANK}")
    engine.execute(f"CREATE TABLE {join} (row UInt64, rank UInt32) ENGINE = Join(ANY, LEFT, row)")
    engine.execute(f"INSERT INTO {join} SELECT _row, 9 FROM {table}")
    assert RANK not in fresh_snapshot(client).ranks
    versions.store.build_rank(name, "name")
    ranks = _stored_ranks(client, upload_id)
    assert sorted(ranks, key=str.encode) == sorted(ranks, key=lambda n: min(ranks[n]))
    assert len({r for s in ranks.values() for r in s}) == len(ranks)
    tables = {t[0]: t[2] for t in versions.store.tables()}
    assert f"{name}{RANK}" not in tables and f"{RANK}_new" not in tables[name]

    engine.execute(f"CREATE TABLE {join} (row UInt64, rank UInt32) ENGINE = Join(ANY, LEFT, row)")
    versions.tidy(client.app.state.settings.keep_versions, {upload_id})
    assert f"{name}{RANK}" not in {t[0] for t in versions.store.tables()}
    assert RANK in fresh_snapshot(client).ranks


# The engine's errors as the driver raises them: one it reports as such, and a limit (memory), which
# engine.engine_error turns into our own error, not an EngineError.
REFUSALS = ["Code: 164. DB::Exception: Cannot modify setting in readonly mode. (READONLY)",
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)"]


@pytest.mark.parametrize("refusal", REFUSALS, ids=["engine error", "memory limit"])
def test_a_failed_rank_build_leaves_the_text_sort_and_the_indexes(ranked, monkeypatch, caplog, refusal):
    client, upload_id = ranked
    versions = _versions(client)
    table = versions.table(upload_id)
    _drop_rank(client, table)

    def refused(name, column):
        raise engine_error(RuntimeError(refusal))

    monkeypatch.setattr(versions.store, "build_rank", refused)
    assert versions.finish(upload_id) == "ready"
    assert "storing the sort rank of name" in caplog.text
    assert RANK not in fresh_snapshot(client).ranks
    assert _ids(client, "-positive,name", use_cursor=False) == _python_order(client, "-positive,name")
    monkeypatch.undo()
    versions.store.build_rank(version_name(upload_id), "name")
    assert RANK in fresh_snapshot(client).ranks


def _unfinished_mutations(client, name: str) -> list:
    return engine_of(client).select("SELECT mutation_id FROM system.mutations WHERE database = {db:String} AND "
                                    "table = {t:String} AND NOT is_done",
                                    {"db": _versions(client).store.db, "t": name}, readonly=False).rows


def _stuck_update(client, upload_id: int) -> str:
    """What a stop during the rank's update can leave: the engine resumes the update at start, and
    without its Join table it fails for ever and holds every later mutation of the table (the indexes')."""
    versions, engine = _versions(client), engine_of(client)
    name, table = version_name(upload_id), versions.table(upload_id)
    join = versions.store.q(f"{name}{RANK}")
    _drop_rank(client, table)
    engine.execute(f"ALTER TABLE {table} ADD COLUMN {RANK}_new UInt32", settings={"mutations_sync": 2})
    engine.execute(f"CREATE TABLE {join} (row UInt64, rank UInt32) ENGINE = Join(ANY, LEFT, row)")
    engine.execute(f"SYSTEM STOP MERGES {table}")
    engine.execute(f"ALTER TABLE {table} UPDATE {RANK}_new = joinGet({{j:String}}, 'rank', _row) WHERE 1",
                   {"j": f"{versions.store.db}.{name}{RANK}"},
                   {"mutations_sync": 0, "allow_nondeterministic_mutations": 1})
    engine.execute(f"DROP TABLE {join}")
    engine.execute(f"SYSTEM START MERGES {table}")
    assert _unfinished_mutations(client, name)  # failing, and retried
    return name


def _work_column_left(client, name: str) -> bool:
    return f"{RANK}_new" in {t[0]: t[2] for t in _versions(client).store.tables()}[name]


def test_a_rank_update_left_failing_is_killed_and_the_build_starts_over(ranked):
    client, upload_id = ranked
    name = _stuck_update(client, upload_id)
    assert _versions(client).finish(upload_id) == "ready"
    assert not _unfinished_mutations(client, name) and not _work_column_left(client, name)
    assert RANK in fresh_snapshot(client).ranks
    assert _ids(client, "name", use_cursor=True) == _python_order(client, "name")


def test_the_next_start_kills_a_rank_update_left_failing(ranked):
    client, upload_id = ranked
    versions = _versions(client)
    name = _stuck_update(client, upload_id)
    versions.store.t.execute(f"CREATE TABLE {versions.store.q(name + RANK)} (row UInt64, rank UInt32) "
                             "ENGINE = Join(ANY, LEFT, row)")  # and the Join table of another try
    versions.tidy(client.app.state.settings.keep_versions, {upload_id})
    assert not _unfinished_mutations(client, name) and not _work_column_left(client, name)
    assert f"{name}{RANK}" not in {t[0] for t in versions.store.tables()}
    assert versions.finish(upload_id) == "ready"
    assert RANK in fresh_snapshot(client).ranks
