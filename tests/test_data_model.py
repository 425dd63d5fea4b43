"""The Steam data model against Python: studio lists, derived metrics, the share metric, top-N trends
and the segment summary, over the real sample and over a generated file with the hard cases (ties,
zero reviews, free games, studio names with ", Inc.", a studio listed twice)."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from .conftest import python_row, read_sample, sample_table, upload, write_csv

HARD = [  # (Developers, Publishers, Positive, Negative, Price)
    ("Garage Games,Jan Hess", "Garage Games", "0", "0", "0"),
    ("aNCHOR Inc.,fuzz, Inc.", "aNCHOR Inc.", "10", "0", "4.99"),
    ("Gemdrops, Inc.", "Gemdrops, Inc.,Clouded Leopard Entertainment Inc.", "10", "0", "4.99"),
    ("Same Studio,Same Studio", " Spaced ,Out ", "90", "10", "0"),
    ("Wise Wizard Games, LLC", "", "5000000", "1000000", "59.99"),
    ("Solo", "Solo", "1", "1", "0.99"),
    ("Solo", "Solo", "1", "1", "0.99"),  # a tie with the row above on every metric
    ("Tiny Dev,Big Pub, Ltd.,Other", "Big Pub, Ltd.", "3", "0", "19.99"),
]


@pytest.fixture(scope="module")
def generated(files):
    """The sample followed by the hard cases, each a copy of a sample row with new studios and numbers."""
    table = sample_table()
    h = table[0]
    rows = [list(r) for r in table[1:]]
    for i, (dev, pub, pos, neg, price) in enumerate(HARD):
        row = list(table[1 + i])
        row[h.index("AppID")] = str(9_000_000 + i)
        row[h.index("Developers")], row[h.index("Publishers")] = dev, pub
        row[h.index("Positive")], row[h.index("Negative")], row[h.index("Price")] = pos, neg, price
        rows.append(row)
    (files.root / "model.csv").write_bytes(write_csv([h, *rows]))
    return [python_row(dict(zip(h, r, strict=True))) for r in rows]


@pytest.fixture(scope="module")
def model_client(files, generated):
    from fastapi.testclient import TestClient

    from gamelens.api.app import create_app

    from .conftest import AUTH, make_settings

    with TestClient(create_app(make_settings()), headers=AUTH) as client:
        assert upload(client, files.url("model.csv"))["state"] == "succeeded"
        yield client


def _rows(client, **params) -> list[dict]:
    r = client.get("/api/v1/games", params={"limit": 1000, "sort": "app_id", **params})
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def test_studio_lists_split_as_the_source_joins_them(model_client, generated):
    got = {r["app_id"]: r for r in _rows(model_client, fields="app_id,developers,publishers")}
    for want in generated:
        assert got[want["app_id"]]["developers"] == want["developers"]
        assert got[want["app_id"]]["publishers"] == want["publishers"]
    hard = {r["app_id"]: r for r in generated if r["app_id"] >= 9_000_000}
    assert hard[9_000_001]["developers"] == ["aNCHOR Inc.", "fuzz, Inc."]
    assert hard[9_000_002]["publishers"] == ["Gemdrops, Inc.", "Clouded Leopard Entertainment Inc."]
    assert hard[9_000_003]["publishers"] == ["Spaced", "Out"]
    assert hard[9_000_004]["publishers"] == []


def test_derived_values_equal_their_formulas(model_client, generated):
    got = {r["app_id"]: r for r in _rows(model_client)}
    for want in generated:
        row = got[want["app_id"]]
        assert row["reviews"] == want["reviews"] and row["est_owners"] == want["est_owners"]
        for name in ("review_score", "rating", "est_revenue"):
            assert _close(row[name], want[name]), (want["app_id"], name, row[name], want[name])
    zero = got[9_000_000]
    assert zero["reviews"] == 0 and zero["review_score"] is None and zero["rating"] is None
    assert zero["est_owners"] == 0 and zero["est_revenue"] == 0
    # 10 positive of 10: the rating is pulled towards 50% the fewer the reviews
    assert 0.5 < got[9_000_001]["rating"] < got[9_000_001]["review_score"] == 1


def test_filters_sorts_and_metrics_on_derived_columns(model_client, generated):
    rated = [r for r in generated if r["rating"] is not None]
    got = _rows(model_client, rating__gte="0.8", fields="app_id")
    assert sorted(r["app_id"] for r in got) == sorted(r["app_id"] for r in rated if r["rating"] >= 0.8)
    by_revenue = _rows(model_client, sort="-est_revenue", fields="app_id,est_revenue")
    want = sorted(generated, key=lambda r: (-r["est_revenue"], r["app_id"]))
    assert [r["app_id"] for r in by_revenue] == [r["app_id"] for r in want]
    [agg] = model_client.get("/api/v1/games/aggregate", params={
        "metrics": "median:rating,sum:est_revenue,avg:review_score,p90:reviews"}).json()["rows"]
    assert _close(agg["median_rating"], round(statistics.median(r["rating"] for r in rated), 6))
    assert _close(agg["sum_est_revenue"], sum(r["est_revenue"] for r in generated))
    scores = [r["review_score"] for r in rated]
    assert _close(agg["avg_review_score"], round(sum(scores) / len(scores), 6))
    p90 = statistics.quantiles([r["reviews"] for r in generated], n=10, method="inclusive")[8]
    assert _close(agg["p90_reviews"], round(p90, 6))


def test_a_sum_of_money_is_written_as_money(make_client, files):
    """A float sum carries binary noise, more the larger the total (232408398.00000003 on a small file,
    15056431589.0999 for 15056431589.1 at 60,000 games): the sum of est_revenue is exact to the cent,
    and a segment's is the same in its aggregate and its summary."""
    table = sample_table()
    h, rows = table[0], [list(r) for r in table[1:]]
    for i, row in enumerate(rows):  # hit games: each earns ~1e11, so their total (~1e13) is past float's cents
        row[h.index("Positive")] = str(150_000_000 + 7_919 * i)
    (files.root / "hits.csv").write_bytes(write_csv([h, *rows]))
    client = make_client()
    assert upload(client, files.url("hits.csv"))["state"] == "succeeded"
    games = client.get("/api/v1/games", params={"fields": "genres,est_revenue", "limit": "1000"}).json()["rows"]
    sums = client.get("/api/v1/games/aggregate", params={"group_by": "genres", "metrics": "sum:est_revenue",
                                                         "limit": "100"}).json()["rows"]
    for row in sums:
        exact = sum(Decimal(repr(g["est_revenue"])) for g in games if row["genres"] in g["genres"])
        assert Decimal(repr(row["sum_est_revenue"])) == exact, row
    for genre in ("Indie", "Action", "Casual"):
        [row] = [r for r in sums if r["genres"] == genre]
        summary = client.get("/api/v1/games/summary", params={"genres": genre.lower()}).json()
        assert row["sum_est_revenue"] == summary["est_revenue"], genre


