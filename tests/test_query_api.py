"""Pagination, keyset cursors, hostile input, exports, one game, schema and OpenAPI."""

import csv
import io
import json
from decimal import Decimal

import pytest

from gamelens.query import answers

from .conftest import sample_table, statements_of, upload, walk, write_csv


def _page(client, **params):
    r = client.get("/api/v1/games", params=params)
    assert r.status_code == 200, r.json()
    return r.json()


# "" and "-app_id": the table's own order, whose offset pages read keys first (query/rows.py rows_sql).
@pytest.mark.parametrize("sort", ["-positive,name", "price,-release_date", "-score_rank", "release_date", "",
                                  "-app_id"])
def test_pages_concatenate_to_the_full_sorted_result(sample_client, sample_rows, sort):
    fields = "app_id,name,positive,price,release_date,score_rank"
    full = _page(sample_client, sort=sort, limit=1000, fields=fields)["rows"]
    assert len(full) == len(sample_rows)
    by_offset = walk(sample_client, {"sort": sort, "limit": 7, "fields": fields}, use_cursor=False)
    by_cursor = walk(sample_client, {"sort": sort, "limit": 7, "fields": fields}, use_cursor=True)
    assert by_offset == full
    assert by_cursor == full


def test_sort_order_matches_python(sample_client, sample_rows):
    rows = _page(sample_client, sort="-positive,name", limit=1000, fields="app_id")["rows"]
    want = sorted(sample_rows, key=lambda r: (-r["positive"], r["name"].encode(), r["app_id"]))
    assert [r["app_id"] for r in rows] == [r["app_id"] for r in want]
    dates = _page(sample_client, sort="-release_date", limit=1000, fields="release_date")["rows"]
    values = [r["release_date"] for r in dates]
    assert values == sorted(values, reverse=True)


def test_page_shape_total_and_next(sample_client):
    body = _page(sample_client, name="a", limit=5)
    assert set(body) == {"rows", "total", "limit", "offset", "next", "next_cursor", "version", "took_ms", "engine_ms"}
    assert body["total"] > 5 and len(body["rows"]) == 5
    assert body["next"].startswith("/api/v1/games?") and "offset=5" in body["next"]
    default = _page(sample_client)
    assert default["total"] == 100 and len(default["rows"]) == 50  # no parameters: every row, paginated
    last = _page(sample_client, offset=95)
    assert len(last["rows"]) == 5 and last["next"] is None and last["total"] == 100


def test_fields_choose_columns(sample_client):
    body = _page(sample_client, fields="name,price", limit=2)
    assert [set(r) for r in body["rows"]] == [{"name", "price"}] * 2


def test_facets_repeat_or_come_as_a_list(sample_client):
    listed = _page(sample_client, facet="genres,required_age", limit=1)["facets"]
    repeated = sample_client.get("/api/v1/games?facet=genres&facet=required_age&limit=1").json()["facets"]
    assert listed == repeated and set(listed) == {"genres", "required_age"}


def test_cursor_must_match_the_sort(sample_client):
    cursor = _page(sample_client, sort="name", limit=2)["next_cursor"]
    r = sample_client.get("/api/v1/games", params={"sort": "-price", "cursor": cursor})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"
    # A cursor says where the page starts: an offset beside it (in links of earlier releases) is ignored,
    # and the next link no longer carries it on.
    with_offset = _page(sample_client, sort="name", cursor=cursor, offset=3, limit=2)
    assert with_offset["rows"] == _page(sample_client, sort="name", cursor=cursor, limit=2)["rows"]
    assert with_offset["offset"] == 0 and "offset=" not in with_offset["next"], with_offset["next"]
    for junk in ["x", "eyJzIjoiIiwiayI6WyJhIiwiYiJdfQ", "e30", "!!!"]:
        r = sample_client.get("/api/v1/games", params={"cursor": junk})
        assert r.status_code == 400, junk


@pytest.mark.parametrize("query", [
    "group_by=name;DROP", "metrics=avg:name", "metrics=sum", "metrics=count:price", "metrics=evil()",
    "having=count__gte:x", "having=avg_price__gte:1", "having=count__gte:inf", "sort=-nope", "group_by=about_the_game",
    "limit=0", "group_by=genres&group_by=tags",
])
def test_hostile_aggregate_input(sample_client, query):
    r = sample_client.get(f"/api/v1/games/aggregate?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"]


