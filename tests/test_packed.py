"""Every field of a page but the description, stored once more as one JSON array per game
(ingest/physical.PACKED, Store.build_packed): a page of many fields reads that column instead of
theirs, with answers equal to the columns' own, and only once every row has it."""

import pytest

from gamelens import schema
from gamelens.ingest import physical
from gamelens.ingest.versions import version_name
from gamelens.query.rows import PACK_FROM

from .conftest import engine_of, finished_app, fresh_snapshot, sample_named, statements_of, walk

PACKED = physical.PACKED
# Text a JSON writer must escape, or may write differently: quotes, backslashes, a tab, slashes, a
# character outside the BMP, right-to-left text, a formula's sign.
NAMES = ['say "hi"', "back\\slash", "tab\there", "a/b</script>", "🎮 emoji", "שלום", "=1+2", "", "  "]
SORTS = [None, "-positive,name", "price,-release_date", "-rating"]


@pytest.fixture(scope="module")
def packed(files):
    """The real sample with awkward names, a free and an undated game, finished (packed fields built)."""
    table = sample_named(NAMES)
    head = table[0]
    table[-1][head.index("Price")] = "0.00"
    table[-2][head.index("Release date")] = "coming soon"
    with finished_app(files, "packed.csv", table) as app:
        yield app


def _versions(client):
    return client.app.state.uploads.versions


def _drop_packed(client, upload_id: int) -> None:
    """Make the version one without packed fields (as earlier releases wrote them). In service a table
    never loses a column, so a process keeps what it saw: this one forgets it."""
    table = _versions(client).table(upload_id)
    engine_of(client).execute(f"ALTER TABLE {table} DROP COLUMN {PACKED}", settings={"mutations_sync": 2})
    _versions(client)._all_derived.clear()


def _page_statement(statements: list[str]) -> str:
    """The last page's statement (its count runs beside it)."""
    return [s for s in statements if "count()" not in s][-1]


def _page(client, sort: str | None, fields: list[str] | None = None) -> list[dict]:
    params = {"limit": 1000}
    if sort:
        params["sort"] = sort
    if fields:
        params["fields"] = ",".join(fields)
    r = client.get("/api/v1/games", params=params)
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def _from_the_columns(client, sort: str | None) -> list[dict]:
    """Every field of every row, asked for a few at a time: too few to read the packed column."""
    names = schema.output_names()
    rows: list[dict] = []
    for start in range(0, len(names), PACK_FROM - 2):
        part = _page(client, sort, ["app_id", *names[start:start + PACK_FROM - 2]])
        rows = [{**old, **new} for old, new in zip(rows, part, strict=True)] if rows else part
    return [{name: row[name] for name in names} for row in rows]


@pytest.mark.parametrize("sort", SORTS)
def test_a_page_of_every_field_reads_the_packed_column_and_answers_as_the_columns_do(packed, monkeypatch, sort):
    client, _ = packed
    assert fresh_snapshot(client).packed
    statements = statements_of(client.app.state.explorer, monkeypatch)
    every = _page(client, sort)
    pages = [s for s in statements if "ORDER BY" in s and "count()" not in s]
    assert pages and all(PACKED in s for s in pages), pages
    statements.clear()
    assert every == _from_the_columns(client, sort)
    assert statements and not any(PACKED in s for s in statements)
    assert {r["name"] for r in every} >= set(NAMES)
    assert any(r["release_date"] is None for r in every) and any(r["price"] == 0 for r in every)


def test_pages_of_a_few_fields_and_pages_by_cursor_read_as_many_fields_as_they_ask(packed, monkeypatch):
    client, _ = packed
    statements = statements_of(client.app.state.explorer, monkeypatch)
    fields = list(physical.PACKED_FIELDS[:PACK_FROM])
    first = client.get("/api/v1/games", params={"sort": "-positive,name", "limit": 7, "fields": ",".join(fields)})
    body = first.json()
    assert list(body["rows"][0]) == fields and PACKED in _page_statement(statements)
    after = client.get("/api/v1/games", params={"sort": "-positive,name", "limit": 7, "cursor": body["next_cursor"],
                                                "fields": ",".join(reversed(fields))}).json()["rows"]
    assert list(after[0]) == list(reversed(fields)) and PACKED in _page_statement(statements)
    whole = _page(client, "-positive,name", fields)
    assert body["rows"] + after == whole[:14]
    client.get("/api/v1/games", params={"fields": ",".join(fields[:PACK_FROM - 1])})
    assert PACKED not in _page_statement(statements)