def test_group_by_developers_credits_each_studio_once(model_client, generated):
    rows = model_client.get("/api/v1/games/aggregate", params={"group_by": "developers", "limit": 1000}).json()["rows"]
    want = Counter(d for r in generated for d in set(r["developers"]))
    assert {r["developers"]: r["count"] for r in rows} == dict(want)
    assert want["Same Studio"] == 1 and want["fuzz, Inc."] == 2  # the sample's row and the hard case


def test_share_of_a_group_meeting_a_condition(model_client, generated):
    body = model_client.get("/api/v1/games/aggregate", params={
        "group_by": "genres", "metrics": "count,share(rating__gte=0.8),share(tags__in=Indie,Casual)",
        "limit": 1000}).json()
    assert body["metrics"] == ["count", "share_rating_gte", "share_tags_in"]
    groups = defaultdict(list)
    for r in generated:
        for g in set(r["genres"]):
            groups[g].append(r)
    for row in body["rows"]:
        members = groups[row["genres"]]
        high = sum(1 for m in members if m["rating"] is not None and m["rating"] >= 0.8)
        tagged = sum(1 for m in members if {"Indie", "Casual"} & set(m["tags"]))
        assert row["count"] == len(members)
        assert row["share_rating_gte"] == round(high / len(members), 6)
        assert row["share_tags_in"] == round(tagged / len(members), 6)