@pytest.mark.parametrize("query,says", [
    ("reviews__gt=18446744073709551615", "between -9223372036854775807 and 9223372036854775807"),
    ("reviews__gt=" + "9" * 5000, "between -9223372036854775807 and 9223372036854775807"),
    ("app_id=%EF%BC%92%EF%BC%90", "is not a whole number"),  # full-width digits, refused as in a path
    ("limit=%D9%A3", "limit must be a whole number"),  # an Arabic-Indic 3
])
def test_a_whole_number_is_ascii_digits_in_the_int64_range(sample_client, query, says):
    r = sample_client.get(f"/api/v1/games?{query}")
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text


def test_a_parameter_that_names_nothing_is_told_apart_from_the_read_s_own(sample_client):
    """`?limit=5` on the summary said "Unknown column 'limit'" and left `version` out of what is allowed;
    the aggregate's OpenAPI told of a cursor it does not take."""
    error = sample_client.get("/api/v1/games/summary", params={"limit": "5"}).json()["error"]
    assert error["code"] == "unknown_column" and "Unknown parameter 'limit'" in error["message"], error
    assert "version" in error["allowed"] and "genres" in error["allowed"]
    error = sample_client.get("/api/v1/games/aggregate", params={"cursor": "x"}).json()["error"]
    assert {"version", "top", "having"} <= set(error["allowed"]), error
    params = sample_client.get("/openapi.json").json()["paths"]["/api/v1/games/aggregate"]["get"]["parameters"]
    said = {p["name"]: p["description"] for p in params}
    assert "cursor" not in said["offset"] and "with top or series" in said["limit"], said


def test_literal_wildcards_match_literally(sample_client, sample_rows):
    for value in ("%", "_", "\\"):
        want = sorted(r["app_id"] for r in sample_rows if value in r["name"])
        rows = _page(sample_client, name=value, limit=1000, fields="app_id")["rows"]
        assert sorted(r["app_id"] for r in rows) == want


def test_one_game_and_404(sample_client, sample_rows):
    first = sample_rows[0]
    body = sample_client.get(f"/api/v1/games/{first['app_id']}").json()
    assert body["name"] == first["name"] and body["release_date_raw"] == first["release_date_raw"]
    r = sample_client.get("/api/v1/games/1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert sample_client.get("/api/v1/games/abc").status_code == 400
    assert sample_client.get("/api/v1/games/99999999999").status_code == 400


def test_exports_round_trip_to_the_json_rows(sample_client):
    params = {"genres": "indie", "sort": "-positive", "fields": "app_id,name,price,genres,release_date,windows"}
    rows = _page(sample_client, **params, limit=1000)["rows"]
    nd = sample_client.get("/api/v1/games", params={**params, "format": "ndjson"})
    assert nd.status_code == 200 and nd.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in nd.text.splitlines()] == rows
    assert nd.headers["x-total-count"] == str(len(rows)) and nd.headers["x-truncated"] == "false"
    for how in ({"params": {**params, "format": "csv"}}, {"params": params, "headers": {"Accept": "text/csv"}}):
        r = sample_client.get("/api/v1/games", **how)
        assert r.headers["content-type"].startswith("text/csv") and r.headers["vary"] == "Accept"
        parsed = list(csv.DictReader(io.StringIO(r.text)))
        assert [int(p["app_id"]) for p in parsed] == [row["app_id"] for row in rows]
        assert [p["name"] for p in parsed] == [row["name"] for row in rows]
        assert [p["price"] for p in parsed] == [f"{row['price']:g}" for row in rows]


def test_export_cap_is_signalled(make_client, files):
    from .conftest import upload

    client = make_client(export_max_rows=10)
    upload(client, files.url("sample.csv"))
    r = client.get("/api/v1/games", params={"format": "ndjson"})
    assert len(r.text.splitlines()) == 10
    assert r.headers["x-truncated"] == "true" and r.headers["x-total-count"] == "100"
    assert r.headers["x-exported-count"] == "10"


def test_aggregate_export(sample_client):
    r = sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres", "format": "csv"})
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    rows = sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres", "limit": 1000}).json()["rows"]
    assert [(p["genres"], int(p["count"])) for p in parsed] == [(x["genres"], x["count"]) for x in rows]


def test_no_dataset_yet_is_409(client):
    for path in ("/api/v1/games", "/api/v1/games/aggregate", "/api/v1/games/1", "/api/v1/games?format=csv"):
        r = client.get(path)
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_dataset", path


