"""Bad links and bad files: each gets its clear error, and the stored dataset stays byte-identical.

This table is the place new bad-input cases go: (id, how to build the link, expected code, status).
"""

import hashlib
import sys
import time

import pytest

from gamelens import schema
from gamelens.ingest import download

from .conftest import dataset_rows, make_settings, sample_table, table_names, upload, write_csv


def _file(name: str, data: bytes):
    def build(files, client):
        (files.root / name).write_bytes(data)
        return files.url(name)
    return build


def _rows_with(change):
    table = sample_table()
    change(table)
    return write_csv(table)


def _set(r, c, v):
    def change(table):
        table[r][c] = v
    return change


HEADER = sample_table()[0]
SAMPLE_BYTES = write_csv(sample_table())
CASES = [
    # id, link builder, expected error code, HTTP status of POST ?wait=true
    ("http_404", lambda f, c: f.url("missing.csv"), "http_status", 422),
    ("http_500", lambda f, c: f"{f.base}/status/500", "http_status", 422),
    ("timeout", lambda f, c: f.url("sample.csv", "slow"), "download_timeout", 422),
    ("html_page", lambda f, c: f"{f.base}/html", "html_not_csv", 422),
    ("truncated_body", lambda f, c: f.url("sample.csv", "truncated"), "truncated", 422),
    ("too_many_redirects", lambda f, c: f.url("sample.csv", "redirect/6"), "too_many_redirects", 422),
    ("redirect_without_location", lambda f, c: f"{f.base}/status/302", "http_status", 422),
    ("empty_file", _file("empty.csv", b""), "empty_file", 422),
    ("header_only", _file("header.csv", write_csv([HEADER])), "no_rows", 422),
    ("missing_column", _file("nocol.csv", write_csv([r[:5] + r[6:] for r in sample_table()])),
     "missing_columns", 422),
    ("malformed_price", _file("price.csv", _rows_with(_set(3, 5, "abc"))), "bad_rows", 422),
    ("price_3_decimals", _file("price3.csv", _rows_with(_set(3, 5, "1.999"))), "bad_rows", 422),
    ("negative_price", _file("negprice.csv", _rows_with(_set(3, 5, "-1.50"))), "bad_rows", 422),
    ("negative_count", _file("neg.csv", _rows_with(_set(3, 12, "-1"))), "bad_rows", 422),
    ("bad_bool", _file("bool.csv", _rows_with(_set(3, 9, "yes please"))), "bad_rows", 422),
    ("empty_app_id", _file("noid.csv", _rows_with(_set(3, 1, ""))), "bad_rows", 422),
    ("huge_description", _file("huge.csv", _rows_with(_set(3, 7, "x" * ((1 << 20) + 1)))), "bad_rows", 422),
    ("too_few_fields", _file("few.csv", write_csv(sample_table()[:3] + [sample_table()[3][:10]]
                                                  + sample_table()[4:])), "malformed_csv", 422),
    ("too_many_fields", _file("many.csv", write_csv(sample_table()[:3] + [sample_table()[3] + ["x"]]
                                                    + sample_table()[4:])), "malformed_csv", 422),
    ("latin1_row", _file("latin1.csv", _rows_with(_set(3, 2, "Pokémon")).replace("é".encode(), b"\xe9")),
     "bad_rows", 422),
    ("latin1_header", _file("latin1h.csv", b"Nom \xe9t\xe9," + SAMPLE_BYTES), "not_utf8", 422),
    ("unclosed_quote", _file("quote.csv", write_csv(sample_table()[:5]) + b'9,1,"unterminated,\r\n'),
     "malformed_csv", 422),
    # the engine's message on it named the load's pipe, a path in the server's data directory (helper-61)
    ("unclosed_quote_in_header", _file("quoteh.csv", write_csv([HEADER])[:-2] + b',"Extra\r\n'
                                       + write_csv([r + ["x"] for r in sample_table()[1:]])), "malformed_csv", 422),
]


@pytest.fixture(scope="module")
def loaded(sample_client):
    """One app with the sample loaded for the module's failing uploads: each leaves the data as it was
    (checked), so sharing it also checks that failures in a row never add up."""
    return sample_client