@pytest.mark.parametrize("metrics,says", [
    ("share(rating)", "one filter"), ("share(nope__gte=1)", "nope"), ("share(rating__gte=abc)", "not a number"),
    ("share(rating__regex=1)", "regex"), ("share()", "one filter"),
])
def test_a_malformed_share_is_a_clear_400(model_client, metrics, says):
    r = model_client.get("/api/v1/games/aggregate", params={"group_by": "genres", "metrics": metrics})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "metrics" and says in err["message"], err


def test_trends_keep_the_top_n_series(model_client, generated):
    """Games per year for the 3 biggest tags among games under $10, as 3 series in rank order."""
    cheap = [r for r in generated if r["price"] < 10]
    totals = Counter(t for r in cheap for t in set(r["tags"]))
    top = [t for t, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    body = model_client.get("/api/v1/games/aggregate", params={
        "group_by": "tags,release_year", "metrics": "count", "top": 3, "price__lt": 10}).json()
    assert body["series"] == top
    want = Counter((t, int(r["release_date"][:4]) if r["release_date"] else None)
                   for r in cheap for t in set(r["tags"]) if t in top)
    assert {(r["tags"], r["release_year"]): r["count"] for r in body["rows"]} == dict(want)
    order = [(top.index(r["tags"]), r["release_year"] or 0) for r in body["rows"]]
    assert order == sorted(order)  # rank, then years in time order


def test_top_n_are_n_values_never_a_missing_one(make_client, files):
    """Games without a date outnumber every year here; `top=3` still gives the 3 biggest years (the
    missing year once took a place in the ranking and then vanished: 2 series)."""
    table = sample_table()
    h, rows = table[0], [list(r) for r in table[1:]]
    for row in rows[:30]:
        row[h.index("Release date")] = ""
    (files.root / "undated.csv").write_bytes(write_csv([h, *rows]))
    client = make_client()
    assert upload(client, files.url("undated.csv"))["state"] == "succeeded"
    years = Counter(int(python_row(dict(zip(h, r, strict=True)))["release_date"][:4]) for r in rows[30:])
    want = [y for y, _ in sorted(years.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    body = client.get("/api/v1/games/aggregate", params={"group_by": "release_year", "top": 3}).json()
    assert body["series"] == want
    assert [r["count"] for r in body["rows"]] == [years[y] for y in want]


def test_median_price_per_year_for_the_top_genres(model_client, generated):
    body = model_client.get("/api/v1/games/aggregate", params={
        "group_by": "genres,release_year", "metrics": "median:price", "top": 2}).json()
    totals = Counter(g for r in generated for g in set(r["genres"]))
    top = [g for g, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
    prices = defaultdict(list)
    for r in generated:
        for g in set(r["genres"]) & set(top):
            prices[(g, int(r["release_date"][:4]) if r["release_date"] else None)].append(r["price"])
    got = {(r["genres"], r["release_year"]): r["median_price"] for r in body["rows"]}
    assert got == {k: round(float(statistics.median(v)), 6) for k, v in prices.items()}


def test_top_needs_a_group(model_client):
    r = model_client.get("/api/v1/games/aggregate", params={"top": 3})
    assert r.status_code == 400 and r.json()["error"]["param"] == "top"


BANDS = ((0, "free"), (5, "under 5"), (10, "5 to 10"), (20, "10 to 20"), (40, "20 to 40"))


def _band(price: Decimal) -> str:
    for hi, label in BANDS:
        if (price == 0) if hi == 0 else (price < hi):
            return label
    return "40 and more"


@pytest.mark.parametrize("params,test", [
    ({}, lambda r: True),
    ({"genres": "indie", "price__lt": "10"},
     lambda r: any("indie" in g.lower() for g in r["genres"]) and r["price"] < 10),
])
def test_segment_summary(model_client, generated, params, test):
    games = [r for r in generated if test(r)]
    body = model_client.get("/api/v1/games/summary", params=params).json()
    prices = [float(r["price"]) for r in games]
    rated = [r["rating"] for r in games if r["rating"] is not None]
    assert body["games"] == len(games)
    assert body["share_free"] == round(sum(p == 0 for p in prices) / len(games), 6)
    assert _close(body["median_price"], round(statistics.median(prices), 6))
    assert _close(body["p90_price"], round(statistics.quantiles(prices, n=10, method="inclusive")[8], 6))
    assert _close(body["median_reviews"], statistics.median(r["reviews"] for r in games))
    assert _close(body["avg_rating"], round(sum(rated) / len(rated), 6))
    assert _close(body["est_revenue"], round(sum(r["est_revenue"] for r in games), 2))
    bands = Counter(_band(r["price"]) for r in games)
    in_order = [label for _, label in BANDS] + ["40 and more"]
    assert [(b["band"], b["games"]) for b in body["price_bands"]] == [(b, bands[b]) for b in in_order if b in bands]
    for field, key in (("top_tags", "tags"), ("top_genres", "genres")):
        counts = Counter(x for r in games for x in set(r[key]))
        want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert [(t["value"], t["games"]) for t in body[field]] == want
    by_rating = sorted((r for r in games if r["rating"] is not None),
                       key=lambda r: (-r["rating"], -r["reviews"], r["app_id"]))[:10]
    assert [g["app_id"] for g in body["top_rated"]] == [r["app_id"] for r in by_rating]
    by_reviews = sorted(games, key=lambda r: (-r["reviews"], r["app_id"]))[:10]
    assert [g["app_id"] for g in body["most_reviewed"]] == [r["app_id"] for r in by_reviews]


def test_an_empty_segment_s_summary_has_no_bands_and_no_lists(model_client):
    body = model_client.get("/api/v1/games/summary", params={"name": "no game is called this"}).json()
    assert body["games"] == 0 and body["median_price"] is None
    assert body["price_bands"] == [] and body["top_tags"] == [] and body["top_rated"] == []
    assert "before Steam's cut" in body["est_revenue_note"] and body["review_multiple"] == 30


def test_the_schema_documents_derived_columns(model_client):
    doc = model_client.get("/api/v1/schema").json()
    cols = {c["name"]: c for c in doc["columns"]}
    assert cols["rating"]["derived"] == "stored" and "steamdb.info" in cols["rating"]["source"]
    assert cols["est_owners"]["derived"] == "virtual" and "GAMELENS_REVIEW_MULTIPLE" in cols["est_owners"]["formula"]
    assert "before Steam's cut" in cols["est_revenue"]["doc"]
    assert cols["developers"]["type"] == "list" and "has" in cols["developers"]["operators"]
    assert doc["review_multiple"] == 30
    assert any(m["name"] == "share" for m in doc["metrics"])


def test_the_review_multiple_is_a_setting(make_client, files):
    client = make_client(review_multiple=50)
    upload(client, files.url("sample.csv"))
    row = client.get("/api/v1/games/20200").json()
    want = python_row(next(r for r in read_sample() if r["AppID"] == "20200"))
    assert row["est_owners"] == want["reviews"] * 50
    assert client.get("/api/v1/schema").json()["review_multiple"] == 50


def _year(row: dict) -> int | None:
    return int(row["release_date"][:4]) if row["release_date"] else None


def test_chosen_series_and_growth_against_the_year_before(model_client, generated):
    """series= keeps the chosen values of the first key (median price per year for Action and
    Strategy, one chart); growth is each series' change in games against the calendar year before."""
    counts: Counter = Counter()
    for row in generated:
        for genre in set(row["genres"]):
            if genre in ("Action", "Strategy") and _year(row):
                counts[(genre, _year(row))] += 1
    r = model_client.get("/api/v1/games/aggregate", params={
        "group_by": "genres,release_year", "metrics": "count,growth,median:price", "series": "Action,Strategy",
        "limit": 1000})
    assert r.status_code == 200, r.text
    got = {(x["genres"], x["release_year"]): x for x in r.json()["rows"] if x["release_year"] is not None}
    assert {g for g, _ in got} == {"Action", "Strategy"} and set(got) == set(counts)
    for (genre, year), row in got.items():
        assert row["count"] == counts[(genre, year)]
        before = counts.get((genre, year - 1), 0)
        want = round(counts[(genre, year)] / before - 1, 6) if before else None
        assert row["growth"] == want, (genre, year, row, before)


def test_chosen_series_match_in_any_case(model_client):
    """series= matches as text filters do, in any case; each group keeps the data's spelling."""
    def rows(series: str) -> list[dict]:
        r = model_client.get("/api/v1/games/aggregate", params={
            "group_by": "tags,release_year", "metrics": "count", "series": series, "limit": 1000})
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    exact = rows("Indie,Action")
    assert {row["tags"] for row in exact} == {"Indie", "Action"}
    assert rows("indie,ACTION") == exact
    assert rows("indie,indie ") == rows("Indie")
    spellings = ["".join(c.upper() if i >> k & 1 else c for k, c in enumerate("action")) for i in range(51)]
    r = model_client.get("/api/v1/games/aggregate", params={  # 51 spellings of one series count once (of 50)
        "group_by": "tags", "series": ",".join(spellings)})
    assert r.status_code == 200 and {row["tags"] for row in r.json()["rows"]} == {"Action"}, r.text


def test_chosen_series_answer_as_a_top_n_does(model_client):
    """series= gives a trend as top=N does: every point (not the first 50 groups by count), each series
    in the order chosen and its years in time order, and the series found listed (a chosen value with no
    games is not among them)."""
    def answer(**params) -> dict:
        r = model_client.get("/api/v1/games/aggregate", params={"group_by": "tags,release_year", "metrics": "count",
                                                                 **params})
        assert r.status_code == 200, r.text
        return r.json()
    top = answer(top=3)
    chosen = answer(series=",".join(reversed(top["series"])) + ",no such tag")
    assert chosen["limit"] == top["limit"] and chosen["next"] is None
    assert chosen["series"] == list(reversed(top["series"]))
    order = [(chosen["series"].index(r["tags"]), r["release_year"] or 0) for r in chosen["rows"]]
    assert order == sorted(order) and len(chosen["rows"]) == len(top["rows"]), order
    assert answer(series=top["series"][0].upper())["series"] == [top["series"][0]]


@pytest.mark.parametrize("params,code", [
    ({"group_by": "genres", "metrics": "growth"}, "invalid_metric"),
    ({"group_by": "release_year", "series": "2020"}, "invalid_parameter"),
    ({"group_by": "genres,release_year", "series": "Action", "top": "3"}, "invalid_parameter"),
    # growth is a window over the groups HAVING keeps: the engine refuses it there (ILLEGAL_AGGREGATION)
    ({"group_by": "release_year", "metrics": "count,growth", "having": "growth__gt:0"}, "invalid_parameter"),
    ({"group_by": "genres", "sort": "--count"}, "unknown_sort"),  # one sign at most
], ids=["growth_without_years", "series_of_a_year", "series_and_top", "having_on_growth", "two_signs"])
def test_series_and_growth_are_used_as_meant(model_client, params, code):
    r = model_client.get("/api/v1/games/aggregate", params=params)
    assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
    if "having" in params:
        assert r.json()["error"]["param"] == "having" and "count__gt:<number>" in r.json()["error"]["allowed"]


def test_a_sum_of_a_column_with_empty_values_is_exact_to_4_places(model_client, generated):
    """rating and review_score are empty for a game without reviews (and the engine holds NaN under
    them): their sums skip those games, are 0 when every game is one (as a sum over no games, and as
    pandas sums), and are exact to 4 places,
    not off by the rounding of each value (the sample's review scores summed to 63.942, not 63.9419)."""
    for name in ("rating", "review_score"):
        [whole] = model_client.get("/api/v1/games/aggregate", params={"metrics": f"sum:{name}"}).json()["rows"]
        exact = sum(Decimal(repr(r[name])) for r in generated if r[name] is not None)
        assert Decimal(repr(whole[f"sum_{name}"])) == round(exact, 4), (whole, exact)
        groups = model_client.get("/api/v1/games/aggregate", params={
            "group_by": "genres", "metrics": f"sum:{name}", "limit": 100}).json()["rows"]
        for row in groups:
            exact = sum(Decimal(repr(r[name])) for r in generated
                        if row["genres"] in r["genres"] and r[name] is not None)
            assert Decimal(repr(row[f"sum_{name}"])) == round(exact, 4), (row, exact)
        [none] = model_client.get("/api/v1/games/aggregate", params={"metrics": f"sum:{name}",
                                                                      "reviews": "0"}).json()["rows"]
        assert none == {f"sum_{name}": 0}
    assert any(r["rating"] is None for r in generated)


def _lists_repeated(files, repeat: bool) -> tuple[str, list[dict]]:
    """The sample; with `repeat`, its first game lists a genre and a tag twice (Indie, Action)."""
    table = sample_table()
    h, rows = table[0], [list(r) for r in table[1:]]
    if repeat:
        rows[0][h.index("Genres")] = "Indie,Action,Indie"
        rows[0][h.index("Tags")] = "Action,Indie,Action,Casual"
    name = f"lists-{'repeated' if repeat else 'plain'}.csv"
    (files.root / name).write_bytes(write_csv([h, *rows]))
    return files.url(name), [python_row(dict(zip(h, r, strict=True))) for r in rows]


@pytest.mark.parametrize("repeat", [True, False], ids=["a game repeats a tag", "no game repeats one"])
def test_a_game_counts_once_for_an_element_it_lists_twice(make_client, files, repeat):
    """Groups, facets, the summary's lists and top=N count games: a game that lists Action twice
    counts once for Action, with or without filters. Where no game of the version repeats an element,
    the statements skip keeping each element once (build.join_elements): the same answers, cheaper."""
    url, rows = _lists_repeated(files, repeat)
    client = make_client()
    upload(client, url)
    explorer, snap = client.app.state.explorer, client.app.state.uploads.versions.current()
    assert {c for c in ("genres", "tags", "categories") if explorer.repeats(snap, c)} == (
        {"genres", "tags"} if repeat else set())

    def games(col, members):
        return Counter(e for r in members for e in set(r[col]))

    for filters, members in (({}, rows), ({"price__gte": "0"}, [r for r in rows if r["price"] >= 0]),
                             ({"name": "a"}, [r for r in rows if "a" in r["name"].lower()])):
        for col in ("genres", "tags"):
            want = games(col, members)
            body = client.get("/api/v1/games/aggregate", params={"group_by": col, "limit": 1000, **filters}).json()
            assert {g[col]: g["count"] for g in body["rows"]} == want, (col, filters)
            facets = client.get("/api/v1/games", params={"facet": col, "facet_size": 100, "limit": 1,
                                                         **filters}).json()["facets"][col]
            assert len(facets) == min(100, len(want)), (col, filters)
            assert {f["value"]: f["count"] for f in facets} == {f["value"]: want[f["value"]] for f in facets}
            trend = client.get("/api/v1/games/aggregate", params={"group_by": f"{col},release_year", "top": 2,
                                                                  **filters}).json()
            years = Counter((e, r["release_date"][:4]) for r in members if r["release_date"] for e in set(r[col]))
            assert {(g[col], str(g["release_year"])): g["count"] for g in trend["rows"]
                    if g["release_year"] is not None} == {k: n for k, n in years.items() if k[0] in trend["series"]}
        summary = client.get("/api/v1/games/summary", params=filters).json()
        assert {t["value"]: t["games"] for t in summary["top_tags"]} == dict(
            sorted(games("tags", members).items(), key=lambda kv: (-kv[1], kv[0]))[:len(summary["top_tags"])])
