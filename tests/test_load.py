"""The sample loads exactly, and the same data written other ways stores the same result."""

import csv
import io
import math
from decimal import Decimal
from pathlib import Path

import pytest

from gamelens import schema

from .conftest import active_table, dataset_rows, engine_of, python_row, read_sample, upload


def stored(client) -> list[dict]:
    """Every row as the API computes it (virtual columns too), in file order."""
    from gamelens.query.build import field_sql

    from .conftest import REVIEW_MULTIPLE

    engine = engine_of(client)
    names = ", ".join(field_sql(n) for n in schema.output_names())
    # Prices as text: the comparison is exact, not through floats.
    res = engine.select(f"SELECT {names}, toString(price) AS price_text FROM {active_table(client)} ORDER BY _row",
                        {"review_multiple": REVIEW_MULTIPLE})
    out = []
    for row in res.dicts():
        row["price"] = Decimal(row.pop("price_text"))
        out.append(row)
    return out


FLOATS = ("review_score", "rating", "est_revenue")


def same_row(got: dict, want: dict) -> bool:
    """Equal, floats to within 1e-12 relative (the engine's log10 and pow may differ in the last bit)."""
    for name, value in want.items():
        if name in FLOATS and value is not None and got[name] is not None:
            if not math.isclose(got[name], value, rel_tol=1e-12, abs_tol=1e-9):
                return False
        elif got[name] != value:
            return False
    return set(got) == set(want)


def test_sample_loads_every_value(client, files):
    rec = upload(client, files.url("sample.csv"))
    assert rec["state"] == "succeeded", rec
    assert rec["rows_loaded"] == 100 and rec["rows_rejected"] == 0
    assert rec["warnings"] == []
    assert rec["bytes_received"] == len(files.root.joinpath("sample.csv").read_bytes())
    rows = stored(client)
    want = [python_row(r) for r in read_sample()]
    assert len(rows) == 100
    for got, exp in zip(rows, want, strict=True):
        assert same_row(got, exp), (got, exp)


def test_sample_quirks(client, files):
    upload(client, files.url("sample.csv"))
    rows = {r["name"]: r for r in stored(client)}
    may = [r for r in rows.values() if r["release_date_raw"] == "May 2020"]
    assert [(r["release_date"], r["release_date_raw"]) for r in may] == [("2020-05-01", "May 2020")]
    assert rows["Galactic Bowling"]["price"] == Decimal("19.99")
    assert any(r["price"] == 0 for r in rows.values())
    assert "Kanjozoku Game レーサー" in rows
    assert any(r["developers"] == ["Wise Wizard Games, LLC"] for r in rows.values())
    assert rows["Train Bandit"]["supported_languages"][:2] == ["English", "French"]
    assert all(r["score_rank"] is None for r in rows.values())


@pytest.mark.parametrize("name,mode", [
    ("no_index.csv", "files"), ("lf.csv", "files"), ("bom.csv", "files"), ("reordered.csv", "files"),
    ("sample.csv", "gzip"), ("sample.csv", "redirect/2"),
])
def test_variants_store_the_same(make_client, files, name, mode):
    reference = make_client()
    upload(reference, files.url("sample.csv"))
    client = make_client()
    rec = upload(client, files.url(name, mode))
    assert rec["state"] == "succeeded", rec
    assert rec["warnings"] == []
    assert dataset_rows(client) == dataset_rows(reference)


def test_row_numbers_follow_the_file(client, files):
    upload(client, files.url("sample.csv"))
    engine = engine_of(client)
    ids = engine.select(f"SELECT app_id FROM {active_table(client)} ORDER BY _row").rows
    assert [i for (i,) in ids] == [int(r["AppID"]) for r in read_sample()]


def test_extra_columns_are_ignored_and_listed(client, files):
    from .conftest import sample_table, write_csv

    table = [row + [("Metacritic url" if i == 0 else "x")] for i, row in enumerate(sample_table())]
    (files.root / "extra.csv").write_bytes(write_csv(table))
    rec = upload(client, files.url("extra.csv"))
    assert rec["state"] == "succeeded"
    assert rec["warnings"] == ["Ignored unknown column(s): Metacritic url"]


def test_many_or_long_unknown_columns_are_named_briefly(client, files):
    """Thousands of unknown names, or one very long one, were copied whole into the upload's record."""
    from .conftest import sample_table, write_csv

    names = ["x" * 5000] + [f"extra {i}" for i in range(2000)]
    table = [row + (names if i == 0 else [""] * len(names)) for i, row in enumerate(sample_table())]
    (files.root / "wide.csv").write_bytes(write_csv(table))
    rec = upload(client, files.url("wide.csv"))
    assert rec["state"] == "succeeded", rec
    assert rec["warnings"] == ["Ignored unknown column(s): " + "x" * 60 + "…, " + ", ".join(names[1:10])
                               + " and 1991 more"], rec["warnings"][0][:300]