@pytest.mark.parametrize("case_id,build,code,status", CASES, ids=[c[0] for c in CASES])
def test_bad_link_or_file(loaded, files, case_id, build, code, status):
    before = dataset_rows(loaded)
    r = loaded.post("/api/v1/uploads?wait=true", json={"url": build(files, loaded)})
    body = r.json()
    assert r.status_code == status, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    # the client's own file is described; nothing of the server (its paths, the engine's own words)
    assert str(loaded.app.state.settings.data_dir.resolve()) not in r.text, body
    assert "DB::Exception" not in r.text and "While executing" not in r.text, body
    assert body["upload"]["state"] == "failed"
    if code in ("not_utf8", "empty_file"):  # it names the request's field that sent the file
        assert body["error"]["param"] == "url", body
    if case_id in ("http_404", "truncated_body", "timeout"):  # not every byte arrived: no file to name
        assert body["upload"]["sha256"] is None, body["upload"]
    assert dataset_rows(loaded) == before
    # Nothing half-built is left behind.
    names = set(table_names(loaded.app.state.engine))
    assert not any(n.startswith("stage_") for n in names), names


@pytest.mark.parametrize("mode", ["trickle-headers", "trickle-gzip"])
def test_a_host_that_trickles_bytes_is_cut_at_the_download_deadline(make_client, files, mode):
    """A byte every 0.2 s never trips the read timeout, and headers or a gzip header that never end
    never make a block for the deadline to be checked on: a timer shuts the connection at the deadline
    (else the one upload worker is held as long as the host likes)."""
    client = make_client(download_timeout_s=2)
    upload(client, files.url("sample.csv"))
    before = dataset_rows(client)
    started = time.monotonic()
    body = client.post("/api/v1/uploads?wait=true", json={"url": files.url("sample.csv", mode)}).json()
    assert body["error"]["code"] == "download_timeout", body
    assert time.monotonic() - started < 10  # the host would go on for 20 s
    assert dataset_rows(client) == before


@pytest.mark.parametrize("mode", ["files", "gzip"])
def test_a_body_that_came_whole_is_whole_when_it_is_read_after_the_deadline(files, mode):
    """The deadline's cut shuts the connection; a body whose length was announced and that arrived
    whole before it is still the whole file (only a body that ends with its connection is suspect)."""
    settings = make_settings(download_timeout_s=1)
    whole, read = (files.root / "sample.csv").read_bytes(), b""
    with download.open_url(files.url("sample.csv", mode), settings) as stream:
        for block in stream:
            read += block
            if len(read) == len(whole):
                time.sleep(1.5)  # the last block is in hand: the cut comes before the end is read
    assert read == whole


def test_bad_row_is_reported_with_row_column_value(loaded, files):
    (files.root / "badprice.csv").write_bytes(_rows_with(_set(3, 5, "abc")))
    body = loaded.post("/api/v1/uploads?wait=true", json={"url": files.url("badprice.csv")}).json()
    # every byte arrived: the record names the file refused, as it names one loaded
    assert body["upload"]["sha256"] == hashlib.sha256(_rows_with(_set(3, 5, "abc"))).hexdigest()
    assert body["upload"]["rejected_rows"] == [
        {"row": 3, "column": "price", "value": "abc", "expected": "a number from 0, with at most 2 decimals"}]
    assert "data row 3" in body["error"]["message"]


def test_a_rejected_row_names_the_field_that_sent_it_and_a_long_value_s_size(loaded, files):
    """A link's bad rows name `url` (they named `file`, a field of the other kind of upload); a value
    cut for the record says how long it was (a 1 MiB + 1 description read as 200 x's)."""
    huge = "x" * ((1 << 20) + 1)
    (files.root / "huge2.csv").write_bytes(_rows_with(_set(3, 7, huge)))
    err = loaded.post("/api/v1/uploads?wait=true", json={"url": files.url("huge2.csv")}).json()["error"]
    assert err["code"] == "bad_rows" and err["param"] == "url", err
    assert err["value"] == [{"row": 3, "column": "about_the_game", "value": "x" * 200 + "… (1,048,577 bytes in all)",
                             "expected": "valid UTF-8 text of at most 1 MiB"}]
    sent = loaded.post("/api/v1/uploads?wait=true", files={"file": ("huge2.csv", _rows_with(_set(3, 7, huge)))})
    assert sent.json()["error"]["param"] == "file", sent.json()


def test_a_sent_file_s_errors_name_the_file(loaded):
    """A sent file that is a web page, or empty, is named as `file`, not as a link (`url`, "the link")."""
    for content, code in ((b"<!doctype html><html><body>x</body></html>", "html_not_csv"), (b"", "empty_file")):
        err = loaded.post("/api/v1/uploads?wait=true", files={"file": ("g.csv", content)}).json()["error"]
        assert err["code"] == code and err["param"] == "file" and "link" not in err["message"], err