@pytest.mark.parametrize("sort", ["-positive,name", "name", "-name,app_id"])
def test_pages_sorted_by_the_names_rank_take_the_cursors_name_from_the_packed_column(packed, monkeypatch, sort):
    """Such a page does not read `name` for its next cursor (rows._keys_from_packed): walked by cursor,
    7 rows a page, every field of every row comes in the order of one page of them all."""
    client, _ = packed
    statements = statements_of(client.app.state.explorer, monkeypatch)
    walked = walk(client, {"sort": sort, "limit": 7}, use_cursor=True)
    assert len(walked) > 7 * 3
    assert walked == _page(client, sort)
    pages = [s for s in statements if "count()" not in s]
    assert pages and all(PACKED in s and "`name` AS __k" not in s for s in pages), pages


def test_a_version_without_packed_fields_reads_the_columns_and_a_finish_packs_them(packed, monkeypatch):
    """Versions of earlier releases have no packed column: the same answers, from the columns."""
    client, upload_id = packed
    want = _page(client, "-positive,name")
    _drop_packed(client, upload_id)
    assert not fresh_snapshot(client).packed
    statements = statements_of(client.app.state.explorer, monkeypatch)
    assert _page(client, "-positive,name") == want
    assert statements and not any(PACKED in s for s in statements)
    assert _versions(client).finish(upload_id) == "ready"
    assert fresh_snapshot(client).packed
    assert _page(client, "-positive,name") == want
    assert PACKED in _page_statement(statements)


def test_a_start_packs_the_versions_finished_without_them(packed):
    """A packing that failed, or a version an earlier release finished: the next start packs it
    (test_upgrades.py starts on the earlier releases' own databases)."""
    client, upload_id = packed
    _drop_packed(client, upload_id)
    _versions(client).rank_and_pack(stopping=lambda: True)
    assert not fresh_snapshot(client).packed
    client.app.state.uploads._resume_indexes()
    assert fresh_snapshot(client).packed
    assert _page(client, None) == _from_the_columns(client, None)


def test_a_packing_stopped_midway_starts_over(packed):
    """A stop can leave the working column half written: the next build replaces it."""
    client, upload_id = packed
    versions, engine = _versions(client), engine_of(client)
    name, table = version_name(upload_id), versions.table(upload_id)
    _drop_packed(client, upload_id)
    engine.execute(f"ALTER TABLE {table} ADD COLUMN {PACKED}_new String DEFAULT '[1]'", settings={"mutations_sync": 2})
    assert not fresh_snapshot(client).packed
    versions.store.build_packed(name)
    assert versions.store.derived(name) >= {PACKED}
    columns = {n for (n,) in engine.select("SELECT name FROM system.columns WHERE database = {db:String} AND "
                                           "table = {t:String}", {"db": versions.store.db, "t": name}).rows}
    assert f"{PACKED}_new" not in columns
    assert fresh_snapshot(client).packed
    assert _page(client, "-rating") == _from_the_columns(client, "-rating")


@pytest.mark.above_the_engine
def test_a_packing_that_differs_from_a_read_is_not_served(packed, monkeypatch, caplog):
    """A mutation formats with the server's settings, not the statement's: arrays that a read would
    format otherwise (here, left unwritten) are checked, dropped and never read."""
    client, upload_id = packed
    versions = _versions(client)
    name = version_name(upload_id)
    _drop_packed(client, upload_id)
    real = versions.store.t.execute

    def without_update(sql, *args, **kwargs):
        if " UPDATE " not in sql:
            real(sql, *args, **kwargs)

    monkeypatch.setattr(versions.store.t, "execute", without_update)
    versions._pack(name)
    monkeypatch.undo()
    assert "packing_differs" in caplog.text
    assert not fresh_snapshot(client).packed
    assert versions.store.derived(name) == {physical.rank_column("name"), physical.ELEMENTS}
    versions._pack(name)
    assert fresh_snapshot(client).packed