def test_schema_describes_every_column(sample_client):
    doc = sample_client.get("/api/v1/schema").json()
    names = [c["name"] for c in doc["columns"]]
    assert names[:3] == ["app_id", "name", "release_date"] and "release_date_raw" in names
    price = next(c for c in doc["columns"] if c["name"] == "price")
    assert price["type"] == "decimal" and price["example"] == "19.99" and "gte" in price["operators"]
    assert {b["name"] for b in doc["buckets"]} == {"release_year", "release_month", "price_band"}
    assert {m["name"] for m in doc["metrics"]} >= {"count", "sum", "avg", "min", "max", "median", "uniq"}



def test_schema_alias_templates_name_the_aggregate_columns(sample_client):
    """The page names a metric's column from /schema's templates: they must be what the API returns."""
    doc = sample_client.get("/api/v1/schema").json()
    by_name = {m["name"]: m for m in doc["metrics"]}
    specs = {"count": ("count", {}), "sum:price": ("sum", {"column": "price"}),
             "median:reviews": ("median", {"column": "reviews"}),
             "share(rating__gte=0.8)": ("share", {"column": "rating", "operator": "gte"}),
             "share(price=0)": ("share", {"column": "price", "operator": by_name["share"]["alias_no_operator"]})}
    r = sample_client.get("/api/v1/games/aggregate", params={"group_by": "price_band", "metrics": ",".join(specs)})
    assert r.status_code == 200, r.json()
    expected = [by_name[fn]["alias"].format(name=fn, **parts) for fn, parts in specs.values()]
    assert expected == ["count", "sum_price", "median_reviews", "share_rating_gte", "share_price_is"]
    assert set(expected) <= set(r.json()["rows"][0])

def test_openapi_documents_parameters(sample_client):
    spec = sample_client.get("/openapi.json").json()
    params = {p["name"] for p in spec["paths"]["/api/v1/games"]["get"]["parameters"]}
    assert {"sort", "limit", "offset", "cursor", "fields", "facet", "format", "name", "price__gte",
            "genres__has"} <= params
    agg = {p["name"] for p in spec["paths"]["/api/v1/games/aggregate"]["get"]["parameters"]}
    assert {"group_by", "metrics", "having"} <= agg
    assert sample_client.get("/docs").status_code == 200


def test_limits_give_clear_errors(make_client, files):
    from .conftest import upload

    client = make_client(query_max_rows=5)
    upload(client, files.url("sample.csv"))
    r = client.get("/api/v1/games/aggregate", params={"group_by": "name", "limit": 1000})
    assert r.status_code == 400 and r.json()["error"]["code"] == "result_too_large"


def test_a_refused_body_is_said_in_the_api_s_words(client):
    """A JSON body's wrong field says what is allowed, and a long value comes back cut (pydantic's own
    "Input should be a valid string", "Field required" and the whole 5,000-character link before)."""
    cases = [({"url": 5}, "text"), ({}, None), ({"url": "http://x/" + "a" * 5000}, "at most 4096 characters")]
    for body, allowed in cases:
        error = client.post("/api/v1/uploads", json=body).json()["error"]
        assert error["param"] == "url" and error.get("allowed") == allowed and "Input should" not in error["message"]
        assert "required" in error["message"] or len(str(error["value"])) <= 201, error
    role = client.post("/api/v1/keys", json={"name": "a", "role": "god"}).json()["error"]
    assert role["param"] == "role" and role["allowed"] == "'reader' or 'admin'", role


@pytest.mark.parametrize("path, allowed", [
    ("/api/v1/games/abc", "a whole number"),
    ("/api/v1/games/20200.0", "a whole number"),  # the framework's int reads it; the filter app_id= does not
    ("/api/v1/games/20_200", "a whole number"),
    ("/api/v1/games/99999999999", "up to 4294967295"),
    ("/api/v1/games?limit=5000", "a whole number from 1 to 1000"),
    ("/api/v1/games?release_date=2020-13-45",
     "a date: YYYY-MM-DD, 'Oct 21, 2008' or 'May 2020' (the 1st of that month)"),
    ("/api/v1/games?linux=maybe", "true or false"),
], ids=["app_id_text", "app_id_decimal", "app_id_underscore", "app_id_too_large", "limit", "date", "bool"])
def test_a_refused_value_says_what_is_allowed(client, path, allowed):
    """Every 400 for a value names the parameter, echoes the value and says what is allowed (these said it
    only in the message; an app_id that is not a number was the framework's own words)."""
    r = client.get(path)
    error = r.json()["error"]
    assert r.status_code == 400 and error["allowed"] == allowed and error["param"] and error["value"], error
    assert "Input should be" not in error["message"], error