def test_a_value_that_is_not_utf8_says_its_size_in_bytes(loaded, files):
    """Its bytes read as U+FFFD: the record says how many bytes there were (300 bytes read as one character)."""
    (files.root / "ff.csv").write_bytes(_rows_with(_set(3, 7, "MARK")).replace(b"MARK", b"\xff" * 300))
    err = loaded.post("/api/v1/uploads?wait=true", json={"url": files.url("ff.csv")}).json()["error"]
    assert err["value"][0]["column"] == "about_the_game" and err["value"][0]["value"].endswith(
        "… (300 bytes in all)"), err


TEXT_CELLS = {"pylist": "['English', 'MARK']", "list": "Indie,MARK", "studios": "Valve,MARK"}


@pytest.mark.parametrize("column", [c.name for c in schema.SOURCE_COLUMNS if c.kind.text])
def test_a_value_that_is_not_utf8_is_a_bad_row_of_its_column_in_every_text_column(loaded, files, column):
    """A byte that is not UTF-8 (Latin-1's é) makes its row a bad row named by its column, whatever the
    column: in the languages it failed the whole upload as a database error to retry (helper-76: the
    formula check's NFKC normalisation threw on it although the check skips text that is not UTF-8)."""
    col = schema.BY_NAME[column]
    cell = TEXT_CELLS.get(col.kind.name, "Pok MARK")
    data = _rows_with(_set(3, HEADER.index(col.header), cell)).replace(b"MARK", "Pokémon".encode("latin-1"))
    (files.root / f"latin1_{column}.csv").write_bytes(data)
    body = loaded.post("/api/v1/uploads?wait=true", json={"url": files.url(f"latin1_{column}.csv")}).json()
    assert body["error"]["code"] == "bad_rows", body
    assert [(r["row"], r["column"]) for r in body["error"]["value"]] == [(3, column)], body


def test_too_few_fields_names_the_row(loaded, files):
    rows = sample_table()
    (files.root / "few2.csv").write_bytes(write_csv(rows[:3] + [rows[3][:10]] + rows[4:]))
    body = loaded.post("/api/v1/uploads?wait=true", json={"url": files.url("few2.csv")}).json()
    assert "data row 3" in body["error"]["message"], body


def test_over_the_size_cap(make_client, files):
    client = make_client(max_upload_mb=1)
    big = write_csv(sample_table()[:1] + sample_table()[1:] * 40)  # ~1.4 MB
    (files.root / "big.csv").write_bytes(big)
    for mode in ("files", "gzip"):  # the cap counts bytes received, not Content-Length
        r = client.post("/api/v1/uploads?wait=true", json={"url": files.url("big.csv", mode)})
        assert r.json()["error"]["code"] == "too_large", r.json()


@pytest.mark.parametrize("url,code", [
    ("ftp://example.com/games.csv", "bad_scheme"),
    ("file:///etc/passwd", "bad_scheme"),
    ("javascript:alert(1)", "bad_scheme"),
    ("http:///nohost", "bad_url"),
    ("https://exa mple.com/games.csv", "bad_url"),  # a host that cannot be looked up: it was taken, then failed
    ("https://example..com/games.csv", "bad_url"),
])
def test_refused_links_are_400_at_submit(client, url, code):
    r = client.post("/api/v1/uploads", json={"url": url})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["param"] == "url"


def test_an_upload_request_in_the_wrong_shape_says_the_right_one(client):
    """No body, a body of another type (text/plain), a link without a scheme, the file in a field of another
    name, an empty file: each 4xx says what to send instead (a newcomer met "Invalid JSON", "not no scheme",
    "a form field other than the file is at most 1 KiB" and "The link returned an empty file")."""
    plain_body = {"content": b"AppID,Name\r\n1,a\r\n", "headers": {"Content-Type": "text/plain"}}
    for sent in ({}, plain_body):
        r = client.post("/api/v1/uploads", **sent)
        assert r.status_code == 400 and r.json()["error"]["param"] == "body", r.json()
        message = r.json()["error"]["message"]
        assert '{"url": ' in message and "`file`" in message and "text/csv" in message, message
    for schemeless in ("example.com/games.csv", "example.com:8080/games.csv", "localhost:8000"):
        r = client.post("/api/v1/uploads", json={"url": schemeless})
        error = r.json()["error"]
        assert error["code"] == "bad_scheme" and "start it with https://" in error["message"], (schemeless, error)
    r = client.post("/api/v1/uploads", files={"data": ("games.csv", b"x" * 2000)})
    assert r.status_code == 400 and "field named `file`" in r.json()["error"]["message"], r.json()
    r = client.post("/api/v1/uploads?wait=true", files={"file": ("empty.csv", b"")})
    assert r.status_code == 422 and r.json()["error"]["message"] == "The file is empty (0 bytes).", r.json()


