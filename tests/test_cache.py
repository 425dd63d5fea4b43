"""The response cache: keyed by (dataset version, canonical request), bounded, emptied by a switch,
warmed before a version is visible; ETag and If-None-Match on every read answer."""

from __future__ import annotations

import gc
import tracemalloc
import urllib.parse

from gamelens.query import cache as cache_module
from gamelens.query.cache import make_key
from gamelens.query.run import WARM

from .conftest import sample_table, upload, write_csv

READS = ["/api/v1/games?genres=indie&sort=-rating&limit=5", "/api/v1/games/aggregate?group_by=tags&metrics=count",
         "/api/v1/games/summary?price__lt=5", "/api/v1/games/20200"]


def test_repeats_are_answered_from_the_cache_with_etags(make_client, files):
    client = make_client()
    upload(client, files.url("sample.csv"))
    for path in READS:
        first = client.get(path)
        again = client.get(path)
        assert first.status_code == again.status_code == 200, path
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit"), path
        assert first.headers["etag"] == again.headers["etag"] and first.headers["cache-control"] == "private, no-cache"
        assert again.json().get("engine_ms", 0) == 0
        strip = {"took_ms", "engine_ms"}
        assert {k: v for k, v in first.json().items() if k not in strip} == \
            {k: v for k, v in again.json().items() if k not in strip}
        fresh = client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert fresh.status_code == 304 and fresh.content == b"" and fresh.headers["etag"] == first.headers["etag"]
        # RFC 9110: a list of tags, weak ones too, or *; a tag written inside another string is none of them
        tag = first.headers["etag"]
        for header, status in ((f'"x", W/{tag}', 304), ("*", 304), (tag + tag, 200), (tag[1:-1], 200)):
            assert client.get(path, headers={"If-None-Match": header}).status_code == status, (path, header)
        # the list sent as two header lines is one list
        assert client.get(path, headers=[("If-None-Match", '"x"'), ("If-None-Match", tag)]).status_code == 304
    # `*` matches a current answer only: a game that is not there is a 404 still
    assert client.get("/api/v1/games/999999", headers={"If-None-Match": "*"}).status_code == 404


def test_the_same_question_in_another_order_is_the_same_answer(make_client, files):
    client = make_client()
    upload(client, files.url("sample.csv"))
    a = client.get("/api/v1/games?genres=indie&price__lt=10&limit=3")
    b = client.get("/api/v1/games?limit=3&price__lt=10&genres=indie")
    assert a.headers["etag"] == b.headers["etag"] and b.headers["x-cache"] == "hit"