def test_a_refused_element_of_a_list_is_named(client):
    """`price__in=1,x` names `x`, the element that is not a number (it named the whole list)."""
    error = client.get("/api/v1/games", params={"price__in": "1,x,3"}).json()["error"]
    assert error["message"] == "price__in: 'x' (in '1,x,3') is not a number such as 19.99.", error
    assert error["value"] == "1,x,3" and error["param"] == "price__in"


ANSWERS = [  # (route in /openapi.json, request, declared model)
    ("/api/v1/games", ("/api/v1/games", {}), answers.Page),
    ("/api/v1/games", ("/api/v1/games", {"facet": ["genres", "release_year", "price_band"], "limit": 3,
                                         "sort": "-rating", "fields": "name,rating,release_date"}), answers.Page),
    ("/api/v1/games", ("/api/v1/games", {"name": "no game is called this"}), answers.Page),
    ("/api/v1/games/aggregate", ("/api/v1/games/aggregate", {"group_by": "tags,release_year", "top": 3}),
     answers.Aggregate),
    ("/api/v1/games/aggregate", ("/api/v1/games/aggregate", {
        "group_by": "genres,release_year", "series": "Action,Indie",
        "metrics": "count,growth,median:price,share(rating__gte=0.8)"}), answers.Aggregate),
    ("/api/v1/games/summary", ("/api/v1/games/summary", {"genres": "indie"}), answers.Summary),
    ("/api/v1/games/summary", ("/api/v1/games/summary", {"name": "no game is called this"}), answers.Summary),
    ("/api/v1/schema", ("/api/v1/schema", {}), answers.SchemaDoc),
]