def test_private_addresses_refused_unless_allowed(make_client, files):
    client = make_client(allow_private_urls=False)
    for url in (files.url("sample.csv"), "http://localhost:1/x.csv", "http://169.254.169.254/latest/meta-data",
                "http://[::1]/x.csv", "http://10.0.0.1/x.csv"):
        r = client.post("/api/v1/uploads", json={"url": url})
        assert r.status_code == 400, url
        assert r.json()["error"]["code"] == "private_address"


# --- query inputs: (param, value, expected status, expected error code or None for a literal match) ---

QUERY_CASES = [
    ("name", "' OR 1=1 --", 200, None), ("name", "%", 200, None), ("name", "_", 200, None),
    ("name", "\\", 200, None), ("name", '"; DROP TABLE games; --', 200, None), ("name", "x" * 5000, 200, None),
    ("name", "\x00", 200, None), ("genres", "') OR ('1'='1", 200, None), ("tags__in", "a,b,',\\", 200, None),
    ("price", "1 OR 1=1", 400, "invalid_filter"), ("price", "1e309", 400, "invalid_filter"),
    ("price", "NaN", 400, "invalid_filter"), ("app_id", "99999999999999999999", 400, "invalid_filter"),
    ("release_date", "2020-13-45", 400, "invalid_filter"), ("release_date__gte", "0001-01-01", 400, "invalid_filter"),
    ("windows", "maybe", 400, "invalid_filter"), ("score_rank__isnull", "perhaps", 400, "invalid_filter"),
    ("sort", "name;DROP TABLE x", 400, "unknown_sort"), ("sort", "name DESC", 400, "unknown_sort"),
    ("sort", "--price", 400, "unknown_sort"),  # one sign at most
    ("limit", "1000000", 400, "invalid_parameter"), ("limit", "-1", 400, "invalid_parameter"),
    ("offset", "abc", 400, "invalid_parameter"), ("format", "xml", 400, "invalid_parameter"),
    ("fields", "name,(SELECT 1)", 400, "unknown_field"), ("facet", "about_the_game; --", 400, "unknown_facet"),
    ("unknown", "1", 400, "unknown_column"), ("__", "x", 400, "unknown_column"),
    ("name__regex", "x", 400, "unknown_operator"), ("price__contains", "1", 400, "unknown_operator"),
    ("genres__gt", "a", 400, "unknown_operator"), ("positive__isnull", "true", 400, "unknown_operator"),
    ("cursor", "not-a-cursor", 400, "invalid_cursor"),
    ("facet", "about_the_game", 400, "unknown_facet"),
]


@pytest.mark.parametrize("param,value,status,code", QUERY_CASES, ids=[f"{c[0]}={c[1][:15]!r}" for c in QUERY_CASES])
def test_bad_query_input(sample_client, sample_rows, param, value, status, code):
    before = dataset_rows(sample_client)
    r = sample_client.get("/api/v1/games", params={"limit": "1000", param: value})
    assert r.status_code == status, r.text
    if code:
        err = r.json()["error"]
        assert err["code"] == code and err["message"] and err["param"] == param
    elif param in ("name", "genres", "tags__in"):  # literal values: exactly what Python finds, no wildcards, no SQL
        if param == "name":
            want = [x for x in sample_rows if value.lower() in x["name"].lower()]
        elif param == "genres":
            want = [x for x in sample_rows if any(value.lower() in g.lower() for g in x["genres"])]
        else:
            want = [x for x in sample_rows if set(value.split(",")) & set(x["tags"])]
        assert r.json()["total"] == len(want)
        assert sorted(x["app_id"] for x in r.json()["rows"]) == sorted(x["app_id"] for x in want)
    assert dataset_rows(sample_client) == before


