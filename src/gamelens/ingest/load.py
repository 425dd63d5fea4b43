"""A downloaded CSV -> a staging table -> checks -> swapped in (see versions.py).

ClickHouse parses the file (Python only reads its header line): every field is read as text and
turned into its stored type by the schema's parse expressions, in one INSERT ... SELECT. Each row
also records its source row number and, when some field does not fit its column, which fields and
what they said — so bad rows are reported precisely, never silently dropped or altered.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .. import schema
from ..engine import CSV_PARSE_ERRORS, Engine, ident
from ..errors import EngineError, GameLensError, unloadable
from ..store import Store
from . import migrations, physical, versions
from .download import ZIP_MAGIC
from .unpack import is_gzip

MAX_REPORTED = 10


class RejectedRows(GameLensError):
    """More rows do not fit their column than the upload tolerates, or all of them do: the error lists
    the first of them (`value`) and says how many there are (`count`, the failed record's rows_rejected)."""

    def __init__(self, count: int, rows: list[dict], max_rejected: int, param: str, every: bool = False):
        first = rows[0]
        if every:  # what tolerating them would leave is an empty dataset
            why = f"Every one of the file's {count} row(s) has a value that does not fit its column"
        else:
            why = (f"{count} row(s) have values that do not fit their column (this upload tolerates "
                   f"{max_rejected}: its max_rejected_rows, else GAMELENS_MAX_REJECTED_ROWS)")
        super().__init__("bad_rows", f"{why}; first: data row {first['row']}, column "
                         f"{first['column']}, value {first['value']!r}, expected {first['expected']}.",
                         422, param=param, value=rows)
        self.count = count
# CSV reading: fields by position (the header was matched here), kept exactly as written.
CSV_SETTINGS = {
    "format_csv_allow_single_quotes": 0,
    "format_csv_allow_double_quotes": 1,
    "input_format_csv_trim_whitespaces": 0,
    # A file that ends with blank lines (editors leave one) has no rows there, as Python's csv reads it.
    "input_format_csv_skip_trailing_empty_lines": 1,
    # A bare `\N` is ClickHouse's CSV null, which a String field took as its default, '' (a name `\N`
    # loaded empty); a CSV reader sees the two characters, and so does the load without this default.
    "input_format_null_as_default": 0,
    "input_format_allow_errors_num": 0,
    "input_format_allow_errors_ratio": 0,
    **physical.INSERT_SETTINGS,
}


@dataclass
class LoadResult:
    rows: int = 0
    rejected: int = 0
    rejected_rows: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stored_bytes: int = 0  # compressed size on disk


MAX_HEADER = 1 << 20


def read_header(chunks: Iterator[bytes], param: str = "file") -> tuple[list[str], bytes]:
    """The header line, parsed with Python's csv module (the rest is ClickHouse's job).

    Returns it with the bytes read so far, which still have to be passed on to the database. Its errors
    name `param`, the request's field that sent the file."""
    prefix = b""
    while b"\n" not in prefix and len(prefix) < MAX_HEADER:
        chunk = next(chunks, None)
        if chunk is None:
            break
        prefix += chunk
    _refuse_packed(prefix, param)
    line = prefix.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        header = next(csv.reader([line.decode("utf-8-sig")]), None)
    except UnicodeDecodeError:
        raise unloadable("not_utf8", "The header line is not UTF-8 text; save the file as CSV UTF-8.",
                         param=param) from None
    except csv.Error as exc:
        if b"\r" in line:  # the database would read the whole file as one line
            raise unloadable("cr_line_endings", "Lines end with a carriage return alone (classic Mac OS line "
                             "endings): save the file with LF or CRLF line endings.", param=param) from None
        raise unloadable("bad_header", f"The header line is not valid CSV: {exc}", param=param) from None
    if not header or not any(h.strip() for h in header):
        raise unloadable("empty_file", "The file is empty: it has no header line.", param=param)
    return header, prefix


def _refuse_packed(head: bytes, param: str) -> None:
    """What a gzip file unpacked to, when that is packed again (the download checks the first bytes it
    receives, not those they unpack to): it said "not UTF-8 text"."""
    if is_gzip(head):
        raise unloadable("bad_gzip", "The file is gzip-compressed twice: unpack it once and send it again.",
                         param=param)
    if head.startswith(ZIP_MAGIC):
        raise unloadable("zip_not_csv", "The gzip file holds a zip archive, not a CSV file: send the CSV itself "
                         "(or the CSV compressed with gzip).", param=param)


# Fields a header may have. Each is read as text by the load's statement, which the engine refused as too
# large at ~20,000 (as "try again shortly", helper-61); no export of these columns comes near.
MAX_FIELDS = 4096


def check_header(header: list[str]) -> tuple[dict[str, int], list[str]]:
    """Map each column to its field's position in the file, found by its CSV header or by its API
    name (a GameLens CSV export uses API names); fail naming the missing columns, and the repeated ones
    (which of two AppID fields is the id is not ours to guess); warn about ignored unknown ones."""
    if len(header) > MAX_FIELDS:
        raise unloadable("too_many_columns", f"The header has {len(header):,} fields; a file may have at most "
                         f"{MAX_FIELDS:,} (GameLens reads {len(schema.SOURCE_COLUMNS)} of them, by name).",
                         param="header", allowed=[c.header for c in schema.SOURCE_COLUMNS])
    fields, missing, repeated = {}, [], []
    for c in schema.SOURCE_COLUMNS:
        found = [i for i, h in enumerate(header) if h in (c.header, c.name)]
        if not found:
            missing.append(c.header)
        elif len(found) > 1:
            repeated.append(c.header)
        fields[c.name] = found[0] if found else None
    if missing:
        raise unloadable("missing_columns", f"The header lacks required column(s): {', '.join(missing)}.",
                         param="header", value=header, allowed=[c.header for c in schema.SOURCE_COLUMNS])
    if repeated:
        raise unloadable("repeated_columns", f"The header names column(s) more than once (by their CSV header or "
                         f"API name): {', '.join(repeated)}.", param="header", value=header,
                         allowed=[c.header for c in schema.SOURCE_COLUMNS])
    used = set(fields.values())
    ours = set(schema.output_names())  # an export's other columns (derived, raw text) are ours
    extra = [h for i, h in enumerate(header) if h.strip() and i not in used and h not in ours]
    return fields, [_ignored(extra)] if extra else []


def _ignored(names: list[str], shown: int = 10, longest: int = 60) -> str:
    """The warning naming ignored columns, kept short: a header of thousands of names, or of one name of
    a megabyte, was copied whole into the upload's record."""
    said = [name if len(name) <= longest else name[:longest] + "…" for name in names[:shown]]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"Ignored unknown column(s): {', '.join(said)}{more}"


def _parse_expr(c: schema.Column, r: str) -> str:
    expr = c.kind.parse.format(r=r)
    return f"if({r} = '', NULL, {expr})" if c.nullable else expr


def _invalid_expr(c: schema.Column, r: str) -> str | None:
    if c.kind.text:
        return f"(NOT isValidUTF8({r}) OR length({r}) > {schema.MAX_FIELD_BYTES})"
    if not c.kind.invalid:
        return None
    expr = c.kind.invalid.format(r=r)
    return f"({r} != '' AND {expr})" if c.nullable else f"({expr})"


def select_exprs(fields: dict[str, int]) -> tuple[list[str], list[str]]:
    """Target columns and the SELECT expressions that fill them from the CSV's text fields
    (`fields`: column name -> its position in the file, read as c<position>). Each parsed value is
    aliased with its column's name, so stored derived columns compute from the parsed values."""
    columns, exprs, checks = [], [], []
    for c in schema.STORED_COLUMNS:
        columns.append(c.name)
        if c.stored:
            exprs.append(f"{c.stored} AS {ident(c.name)}")
            continue
        r = f"c{fields[c.name]}"
        text = schema.UNESCAPE.format(e=r) if c.kind.text else r
        exprs.append(f"{_parse_expr(c, text)} AS {ident(c.name)}")
        if c.raw_name:
            columns.append(c.raw_name)
            exprs.append(text)
        invalid = _invalid_expr(c, r)
        if invalid:
            checks.append((c.name, invalid, r))
    # Only rows with a bad field build the map (if() evaluates its branches lazily).
    any_bad = " OR ".join(inv for _, inv, _ in checks)
    pairs = ", ".join(f"if({inv}, '{name}', ''), {r}" for name, inv, r in checks)
    bad = f"if({any_bad}, mapFilter((k, v) -> k != '', map({pairs})), CAST(map(), 'Map(String, String)'))"
    columns += [schema.ROW_COL, schema.BAD_COL]
    exprs += ["rowNumberInAllBlocks() + 1", bad]
    return columns, exprs


_ROW = re.compile(r"\(at row (\d+)\)")
# Where the engine's message turns to its own context: the row (said our way), the file it read (a path on
# the server: a header line it could not read named the load's pipe in the data directory, helper-61).
_CONTEXT = re.compile(r": \((?:at row|in file/uri) ")


def _parse_failure(exc: EngineError) -> GameLensError:
    """Turn ClickHouse's CSV parse error into a clear one with the data row number. (Its text is
    about the client's own file, so, unlike other engine errors, it is shown.)"""
    m = _ROW.search(exc.detail)
    detail = _CONTEXT.split(exc.detail.split("DB::Exception: ")[-1], maxsplit=1)[0]
    where = f" at data row {m.group(1)} (line {int(m.group(1)) + 1} if no field spans lines)" if m else ""
    return unloadable("malformed_csv", f"The file is not valid CSV for this schema{where}: {detail}",
                value={"row": int(m.group(1))} if m else None)


def load(engine: Engine, upload_id: int, source: Iterable[bytes], max_rejected: int, max_memory_mb: int = 0,
         param: str = "file") -> LoadResult:
    """Stream `source` into the staging table of `upload_id` and check it; the caller swaps it in.
    `param`: the request's field that sent the data (`url` for a link), which its rows' errors name."""
    chunks = iter(source)
    header, prefix = read_header(chunks, param)
    fields, warnings = check_header(header)
    result = LoadResult(warnings=warnings)
    table = versions.stage_name(upload_id)
    store = Store(engine, engine.settings.clickhouse_cluster)
    store.create_version_table(table, migrations.comment_for(upload_id))
    columns, exprs = select_exprs(fields)
    try:
        limits = {"max_memory_usage": max_memory_mb << 20} if max_memory_mb else {}
        store.load_csv(engine, table, columns, exprs, len(header), itertools.chain([prefix], chunks),
                       {**CSV_SETTINGS, **limits})
    except EngineError as exc:
        if exc.engine_code in CSV_PARSE_ERRORS:
            raise _parse_failure(exc) from exc
        raise
    except GameLensError as exc:
        if exc.code == "query_too_large":
            raise unloadable("load_out_of_memory", "Loading the file needed more memory than allowed "
                       "(GAMELENS_LOAD_MAX_MEMORY_MB, or the machine's memory).") from exc
        if exc.code == "insufficient_storage":  # the server's trouble, not the file's: a 5xx
            raise GameLensError("insufficient_storage", "The database's disk filled up while it stored this file; "
                                "nothing of it is kept and the data served is unchanged. Try again once the disk "
                                "has room.", 507) from exc
        raise
    _check(store, table, result, max_rejected, param)
    return result


SHOWN_CHARS = 200  # of a rejected value, in the upload's record


def _rejected(row: int, column: str, value: str, size: int) -> dict:
    """A rejected field as the record shows it: a value cut, or whose bytes are not all UTF-8 (they read
    as U+FFFD), says how many bytes it has."""
    shown = value[:SHOWN_CHARS]
    if len(value) > SHOWN_CHARS or size != len(value.encode()):
        shown += f"… ({size:,} bytes in all)"
    return {"row": row, "column": column, "value": shown, "expected": schema.BY_NAME[column].kind.expects}


def _check(store: Store, table: str, result: LoadResult, max_rejected: int, param: str) -> None:
    date_cols = [c for c in schema.COLUMNS if c.raw_name]
    stats = store.load_stats(table, date_cols)
    total, bad, distinct = stats[0], stats[1], stats[2]
    if total == 0:
        raise unloadable("no_rows", "The file has a header but no data rows.")
    if bad:
        rows = store.bad_rows(table, MAX_REPORTED)
        result.rejected_rows = [_rejected(row, col, value, sizes[col])
                                for row, cols, sizes in rows for col, value in cols.items()]
        if bad > max_rejected:
            raise RejectedRows(bad, result.rejected_rows, max_rejected, param)
        if bad == total:  # dropping them would switch an empty dataset in
            raise RejectedRows(bad, result.rejected_rows, max_rejected, param, every=True)
        store.drop_bad_rows(table)
        result.rejected = bad
        result.warnings.append(f"Dropped {bad} row(s) with values that do not fit their column.")
    for c, n in zip(date_cols, stats[3:], strict=True):
        if n:
            example = store.first_undated(table, c)
            result.warnings.append(f"{n} {c.name} value(s) are not dates and are stored as empty with their "
                                   f"text kept in {c.raw_name} (first: data row {example[0]}, {example[1]!r}).")
    result.rows = total - result.rejected
    result.stored_bytes = store.stored_bytes(table)
    if distinct < result.rows:
        result.warnings.append(
            f"{result.rows - distinct} row(s) repeat an {schema.KEY} already in the file; all rows are kept "
            f"(GET /api/v1/games/{{{schema.KEY}}} returns the first in file order).")