def test_a_switch_changes_every_answer_and_drops_the_old_ones(make_client, files):
    client = make_client()
    upload(client, files.url("sample.csv"))
    before = client.get(READS[0])
    cache = client.app.state.explorer.cache
    (files.root / "forty.csv").write_bytes(write_csv(sample_table()[:41]))
    rec = upload(client, files.url("forty.csv"))
    after = client.get(READS[0], headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert after.json()["version"] == rec["id"] and after.json()["total"] <= 40
    identity = client.app.state.uploads.versions.current().identity
    assert {key[0] for key in cache._items} == {identity}  # only the active version's answers are kept


def test_etags_name_the_dataset_not_only_its_upload_id(make_client, files):
    """Two databases that each have an upload 1 with different data: the ETag one gave never earns a
    304 from the other."""
    (files.root / "ten.csv").write_bytes(write_csv(sample_table()[:11]))
    first, second = make_client(), make_client()
    assert upload(first, files.url("sample.csv"))["id"] == upload(second, files.url("ten.csv"))["id"] == 1
    for path in READS:
        tag = first.get(path).headers["etag"]
        again = second.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 200 and again.headers["etag"] != tag, path
        assert first.get(path, headers={"If-None-Match": tag}).status_code == 304


def test_another_releases_etag_never_earns_a_304(make_client, files, monkeypatch):
    """An upgrade keeps the version (same table, same UUID) but may change its answers (an average's
    decimals, a new field): an ETag the release before gave must not be answered 304 by this one."""
    client = make_client()
    upload(client, files.url("sample.csv"))
    tags = {path: client.get(path).headers["etag"] for path in READS}
    monkeypatch.setattr(cache_module, "RELEASE", b"the release before")
    for path, tag in tags.items():
        r = client.get(path, headers={"If-None-Match": tag})
        assert r.status_code == 200 and r.headers["etag"] != tag, path


def test_a_release_digest_changes_with_any_module_of_the_package(tmp_path):
    (tmp_path / "query").mkdir()
    (tmp_path / "query" / "summary.py").write_text("DECIMALS = 4\n")
    (tmp_path / "schema.py").write_text("")
    before = cache_module.release_digest(tmp_path)
    assert cache_module.release_digest(tmp_path) == before
    (tmp_path / "query" / "summary.py").write_text("DECIMALS = 6\n")
    changed = cache_module.release_digest(tmp_path)
    assert changed != before
    (tmp_path / "query" / "summary.py").rename(tmp_path / "query" / "summaries.py")  # a module's name counts
    assert cache_module.release_digest(tmp_path) not in (before, changed)


def test_the_default_views_are_ready_before_the_switch(make_client, files):
    """At the moment of the switch (the pointer names the new version), every warmed answer is already
    in the cache; and the page's first requests are hits."""
    client = make_client()
    explorer = client.app.state.explorer
    at_switch = []

    def check(snap):
        keys = [make_key(snap.identity, kind, items, explorer.constants)
                for kind, requests in WARM.items() for items in requests]
        at_switch.append([explorer.cache.get(key) is not None for key in keys])

    client.app.state.uploads.versions.on_switch.insert(0, check)
    upload(client, files.url("sample.csv"))
    assert at_switch and all(all(ready) for ready in at_switch), at_switch
    ui_default = "/api/v1/games?fields=name,release_date,price,reviews,rating,est_owners,genres,app_id&limit=50"
    for path in ("/api/v1/games", ui_default, "/api/v1/games/summary",
                 "/api/v1/games/aggregate?group_by=genres,release_year&metrics=count&limit=1000&top=8"):
        assert client.get(path).headers["x-cache"] == "hit", path


def test_the_cache_is_bounded_and_can_be_off(make_client, files):
    small = make_client(cache_mb=1)
    upload(small, files.url("sample.csv"))
    for i in range(60):  # full rows with descriptions: far more than 1 MB of answers
        assert small.get("/api/v1/games", params={"limit": 100, "offset": i}).status_code == 200
    cache = small.app.state.explorer.cache
    assert 0 < cache.size_bytes <= 1 << 20
    off = make_client(cache_mb=0)
    upload(off, files.url("sample.csv"))
    for _ in range(2):
        r = off.get(READS[0])
        assert r.headers["x-cache"] == "miss" and r.headers["etag"]
    assert off.get(READS[0], headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_a_setting_that_changes_answers_changes_their_etags(make_client, files):
    """GAMELENS_REVIEW_MULTIPLE is bound into est_owners: after a restart with another value, an ETag
    of the old answers is not current."""
    first = make_client()
    upload(first, files.url("sample.csv"))
    path = "/api/v1/games?fields=app_id,est_owners&limit=1&sort=app_id"
    before = first.get(path)
    again = make_client(database=first.app.state.settings.database, review_multiple=60, role="reader")
    after = again.get(path, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.json()["rows"][0]["est_owners"] == 2 * before.json()["rows"][0][
        "est_owners"]


def _traced_growth(action) -> int:
    """Python memory still held after `action` (tracemalloc), garbage collected before and after."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()
        urllib.parse.clear_cache()  # the standard library's own bounded cache of split URLs (128 entries)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_the_cache_holds_no_more_memory_than_it_is_allowed(make_client, files):
    """Real memory, not the cache's own counter: 150 distinct 60 KB query strings (keys) and then 60
    pages of full rows (answers) each leave at most GAMELENS_CACHE_MB (1 MB) held, and a little slack
    for the request machinery."""
    client = make_client(cache_mb=1)
    upload(client, files.url("sample.csv"))
    client.get("/api/v1/games", params={"name__contains": "warm-up", "limit": 1})  # first-call allocations

    def long_keys():
        for i in range(150):
            r = client.get("/api/v1/games", params={"name__contains": "x" * 60000 + str(i), "limit": 1,
                                                    "fields": "app_id"})
            assert r.status_code == 200

    def big_answers():
        for i in range(60):
            assert client.get("/api/v1/games", params={"limit": 100, "offset": i}).status_code == 200

    allowed = (1 << 20) * 1.1 + (256 << 10)
    for action in (long_keys, big_answers):
        growth = _traced_growth(action)
        assert growth <= allowed, f"{action.__name__}: {growth / 2**20:.1f} MiB held"
        assert client.app.state.explorer.cache.size_bytes <= 1 << 20


def test_the_number_of_answers_is_capped(make_client, files):
    client = make_client(cache_entries=5)
    upload(client, files.url("sample.csv"))
    for i in range(20):
        client.get("/api/v1/games", params={"limit": 1, "offset": i})
    assert len(client.app.state.explorer.cache) == 5


def test_only_admins_see_whether_an_answer_was_cached(make_client, files):
    """X-Cache would tell any key which queries other keys asked."""
    client = make_client()
    upload(client, files.url("sample.csv"))
    reader = {"Authorization": "Bearer " + client.post("/api/v1/keys", json={"name": "r", "role": "reader"}
                                                       ).json()["key"]}
    client.get(READS[0])
    r = client.get(READS[0], headers=reader)
    assert r.status_code == 200 and "x-cache" not in r.headers and r.headers["etag"]
    assert client.get(READS[0]).headers["x-cache"] == "hit"