def _cursor(sort: str, values: list) -> str:
    import base64
    import json

    raw = json.dumps({"s": sort, "k": values}, separators=(",", ":"), allow_nan=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A cursor is client input: each value must fit its sort key's type (sort, then app_id and row number).
CURSORS = [
    ("", [2**40, 1]), ("", [-1, 1]), ("", [1.5, 1]), ("", [True, 1]), ("", ["1", 1]), ("", [1, 2**64]),
    ("price", [float("nan"), 1, 1]), ("price", [float("inf"), 1, 1]), ("price", [1e30, 1, 1]),
    ("price", [10**400, 1, 1]), ("est_revenue", [10**400, 1, 1]), ("review_score", [0, -10**400, 1, 1]),
    ("est_revenue", [float("nan"), 1, 1]), ("est_revenue", [float("-inf"), 1, 1]),
    ("price", ["19.99", 1, 1]), ("release_date", [0, "2020-02-30", 1, 1]), ("release_date", [0, "1969-12-31", 1, 1]),
    ("windows", ["true", 1, 1]), ("name", [5, 1, 1]), ("", [1]), ("", {"a": 1, "b": 2}),
    # Forms Python 3.11's date.fromisoformat takes but a Date key is not: week dates, ordinal dates,
    # compact forms, a time.
    ("release_date", [0, "2020-W01-1", 1, 1]), ("release_date", [0, "2020W011", 1, 1]),
    ("release_date", [0, "2020-032", 1, 1]), ("release_date", [0, "20200102", 1, 1]),
    ("release_date", [0, "2020-01-02T00:00", 1, 1]), ("release_date", [0, "２０２０-01-02", 1, 1]),
]


@pytest.mark.parametrize("sort,values", CURSORS, ids=[f"{s or 'default'}:{v!r}"[:40] for s, v in CURSORS])
def test_cursor_values_must_fit_their_keys(sample_client, sort, values):
    r = sample_client.get("/api/v1/games", params={"sort": sort, "cursor": _cursor(sort, values)})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_cursor"


def test_a_valid_handmade_cursor_still_works(sample_client):
    first = sample_client.get("/api/v1/games", params={"sort": "price", "limit": 1, "fields": "app_id"}).json()
    r = sample_client.get("/api/v1/games", params={"sort": "price", "cursor": first["next_cursor"], "limit": 1})
    assert r.status_code == 200 and r.json()["rows"][0]["app_id"] != first["rows"][0]["app_id"]


@pytest.mark.parametrize("sort,value,rows", [("-est_revenue", 1e12, 2), ("est_revenue", -1e300, 2),
                                             ("-est_revenue", int(sys.float_info.max), 2),  # a JSON integer
                                             ("price", 9999999999.99, 0)],
                         ids=["1e12", "-1e300", "largest-float-as-integer", "largest-price"])
def test_a_cursor_past_ten_billion_is_a_page_where_its_key_holds_it(sample_client, sort, value, rows):
    """est_revenue (Float64) passes 1e10 where prices are high: a cursor the server made must work;
    a price cursor may hold the largest Decimal(12, 2)."""
    r = sample_client.get("/api/v1/games", params={"sort": sort, "cursor": _cursor(sort, [value, 1, 1]), "limit": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["rows"]) == rows


def test_facets_are_few_and_on_groupable_columns(sample_client):
    six = [("facet", f) for f in ("genres", "tags", "categories", "required_age", "windows", "mac")]
    r = sample_client.get("/api/v1/games", params=six)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_facets"
    assert sample_client.get("/api/v1/games", params=six[:5]).status_code == 200


def test_group_by_at_most_two_list_columns(sample_client):
    r = sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres,tags,categories"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_list_groups"
    assert sample_client.get("/api/v1/games/aggregate", params={"group_by": "genres,tags"}).status_code == 200


def test_engine_text_never_reaches_a_client(make_client, files, caplog):
    """A statement the engine fails (here: the version's table vanished behind the app's back) is a
    503 with our words; ClickHouse's own message is in the log, under the request id."""
    import logging

    client = make_client()
    upload(client, files.url("sample.csv"))
    versions = client.app.state.uploads.versions
    client.app.state.engine.execute(f"DROP TABLE {versions.table(versions.active(fresh=True))} SYNC")
    with caplog.at_level(logging.WARNING):
        r = client.get("/api/v1/games", params={"name": "not warmed, so computed"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "engine_error"
    assert "DB::Exception" not in r.text and "Code:" not in r.text and "games_v" not in r.text
    assert any("UNKNOWN_TABLE" in line or "does not exist" in line for line in caplog.messages)


def test_readiness_says_only_ready_or_not(make_client, monkeypatch):
    from gamelens.errors import EngineError

    client = make_client()

    def broken(*args, **kw):
        raise EngineError("Code: 210. DB::Exception: Connection refused (secret-host:9000)", 210)

    monkeypatch.setattr(client.app.state.engine, "select", broken)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error"] == {"code": "not_ready", "message": "The database does not answer."}
    assert client.head("/readyz").status_code == 503  # an uptime monitor's HEAD hears the same


def test_health_checks_answer_head_as_monitors_send_it(client):
    for path, status in (("/healthz", 200), ("/readyz", 200), ("/", 200)):
        r = client.head(path, headers={"Authorization": ""})
        assert r.status_code == status and r.content == b"", (path, r.status_code)


@pytest.mark.parametrize("path", ["/api/v1/games?genres=indie&limit=3", "/api/v1/games?format=csv&limit=3",
                                  "/api/v1/games/aggregate?group_by=genres", "/api/v1/games/summary",
                                  "/api/v1/games/20200", "/api/v1/games/1", "/api/v1/games?bogus=1", "/api/v1/schema",
                                  "/api/v1/uploads", "/api/v1/keys"])
def test_every_read_answers_head_as_its_get_without_a_body(loaded, path):
    """`curl -I` on an export's link, a cache checking its ETag: HEAD gets GET's status and headers, no body,
    and the same key check; the OpenAPI document lists each read once."""
    got, head = loaded.get(path), loaded.head(path)
    assert head.status_code == got.status_code and head.content == b"", (path, head.status_code)
    for name in ("content-type", "etag", "x-dataset-version", "cache-control"):
        assert head.headers.get(name) == got.headers.get(name), name
    assert loaded.head(path, headers={"Authorization": ""}).status_code == 401
    assert not [p for p, ops in loaded.get("/openapi.json").json()["paths"].items() if "head" in ops]


@pytest.mark.parametrize("path,body", [
    ("/api/v1/uploads", b'{"url": "http://example.com/g.csv", "max_rejected_rows": 1e400}'),
    ("/api/v1/uploads", b'{"url": "http://example.com/g.csv", "max_rejected_rows": NaN}'),
    ("/api/v1/keys", b'{"name": NaN}'),
    ("/api/v1/keys", b'{"name": "x", "role": Infinity}'),
], ids=["inf", "nan", "key-nan", "role-infinity"])
def test_numbers_json_cannot_say_back_are_400(client, path, body):
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter", r.text


@pytest.mark.parametrize("value", [True, "5", 1.0])
def test_a_link_s_tolerance_is_a_json_integer(client, value):
    """`true` was read as 1, `"5"` as 5 and `1.0` as 1: a number of rows is an integer, as the schema says."""
    r = client.post("/api/v1/uploads", json={"url": "http://example.com/g.csv", "max_rejected_rows": value})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_rejected_rows", r.text
    assert "is not a whole number" in r.json()["error"]["message"], r.text  # in the API's words


def test_a_cursor_with_a_lone_surrogate_is_400(sample_client):
    r = sample_client.get("/api/v1/games", params={"sort": "name", "cursor": _cursor("name", ["\ud800", 1, 1])})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor", r.text


# release_month's SQL holds a literal '%' ('%Y-%m'): clickhouse-connect once formatted it with Python's %.
@pytest.mark.parametrize("group_by", ["release_date", "release_date,tags", "price_band", "windows", "release_month",
                                      "release_month,windows"])
def test_aggregate_csv_exports_of_any_group(sample_client, group_by):
    r = sample_client.get("/api/v1/games/aggregate", params={"group_by": group_by, "format": "csv", "limit": 5})
    assert r.status_code == 200 and len(r.text.splitlines()) >= 2, r.text[:300]


@pytest.mark.parametrize("value", ["²", "①", "٣", "１"])
def test_a_form_s_tolerance_takes_ascii_digits_only(client, value):
    """`max_rejected_rows=²` passed str.isdigit() and then failed int(): a 500; `٣` read as 3."""
    r = client.post("/api/v1/uploads", files={"file": ("a.csv", b"AppID\n1\n", "text/csv"),
                                              "max_rejected_rows": (None, value)})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_rejected_rows", r.text