@pytest.mark.parametrize(("route", "request_", "model"), ANSWERS)
def test_answers_are_what_openapi_declares(sample_client, route, request_, model):
    """Every JSON answer validates against the model /openapi.json names for it (no member more or fewer),
    so a generated client's types are true."""
    declared = sample_client.get("/openapi.json").json()["paths"][route]["get"]["responses"]["200"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith(f"/{model.__name__}")
    path, params = request_
    r = sample_client.get(path, params=params)
    assert r.status_code == 200, r.text
    model.model_validate(r.json())


def test_every_game_is_what_openapi_declares(sample_client, sample_rows):
    declared = sample_client.get("/openapi.json").json()["paths"]["/api/v1/games/{app_id}"]["get"]["responses"]["200"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith("/Game")
    for row in sample_rows:
        game = answers.Game.model_validate(sample_client.get(f"/api/v1/games/{row['app_id']}").json())
        assert game.app_id == row["app_id"]


def test_no_answer_is_untyped_in_openapi(sample_client):
    """Every JSON success answer names a model: a generated client gets types, not Any."""
    untyped = []
    for path, ops in sample_client.get("/openapi.json").json()["paths"].items():
        for method, op in ops.items():
            for code, response in op["responses"].items():
                json_body = response.get("content", {}).get("application/json")
                if code.startswith("2") and json_body is not None and "$ref" not in json_body.get("schema", {}):
                    untyped.append(f"{method.upper()} {path} {code}")
    assert untyped == []


def test_a_value_with_a_comma_is_written_in_double_quotes(sample_client):
    """Studio names often hold a comma ("Wise Wizard Games, LLC"): in `__in` and `series` a value in
    double quotes keeps it; an unclosed quote is a 400 that says how to write one."""
    r = sample_client.get("/api/v1/games", params={
        "developers__in": '"Wise Wizard Games, LLC","Gemdrops, Inc."', "fields": "app_id"})
    assert r.status_code == 200, r.text
    assert sorted(row["app_id"] for row in r.json()["rows"]) == [485000, 1514360]
    r = sample_client.get("/api/v1/games/aggregate", params={
        "group_by": "developers,release_year", "series": '"wise wizard games, llc"', "limit": 100})
    assert r.status_code == 200, r.text
    assert {row["developers"] for row in r.json()["rows"]} == {"Wise Wizard Games, LLC"}
    for params in ({"developers__in": '"Wise Wizard Games, LLC'}, {"group_by": "developers", "series": '"x'}):
        path = "/api/v1/games/aggregate" if "series" in params else "/api/v1/games"
        r = sample_client.get(path, params=params)
        assert r.status_code == 400 and "double quotes" in r.json()["error"]["message"], r.text


def test_spaces_around_a_listed_or_whole_element_value_are_dropped(sample_client, sample_rows):
    """`genres__in=Indie, RPG` is two genres (" RPG" matched none: RPG was dropped without a word), and a
    value a list compares whole is trimmed as its elements are; a price list past the column's range is no
    503 (its conversion overflowed)."""
    def total(**params):
        r = sample_client.get("/api/v1/games", params={**params, "fields": "app_id", "limit": 1})
        assert r.status_code == 200, r.text
        return r.json()["total"]

    either = sum(bool({"Indie", "RPG"} & set(g["genres"])) for g in sample_rows)
    indie = sum("Indie" in g["genres"] for g in sample_rows)
    assert either > indie
    assert total(genres__in="Indie, RPG") == total(genres__in="Indie,RPG") == either
    assert total(genres__in=' Indie , "RPG"') == either
    assert total(genres__has=" Indie ") == indie and total(genres__ne=" Indie") == len(sample_rows) - indie
    free_or_19 = sum(g["price"] in (0, Decimal("19.99")) for g in sample_rows)
    assert total(price__in="0, 19.99") == free_or_19
    assert total(price__in="1e17") == 0 and total(price__in="19.99,-1e20") == total(price=19.99)
    r = sample_client.get("/api/v1/games/aggregate", params={"metrics": "share(price__in=1e18)"})
    assert r.status_code == 200 and r.json()["rows"][0]["share_price_in"] == 0, r.text


@pytest.mark.parametrize("accept,media", [
    ("text/csv", "text/csv"), ("TEXT/CSV", "text/csv"), ("text/csv;q=0", "application/json"),
    ("text/csv;q=0.1, application/json", "application/json"), ("application/json, text/csv", "application/json"),
    ("application/x-ndjson;q=0.5, text/csv;q=0.9", "text/csv"), ("*/*", "application/json"),
    ("*/*, text/csv;q=0.1", "application/json"),  # anything, JSON the server's own, before CSV at 0.1
    ("text/csv;q=1.5, application/json;q=0.5", "application/json"),  # a quality past 1 is no quality
    ("text/*", "text/csv"), ("application/*", "application/json"), ("text/html", "application/json"),
    ("text/csv, application/json", "text/csv"),  # the first named of equals
    ("*/*, text/csv", "text/csv"),  # the more specific range of equals
    ("*/*;q=0.5, text/*;q=0", "application/json"), ("application/json;q=0, */*", "text/csv"),
    ("application/*;q=0, text/*;q=0.2", "text/csv"),
])
def test_the_accept_header_chooses_by_quality(sample_client, accept, media):
    """RFC 9110: media types in any case, each with its quality; q=0 refuses one. The answer says it
    varies by Accept, so that a shared cache never sends the CSV to a client that asked for JSON."""
    r = sample_client.get("/api/v1/games", params={"limit": 2}, headers={"Accept": accept})
    assert r.status_code == 200 and r.headers["content-type"].startswith(media), (accept, r.headers)
    assert r.headers["vary"] == "Accept"


@pytest.mark.parametrize("accept", ["application/json;q=0", "*/*;q=0", "application/*;q=0, text/csv;q=0",
                                    "text/*;q=0, " + "application/*;q=0, " * 40])  # a long one is cut
def test_an_accept_header_refusing_every_format_is_not_acceptable(sample_client, accept):
    """JSON is the answer when the header names no format, but not when it refuses JSON: 406 with the
    uniform body naming the media types; ?format= still decides over the header."""
    for path in ("/api/v1/games", "/api/v1/games/aggregate"):
        r = sample_client.get(path, params={"limit": 2}, headers={"Accept": accept})
        assert r.status_code == 406 and r.headers["vary"] == "Accept", (path, accept, r.text, r.headers)
        error = r.json()["error"]
        assert error["code"] == "not_acceptable" and error["param"] == "Accept"
        assert error["value"] == (accept if len(accept) <= 200 else accept[:200] + "…")
        assert "application/json" in error["allowed"] and "text/csv" in error["allowed"]
        asked = sample_client.get(path, params={"limit": 2, "format": "json"}, headers={"Accept": accept})
        assert asked.status_code == 200 and asked.json()["rows"], asked.text


def test_every_accept_line_counts(sample_client):
    """Two Accept lines mean their lists joined (RFC 9110 5.3): only the first was read (helper-67)."""
    headers = [("Accept", "application/json;q=0"), ("Accept", "text/csv")]
    r = sample_client.get("/api/v1/games", params={"limit": 2}, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), (r.status_code, r.text)


def test_pages_of_every_game_count_each_version_once(make_client, files, monkeypatch):
    """A version's number of games is read once (Explorer.whole_count): pages of them all then run one
    statement. A filtered page still counts; a version switched to has its own total, and one read by
    `version=N` too."""
    client = make_client(cache_mb=0)
    assert upload(client, files.url("sample.csv"))["state"] == "succeeded"
    statements = statements_of(client.app.state.explorer, monkeypatch)
    pages = [client.get("/api/v1/games", params={"limit": 3, "sort": sort, "fields": "app_id"}).json()
             for sort in ("-rating", "name", "-positive,name")]
    assert [p["total"] for p in pages] == [100, 100, 100]
    assert sum("count()" in s for s in statements) <= 1, statements
    statements.clear()
    filtered = client.get("/api/v1/games", params={"genres": "indie", "fields": "app_id"}).json()
    assert 0 < filtered["total"] < 100 and sum("count()" in s for s in statements) == 1
    table = sample_table()
    (files.root / "ten_games.csv").write_bytes(write_csv(table[:11]))
    second = upload(client, files.url("ten_games.csv"))
    assert second["state"] == "succeeded"
    assert client.get("/api/v1/games", params={"fields": "app_id"}).json()["total"] == 10
    first_id = second["id"] - 1
    assert client.get("/api/v1/games", params={"fields": "app_id", "version": first_id}).json()["total"] == 100


def _kept_version(client, tags: list[str]) -> int:
    """A version beside the one served (activate=false) of the sample's first rows, their tags as given."""
    table = sample_table()[:len(tags) + 1]
    for row, text in zip(table[1:], tags, strict=True):
        row[table[0].index("Tags")] = text
    r = client.post("/api/v1/uploads?wait=true&activate=false", content=write_csv(table),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_minus_zero_is_zero_in_a_set_as_in_an_equality(sample_client):
    """`review_score__in=-0` found nothing where `review_score=-0` found the games scored 0: the engine's
    IN set tells -0.0 from 0.0 (helper-60)."""
    zero = _page(sample_client, review_score=0, fields="app_id")["total"]
    assert zero > 0
    for params in ({"review_score": "-0"}, {"review_score__in": "-0"}, {"review_score__in": "-0,-0.0"}):
        assert _page(sample_client, fields="app_id", **params)["total"] == zero, params


def test_an_element_is_matched_with_the_ends_the_load_kept(client, files):
    """The load trims spaces only from a list's elements; a filter trimmed every kind of whitespace, so a
    tag ` Indie` (a no-break space first) could not be asked for and its groups opened on `Indie` (helper-60)."""
    upload(client, files.url("sample.csv"))
    version = _kept_version(client, ["Action,\u00a0Indie", "Action, Indie "])
    head = sample_table()[0]
    first, second = (int(row[head.index("AppID")]) for row in sample_table()[1:3])
    groups = client.get("/api/v1/games/aggregate", params={"version": version, "group_by": "tags"}).json()["rows"]
    assert {"tags": "\u00a0Indie", "count": 1} in groups and {"tags": "Indie", "count": 1} in groups
    for needle, want in (("\u00a0Indie", [first]), ("Indie", [second]), (" Indie ", [second])):
        for op in ("tags__has", "tags__in"):
            got = client.get("/api/v1/games", params={"version": version, "fields": "app_id", op: needle}).json()
            assert [r["app_id"] for r in got["rows"]] == want, (op, needle, got)


def test_series_the_engine_keeps_apart_stay_apart(client, files):
    """`Straße` and `STRASSE` are two series to the engine (lowerUTF8); a casefold made them one, and the
    data's `STRASSE` and `strasse` were left out (helper-60). A series per spelling the data has."""
    upload(client, files.url("sample.csv"))
    version = _kept_version(client, ["Straße", "STRASSE", "strasse"])
    body = client.get("/api/v1/games/aggregate", params={"version": version, "group_by": "tags",
                                                         "series": "Straße,STRASSE,strasse"}).json()
    assert body["series"] == ["Straße", "STRASSE", "strasse"], body
    assert sorted((r["tags"], r["count"]) for r in body["rows"]) == [("STRASSE", 1), ("Straße", 1), ("strasse", 1)]