def test_a_file_with_carriage_returns_alone_says_so(client, files):
    """Classic Mac OS line endings (CR alone) failed with Python's csv wording about universal newlines."""
    from .conftest import sample_table, write_csv

    (files.root / "cr.csv").write_bytes(write_csv(sample_table(), lineterminator="\r"))
    rec = upload(client, files.url("cr.csv"))
    assert rec["state"] == "failed" and rec["error"]["code"] == "cr_line_endings", rec
    assert "LF or CRLF" in rec["error"]["message"] and rec["error"]["param"] == "url"


@pytest.mark.parametrize("second", ["AppID", "app_id", "Name"])
def test_a_column_named_twice_fails_the_upload_and_keeps_the_data(client, files, second):
    """The index column's empty header renamed AppID loaded the row numbers as app ids without a word."""
    from .conftest import sample_table, write_csv

    upload(client, files.url("sample.csv"))
    before = dataset_rows(client)
    table = sample_table()
    table[0] = [second, *table[0][1:]]  # the first field is the file's unnamed row number
    (files.root / "twice.csv").write_bytes(write_csv(table))
    rec = upload(client, files.url("twice.csv"))
    assert rec["state"] == "failed" and rec["error"]["code"] == "repeated_columns", rec
    assert ("AppID" if second != "Name" else "Name") in rec["error"]["message"]
    assert dataset_rows(client) == before


def test_unparseable_date_is_kept_as_text_with_a_warning(client, files):
    from .conftest import sample_table, write_csv

    table = sample_table()
    table[3][3] = "Coming soon"
    (files.root / "coming.csv").write_bytes(write_csv(table))
    rec = upload(client, files.url("coming.csv"))
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 100
    assert len(rec["warnings"]) == 1 and "Coming soon" in rec["warnings"][0] and "data row 3" in rec["warnings"][0]
    row = [r for r in stored(client) if r["app_id"] == int(table[3][1])][0]
    assert row["release_date"] is None and row["release_date_raw"] == "Coming soon"


# A day as written -> as stored: to the end of the column's Date (a DateTime, which the parse used,
# wrapped Feb 8, 2106 to 1970-01-01, helper-61); a day outside it is not a date (kept as text, warned).
DAYS = {"Feb 8, 2106": "2106-02-08", "Dec 31, 2106": "2106-12-31", "Jun 6, 2149": "2149-06-06",
        "Jan 1, 1970": "1970-01-01", "Jun 7, 2149": None, "Dec 31, 1969": None}


def test_a_day_is_stored_as_written_to_the_end_of_the_columns_range(client, files):
    from .conftest import sample_table, write_csv

    table = sample_table()
    for row, text in zip(table[1:], DAYS, strict=False):
        row[table[0].index("Release date")] = text
    (files.root / "days.csv").write_bytes(write_csv(table))
    rec = upload(client, files.url("days.csv"))
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 100, rec
    assert len(rec["warnings"]) == 1 and rec["warnings"][0].startswith("2 release_date value(s) are not dates")
    got = {r["release_date_raw"]: r["release_date"] for r in stored(client)}
    assert {text: got[text] for text in DAYS} == DAYS


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles", "UTC"])
def test_a_days_parse_is_the_same_in_any_time_zone_of_the_server(client, zone):
    """East of UTC, Jan 1, 1970 was parsed as an instant before the DateTime's start: not a date."""
    parse = schema.KINDS["date"].parse.format(r="{text:String}")
    for text, day in {**DAYS, "Oct 21, 2008": "2008-10-21", "May 2020": "2020-05-01"}.items():
        got = engine_of(client).select(f"SELECT toString({parse})", {"text": text},
                                       settings={"session_timezone": zone}).scalar()
        assert got == day, (zone, text, got)


