"""Element bitmaps (ingest/physical.ELEMENT_LISTS, Store.build_elements): each tag's and genre's games as
a bitmap of their rows, in a table of the version's own, from which a segment's top lists come. Written by
a finish, or by a start for a version without them; until then the lists are read, with the same answers."""

from collections import Counter
from concurrent.futures import CancelledError, Future

import pytest

from gamelens import schema
from gamelens.errors import GameLensError
from gamelens.ingest import physical
from gamelens.ingest.versions import version_name
from gamelens.query import filters, rows

from .conftest import engine_of, finished_app, fresh_snapshot, sample_table, statements_of, table_names

SEGMENT = {"genres": "indie"}


@pytest.fixture(scope="module")
def finished(files):
    """The sample, finished (its element bitmaps written)."""
    with finished_app(files, "elements_sample.csv", sample_table()) as app:
        yield app


def _versions(client):
    return client.app.state.uploads.versions


def _summary(client, monkeypatch) -> tuple[dict, list[str]]:
    """The segment's summary, and the statements it ran."""
    statements = statements_of(client.app.state.explorer, monkeypatch)
    body = client.get("/api/v1/games/summary", params=SEGMENT).json()
    monkeypatch.undo()
    body.pop("engine_ms", None)
    body.pop("took_ms", None)
    return body, statements


def _read_bitmaps(statements: list[str]) -> bool:
    return any("bitmapAndCardinality" in sql for sql in statements)


def _drop_bitmaps(client, upload_id: int) -> None:
    """Make the version one without bitmaps (as earlier releases wrote them). In service a version never
    loses them, so a process keeps what it saw: this one forgets it."""
    _versions(client).store.drop(physical.elements_table(version_name(upload_id)))
    _versions(client)._all_derived.clear()


def _elements_tables(client) -> set[str]:
    return {n for n in table_names(engine_of(client)) if n.startswith(physical.elements_table(""))}


def test_every_list_of_few_elements_has_its_bitmaps():
    assert set(physical.ELEMENT_LISTS) == {c.name for c in schema.COLUMNS if filters.by_elements(c)}


def test_each_element_holds_the_rows_of_the_games_that_list_it(finished, sample_rows):
    client, upload_id = finished
    snap = fresh_snapshot(client)
    for name in physical.ELEMENT_LISTS:
        want = Counter(v for r in sample_rows for v in set(r[name]))
        got = engine_of(client).select(
            f"SELECT element, bitmapCardinality(rows) FROM {snap.elements} WHERE list = {{l:String}}",
            {"l": name}).rows
        assert dict(got) == dict(want), name
    rows_of_indie = engine_of(client).select(
        f"SELECT arraySort(groupArray(_row)) FROM {snap.table} WHERE has(genres, 'Indie')").scalar()
    assert engine_of(client).select(f"SELECT bitmapToArray(rows) FROM {snap.elements} WHERE list = 'genres' "
                                    "AND element = 'Indie'").scalar() == rows_of_indie


def test_a_version_without_bitmaps_reads_its_lists_and_a_start_writes_them(finished, monkeypatch):
    """The same summary from the lists; the next start (its resumed finishing) writes the bitmaps."""
    client, upload_id = finished
    client.app.state.explorer.cache.keep_only("")
    with_bitmaps, statements = _summary(client, monkeypatch)
    assert _read_bitmaps(statements)
    _drop_bitmaps(client, upload_id)
    assert fresh_snapshot(client).elements == ""
    client.app.state.explorer.cache.keep_only("")
    from_lists, statements = _summary(client, monkeypatch)
    assert from_lists == with_bitmaps and not _read_bitmaps(statements)
    client.app.state.uploads._resume_indexes()
    assert fresh_snapshot(client).elements
    client.app.state.explorer.cache.keep_only("")
    again, statements = _summary(client, monkeypatch)
    assert again == with_bitmaps and _read_bitmaps(statements)


@pytest.mark.parametrize("lists", [("tags", "genres"), physical.ELEMENT_LISTS], ids=["031593a", "eec6f14"])
def test_bitmaps_an_earlier_release_wrote_are_read_once_a_start_completes_them(finished, sample_rows, monkeypatch,
                                                                                 lists):
    """Releases 031593a to 010e1e4 wrote the bitmaps of tags and genres only, and none before the fortieth pass
    named the lists in the table's comment. Such a table is not read: a segment of categories, whose rows the
    bitmaps would give (filters.ROWS_SQL), is counted from the lists. The next start completes it: it writes
    again a table that lacks a list, and marks one that has them all, which it keeps as it is."""
    client, upload_id = finished
    versions, engine = _versions(client), engine_of(client)
    own = physical.elements_table(version_name(upload_id))
    engine.execute(f"DELETE FROM {versions.store.q(own)} WHERE list NOT IN {{kept:Array(String)}}",
                   {"kept": list(lists)})
    versions.store.comment(own, "")
    versions._all_derived.clear()
    assert fresh_snapshot(client).elements == ""
    segment = [r for r in sample_rows if any("co-op" in c.lower() for c in r["categories"])]
    want = Counter(t for r in segment for t in set(r["tags"]))
    want = sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    def segment_summary(from_bitmaps: bool) -> None:
        client.app.state.explorer.cache.keep_only("")
        statements = statements_of(client.app.state.explorer, monkeypatch)
        body = client.get("/api/v1/games/summary", params={"categories": "co-op"}).json()
        monkeypatch.undo()
        assert body["games"] == len(segment) and want
        assert [(t["value"], t["games"]) for t in body["top_tags"]] == want
        assert _read_bitmaps(statements) == from_bitmaps

    segment_summary(False)
    uuid, ran = versions.store.uuid(own), []
    execute = versions.store.t.execute

    def recorded(sql, *args, **kwargs):
        ran.append(sql)
        return execute(sql, *args, **kwargs)

    monkeypatch.setattr(versions.store.t, "execute", recorded)
    client.app.state.uploads._resume_indexes()
    monkeypatch.undo()
    assert fresh_snapshot(client).elements
    assert (versions.store.uuid(own) == uuid) == (lists == physical.ELEMENT_LISTS)
    # A process of the earlier release reads the table while it is written again: swapped, never dropped.
    assert not any(sql.startswith("DROP") and f"`{own}`" in sql.split()[-2] for sql in ran), ran
    assert _elements_tables(client) == {own}
    segment_summary(True)


def test_a_failed_build_leaves_no_table_and_the_lists_read(finished, monkeypatch, caplog):
    """A build that fails midway (here: a list the table does not have, after the first lists were
    written) removes its working table; the version is read from its lists, and a finish writes them."""
    client, upload_id = finished
    versions = _versions(client)
    _drop_bitmaps(client, upload_id)
    monkeypatch.setattr(physical, "ELEMENT_LISTS", (*physical.ELEMENT_LISTS, "no_such_list"))
    assert versions.finish(upload_id) == "ready"
    monkeypatch.undo()
    assert "storing the element bitmaps" in caplog.text
    assert _elements_tables(client) == set()
    assert fresh_snapshot(client).elements == ""
    assert versions.finish(upload_id) == "ready"
    assert _elements_tables(client) == {physical.elements_table(version_name(upload_id))}
    assert fresh_snapshot(client).elements


def test_a_start_drops_a_stopped_build_and_bitmaps_without_their_version(finished):
    client, upload_id = finished
    versions, own = _versions(client), physical.elements_table(version_name(upload_id))
    engine = engine_of(client)
    for left in (f"{own}_new", physical.elements_table(version_name(upload_id + 100))):
        engine.execute(f"CREATE TABLE {versions.store.q(left)} (x UInt8) ENGINE = MergeTree ORDER BY x")
    versions.tidy(client.app.state.settings.keep_versions, {upload_id})
    assert _elements_tables(client) == {own}
    assert fresh_snapshot(client).elements


def test_facets_counted_together_each_get_their_answer_or_the_failure():
    """rows._each_list: one statement's counts become each facet's answer; its failure, or its cancellation
    at a stop, reaches every facet waiting on it (none waits for ever)."""
    counted = Future()
    parts = rows._each_list(counted, ["tags", "genres"])
    counted.set_result({"tags": [("2D", 3)], "genres": [("Indie", 5), ("RPG", 1)]})
    assert parts["tags"].result(0) == [{"value": "2D", "count": 3}]
    assert parts["genres"].result(0) == [{"value": "Indie", "count": 5}, {"value": "RPG", "count": 1}]
    failed = Future()
    parts = rows._each_list(failed, ["tags", "genres"])
    failed.set_exception(GameLensError("busy", "try again", 503))
    for part in parts.values():
        with pytest.raises(GameLensError):
            part.result(0)
    cancelled = Future()
    parts = rows._each_list(cancelled, ["tags"])
    cancelled.cancel()
    with pytest.raises(CancelledError):
        parts["tags"].result(0)