def test_a_header_of_thousands_of_fields_loads_up_to_the_cap_and_is_refused_past_it(client, files):
    """Past ~20,000 fields the engine refused the load's statement, which came back as a server error
    to retry (helper-61): a header wider than load.MAX_FIELDS is a clear 422 before anything is read."""
    from gamelens.ingest.load import MAX_FIELDS

    from .conftest import sample_table, write_csv

    table = sample_table()[:4]
    for width in (MAX_FIELDS, MAX_FIELDS + 1):
        extra = width - len(table[0])
        wide = [table[0] + [f"x{i}" for i in range(extra)]] + [row + [""] * extra for row in table[1:]]
        (files.root / f"wide{width}.csv").write_bytes(write_csv(wide))
    rec = upload(client, files.url(f"wide{MAX_FIELDS}.csv"))
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 3, rec
    before = dataset_rows(client)
    r = client.post("/api/v1/uploads?wait=true", json={"url": files.url(f"wide{MAX_FIELDS + 1}.csv")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_columns", r.text
    assert f"{MAX_FIELDS + 1:,} fields" in r.json()["error"]["message"] and r.json()["error"]["param"] == "header"
    assert dataset_rows(client) == before


def test_duplicate_app_ids_are_kept_and_reported(client, files):
    from .conftest import sample_table, write_csv

    table = sample_table()
    table[5][1] = table[4][1]
    (files.root / "dup.csv").write_bytes(write_csv(table))
    rec = upload(client, files.url("dup.csv"))
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 100
    assert any("repeat an app_id" in w for w in rec["warnings"])


def test_tolerated_bad_rows_are_dropped_and_listed(client, files):
    from .conftest import sample_table, write_csv

    table = sample_table()
    table[2][5] = "abc"   # price of data row 2
    table[7][12] = "-3"   # positive of data row 7
    (files.root / "two_bad.csv").write_bytes(write_csv(table))
    rec = upload(client, files.url("two_bad.csv"), max_rejected_rows=5)
    assert rec["state"] == "succeeded", rec
    assert rec["rows_loaded"] == 98 and rec["rows_rejected"] == 2
    assert [(r["row"], r["column"], r["value"]) for r in rec["rejected_rows"]] == [
        (2, "price", "abc"), (7, "positive", "-3")]
    engine = engine_of(client)
    assert engine.select(f"SELECT count() FROM {active_table(client)}").scalar() == 98


def test_a_backslash_n_cell_is_text_as_written_quoted_or_not(client, files):
    """`\\N` is ClickHouse's CSV null; to a CSV reader it is two characters. Kept as written (it was
    loaded as an empty name, and as an empty list of tags, helper-58), and a number written so is refused
    naming it."""
    from .conftest import sample_table, write_csv

    table = sample_table()
    head = table[0]
    table[1][head.index("Name")] = "\\N"
    table[2][head.index("Tags")] = "\\N"
    table[3][head.index("Release date")] = "\\N"
    table[4][head.index("Price")] = "\\N"
    table[5][head.index("Name")] = "\\N"
    body = write_csv(table).replace(b"\\N", b'"\\N"', 1)  # the first quoted, the rest bare
    assert body.count(b'"\\N"') == 1 and body.count(b"\\N") == 5
    (files.root / "backslash_n.csv").write_bytes(body)
    rec = upload(client, files.url("backslash_n.csv"), max_rejected_rows=1)
    assert rec["state"] == "succeeded", rec
    assert [(r["row"], r["column"], r["value"]) for r in rec["rejected_rows"]] == [(4, "price", "\\N")]
    with open(files.root / "backslash_n.csv", encoding="utf-8", newline="") as f:
        want = [python_row(r) for i, r in enumerate(csv.DictReader(f), 1) if i != 4]
    got = stored(client)
    assert len(got) == len(want) == 99
    for g, w in zip(got, want, strict=True):
        assert same_row(g, w), (g, w)
    assert got[0]["name"] == got[3]["name"] == "\\N"
    assert got[1]["tags"] == ["\\N"] and got[2]["release_date_raw"] == "\\N"


def test_list_elements_are_trimmed_as_the_oracle_says(client, files):
    """Spaces around list elements (as hand-edited files have) are not part of the elements."""
    from .conftest import sample_table, write_csv

    table = sample_table()
    for row in table[1:]:
        for i in (table[0].index(h) for h in ("Categories", "Genres", "Tags")):
            row[i] = " , ".join(f" {x} " for x in row[i].split(",")) if row[i] else " "
    (files.root / "spaced.csv").write_bytes(write_csv(table))
    upload(client, files.url("spaced.csv"))
    want = [python_row(dict(zip(table[0], row, strict=True))) for row in table[1:]]
    assert [r["genres"] for r in stored(client)] == [r["genres"] for r in want]
    assert [r["tags"] for r in stored(client)] == [r["tags"] for r in want]
    assert want[0]["genres"] == ["Casual", "Indie", "Sports"]


# Supported languages cells: Python list literals, as the source writes them, and hand-edited ones.
LANGUAGES = [
    ("['English', 'French']", ["English", "French"]),
    ("""["Ogre's", 'x']""", ["Ogre's", "x"]),  # repr's double quotes around a '
    (r"['Eng\'lish', 'French']", ["Eng'lish", "French"]),  # repr of an element holding ' and "
    (r"""['a\'b"c']""", ["a'b\"c"]),
    (r"['C:\\', 'a\\b']", ["C:\\", "a\\b"]),  # backslashes written doubled
    (r"['nl\nx']", ["nl\\nx"]),  # another escape is kept as written (Python would read a newline)
    ("['English', French]", ["English", "French"]),  # left unquoted by hand: kept, not lost
    ("[English, French]", ["English", "French"]),
    ("['English', 'French", ["English", "French"]),  # an unclosed quote
    ("[]", []),
    ("English, French", ["English", "French"]),  # no brackets: a comma list
]


def test_language_lists_are_read_as_written_and_exported_as_python_writes_them(make_client, files):
    """Every element of a languages cell is kept: escapes undone, unquoted elements kept; the CSV export
    writes each list as Python's repr would, and uploads again to the same lists."""
    from .conftest import sample_table, write_csv

    table = sample_table()[:len(LANGUAGES) + 1]
    column = table[0].index("Supported languages")
    for row, (cell, _) in zip(table[1:], LANGUAGES, strict=True):
        row[column] = cell
    (files.root / "languages.csv").write_bytes(write_csv(table))
    source = make_client()
    assert upload(source, files.url("languages.csv"))["state"] == "succeeded"
    assert [r["supported_languages"] for r in stored(source)] == [want for _, want in LANGUAGES]
    exported = source.get("/api/v1/games", params={"format": "csv", "fields": "app_id,supported_languages"})
    written = {int(r["app_id"]): r["supported_languages"] for r in csv.DictReader(io.StringIO(exported.text))}
    for row, (_, want) in zip(table[1:], LANGUAGES, strict=True):
        assert written[int(row[1])] == repr(want), row[1]
    (files.root / "languages_export.csv").write_bytes(
        source.get("/api/v1/games", params={"format": "csv"}).content)
    again = make_client()
    assert upload(again, files.url("languages_export.csv"))["state"] == "succeeded"
    assert sorted(map(str, (r["supported_languages"] for r in stored(again)))) == sorted(
        str(want) for _, want in LANGUAGES)


def test_the_plain_reading_of_a_list_gives_what_the_general_one_gives(client):
    """Nearly every languages cell is read by splitting at "', '" (schema._PLAIN_PYLIST), not by the
    regular expression of every other form (schema._GENERAL_PYLIST): on 30,000 cells generated from the
    characters that matter, both give the same elements; and where the plain reading is taken, they are
    the ones Python reads (empty ones dropped, as the load drops them)."""
    import ast
    import random

    rng = random.Random(20)
    pieces = ["'", '"', "\\", "[", "]", ",", " ", "a", "é", "', '", "['", "']", ", "]
    cells = []
    for _ in range(30_000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        words = ", ".join(repr("".join(rng.choice(pieces[4:]) for _ in range(rng.randint(0, 4))))
                          for _ in range(rng.randint(1, 4)))
        cells.append(rng.choice([f"['{body}']", body, f"[{words}]", f"['a', {body}, 'b']", f"[{words}{body}]"]))
    general, plain = (schema._GENERAL_PYLIST.format(r="v"), schema._PLAIN_PYLIST.format(r="v"))
    rows = engine_of(client).select(
        f"SELECT v, {plain} AS plain, {schema.KINDS['pylist'].parse.format(r='v')} AS got, {general} AS want "
        "FROM (SELECT arrayJoin({cells:Array(String)}) AS v)", {"cells": cells}).dicts()
    assert [r for r in rows if r["got"] != r["want"]] == []
    taken = [r for r in rows if r["plain"]]
    assert 3_000 < len(taken) < len(rows) - 3_000, len(taken)  # both readings were tried, often
    for r in taken:
        assert r["got"] == [x for x in ast.literal_eval(r["v"]) if x != ""], r


@pytest.mark.parametrize("ending", ["\n\n", "\r\n\r\n\r\n"], ids=["one blank line", "blank CRLF lines"])
def test_blank_lines_at_the_end_of_the_file_are_no_rows(client, files, ending):
    data = Path(files.root / "sample.csv").read_bytes().rstrip(b"\r\n") + ending.encode()
    (files.root / "blank_end.csv").write_bytes(data)
    rec = upload(client, files.url("blank_end.csv"))
    assert rec["state"] == "succeeded" and rec["rows_loaded"] == 100 and rec["rows_rejected"] == 0, rec


def test_a_gzip_file_unpacks_in_bounded_memory():
    """300 MB of unpacked bytes from a 0.3 MB gzip file, fed as 64 KB chunks: Python holds a piece at a
    time (unpack.PIECE), not what a chunk unpacks to (real memory, by tracemalloc)."""
    import tracemalloc
    import zlib

    from gamelens.ingest.unpack import Gunzip

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = packer.compress(b"\n" * (300 << 20)) + packer.flush()
    gunzip = Gunzip(1 << 40, lambda *error: AssertionError(error))
    tracemalloc.start()
    try:
        chunks = (packed[i:i + (1 << 16)] for i in range(0, len(packed), 1 << 16))
        unpacked = sum(len(piece) for chunk in chunks for piece in gunzip.feed(chunk))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    gunzip.finish()
    assert unpacked == 300 << 20
    assert peak < 8 << 20, peak
