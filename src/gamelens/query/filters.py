"""Filters as a small registry, Datasette style: (filter family, operator) -> an SQL condition.

A request parameter `column__op=value` (or bare `column=value`, the family's natural operator)
becomes one condition. Values are parsed here (a value that does not fit the column is a 400)
and bound as query parameters; the column identifier comes from the schema.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .. import schema
from ..engine import ident
from ..errors import invalid
from ..ingest import physical

# --- values ----------------------------------------------------------------------------------------

_DATE_FORMATS = ("%Y-%m-%d", "%b %d, %Y", "%B %d, %Y", "%b %Y", "%B %Y")
_TRUE, _FALSE = {"true", "1", "yes", "t", "y"}, {"false", "0", "no", "f", "n"}
INT64 = 2**63


def _number(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):  # ASCII digits only, as a path's app_id
        raise ValueError("a whole number")
    if len(text.strip().lstrip("+-")) > 19 or abs(int(text)) >= INT64:  # the engine's parameter is an Int64
        raise ValueError(f"a whole number between -{INT64 - 1} and {INT64 - 1}")
    return int(text)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("a number such as 19.99") from None
    if not value.is_finite() or abs(value) >= 10**27 or value.as_tuple().exponent < -10:
        raise ValueError("a number such as 19.99 (at most 10 decimals)")
    return value


def _float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("a number such as 0.8") from None
    if not math.isfinite(value) or abs(value) >= 1e300:
        raise ValueError("a finite number such as 0.8")
    if value == 0:  # -0 as 0: equal to it in `=`, but not in an IN set, which hashes its bits (helper-60)
        return 0.0
    return value


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE | _FALSE:
        return low in _TRUE
    raise ValueError("true or false")


def _in_formats(text: str, formats: tuple[str, ...]) -> date | None:
    """The day `text` names in the first of `formats` that reads it, within 1900-2299; else None."""
    for fmt in formats:
        try:
            value = datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
        if date(1900, 1, 1) <= value <= date(2299, 12, 31):
            return value
    return None


def parse_date(text: str) -> date:
    value = _in_formats(text, _DATE_FORMATS)
    if value is None:
        raise ValueError("a date: YYYY-MM-DD, 'Oct 21, 2008' or 'May 2020' (the 1st of that month)")
    return value


_MONTH_FORMATS = ("%Y-%m", "%b %Y", "%B %Y")


def parse_month(text: str) -> date:
    """A month (`2020-05`, `May 2020`) as its 1st day: a release_month filter compares months."""
    value = _in_formats(text, _MONTH_FORMATS)
    if value is None:
        raise ValueError("a month: YYYY-MM or 'May 2020'")
    return value


# family -> (parser, ClickHouse type of the bound parameter)
VALUES = {
    "number": (_number, "Int64"),
    "decimal": (_decimal, "Decimal(38, 10)"),
    "float": (_float, "Float64"),
    "bool": (_bool, "Bool"),
    "date": (parse_date, "Date32"),
    "string": (str, "String"),
    "list": (str, "String"),
}


# --- operators -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    key: str
    doc: str
    sql: str  # over {c} (column) and {p} (bound value)
    value: str = "scalar"  # scalar | list (comma-separated) | flag (true/false)
    nullable_only: bool = False  # only for columns that can hold NULL
    # The same test of one element ({x}), for columns that keep few (LowCardinality). A request tests
    # the column's distinct elements ({elements}) first, then finds the games by the text index
    # (`hasAny`): `genres=indie` counted in 7 ms against 61 at 500 MB. Over a version's element bitmaps
    # (physical.ELEMENT_LISTS) it gives the matching games' rows without reading a game (ROWS_SQL).
    element_test: str = ""
    # It compares whole list elements, which the load stores trimmed (schema._SPLIT): a value with
    # spaces around it (`genres__has= Indie`) is trimmed too, or it could never match.
    whole_element: bool = False


def _ops(*ops: Op) -> dict[str, Op]:
    return {o.key: o for o in ops}


_ORDERED = (
    Op("gt", "greater than", "{c} > {p}"),
    Op("gte", "greater than or equal", "{c} >= {p}"),
    Op("lt", "less than", "{c} < {p}"),
    Op("lte", "less than or equal", "{c} <= {p}"),
)
_COMPARABLE = _ops(
    Op("exact", "equals", "{c} = {p}"),
    Op("ne", "does not equal (empty values included)", "({c} IS NULL OR {c} != {p})"),
    *_ORDERED,
    Op("in", "equals one of a comma-separated list", "{c} IN {p}", "list"),
    Op("isnull", "is empty (true) or not (false)", "isNull({c}) = {p}", "flag", nullable_only=True),
)
# A price list is tested with has(): `IN` converts the list to the column's Decimal64 first, which
# overflows (code 407) on a value past 9.2e16 that the bound Decimal(38, 10) holds; has() compares in
# the wider type, as `=` and `<` do.
_DECIMAL = {**_COMPARABLE, "in": Op("in", "equals one of a comma-separated list", "has({p}, {c})", "list")}
REGISTRY: dict[str, dict[str, Op]] = {
    "number": _COMPARABLE,
    "decimal": _DECIMAL,
    "float": _COMPARABLE,
    "date": _COMPARABLE,
    "bool": _ops(Op("exact", "equals", "{c} = {p}"), Op("ne", "does not equal", "{c} != {p}")),
    # Substrings are matched with ILIKE on an escaped pattern ({like}): the text indexes on name and
    # about_the_game answer it from the index (see ingest/physical.py), and it is the same test everywhere.
    "string": _ops(
        Op("contains", "contains, any case (% _ \\ are plain characters)", "{c} ILIKE {like}"),
        Op("exact", "equals exactly", "{c} = {p}"),
        Op("ne", "does not equal exactly", "{c} != {p}"),
        Op("startswith", "starts with, any case", "startsWith(lowerUTF8({c}), lowerUTF8({p}))"),
        Op("in", "equals one of a comma-separated list", "{c} IN {p}", "list"),
        Op("isnull", "is empty (true) or not (false)", "({c} = '') = {p}", "flag"),
    ),
    "list": _ops(
        Op("contains", "an element contains this, any case", "arrayExists(x -> x ILIKE {like}, {c})",
           element_test="{x} ILIKE {like}"),
        Op("has", "an element equals this exactly", "has({c}, {p})", whole_element=True),
        Op("startswith", "an element starts with this, any case",
           "arrayExists(x -> startsWith(lowerUTF8(x), lowerUTF8({p})), {c})",
           element_test="startsWith(lowerUTF8({x}), lowerUTF8({p}))"),
        Op("in", "an element equals one of a comma-separated list", "hasAny({c}, {p})", "list"),
        Op("ne", "no element equals this exactly", "NOT has({c}, {p})", whole_element=True),
        Op("isnull", "the list is empty (true) or not (false)", "empty({c}) = {p}", "flag"),
    ),
}


# Parameters named ELEMENTS + column: a list column's distinct elements in the version read, bound by
# query/run.py (and ELEMENTS + column + "_listed": whether they were, or were too many).
ELEMENTS = "elements_"
ELEMENTS_PARAM = re.compile(r"\{" + ELEMENTS + r"([a-z_]+?)(_listed)?:")

# The games whose list passes an element test, as a bitmap of their rows: the union of the bitmaps of
# the elements that pass, in a version's table of element bitmaps ({bitmaps}: build.element_counts_sql
# names it). A segment's top lists then read no game: at 500 MB, `genres=indie`'s top tags and genres took
# 16.8 -> 11.8 ms of the engine's time, `tags=horror`'s 16.7 -> 15.4, `genres=indie&tags=2d`'s 18.4 -> 18.8
# (`python bench/segments.py 500`, "rows of the segment", one run): the more games, the more it saves.
ROWS_SQL = "(SELECT groupBitmapOrState(rows) FROM {{bitmaps}} WHERE list = {list} AND {test})"


def by_elements(col: schema.Column) -> bool:
    """A list column whose substring filters test its distinct elements first: it keeps few
    (LowCardinality), unlike studio names."""
    return col.kind.filter == "list" and "LowCardinality" in col.ch_type


def column_sql(col: schema.Column) -> str:
    """A column in SQL: its identifier, or, for a virtual column, the expression computing it."""
    return f"({col.virtual})" if col.virtual else ident(col.name)


@dataclass(frozen=True)
class Target:
    """What a filter parameter tests: a column, or a bucket of one (`release_year=2020`, `price_band=free`),
    which tests the bucket's order (schema.Bucket.family)."""

    name: str
    family: str  # its operators: REGISTRY[family]
    sql: str
    nullable: bool
    parser: Callable[[str], Any]  # a value as written -> the bound value
    ch_type: str  # the bound value's ClickHouse type


def _band(labels: tuple[str, ...]) -> Callable[[str], int]:
    """A label -> its number, in any case (`Free` is `free`, as `MAY 2020` is a month)."""
    lowered = [label.lower() for label in labels]

    def number(text: str) -> int:
        if text.strip().lower() not in lowered:
            raise ValueError("one of " + ", ".join(labels))
        return lowered.index(text.strip().lower())
    return number


def _bucket_target(bucket: schema.Bucket) -> Target:
    if bucket.labels:
        parser, ch_type = _band(bucket.labels), "UInt8"
    elif bucket.unit == "month":
        parser, ch_type = parse_month, "Date32"
    else:
        parser, ch_type = VALUES[bucket.family]
    nullable = schema.BY_NAME[bucket.source].ch_type.startswith("Nullable")
    return Target(bucket.name, bucket.family, f"({bucket.order})", nullable, parser, ch_type)


def target(name: str) -> Target | None:
    """The column or bucket `name` as a filter tests it; None when there is none of that name."""
    col = schema.BY_NAME.get(name)
    if col is not None:
        parser, ch_type = VALUES[col.kind.filter]
        return Target(name, col.kind.filter, column_sql(col), col.ch_type.startswith("Nullable"), parser, ch_type)
    if name in schema.BUCKETS:
        return _bucket_target(schema.BUCKETS[name])
    return None


FILTERABLE = [*schema.BY_NAME, *schema.BUCKETS]  # every name a filter parameter may start with


def operators_for(name: str) -> list[str]:
    """The operators a column or bucket accepts; the first is what a bare `name=value` means."""
    return _operators(target(name))


def _operators(t: Target) -> list[str]:
    return [k for k, o in REGISTRY[t.family].items() if not (o.nullable_only and not t.nullable)]



# --- parsing a request parameter -----------------------------------------------------------------


@dataclass
class Condition:
    sql: str
    params: dict[str, Any]
    scans: bool = False  # the text index cannot take it whole: it may read the text of every game
    rows_sql: str = ""  # the matching games' rows from the element bitmaps (ROWS_SQL), for an element test


def parse(param: str, raw: str, key: str) -> Condition:
    """`column[__op]=raw` -> a condition whose bound value is named `key`."""
    name, _, op_key = param.partition("__")
    tested = target(name)
    if tested is None:
        raise invalid(param, raw, f"Unknown column {name!r}.", sorted(FILTERABLE), "unknown_column")
    allowed = _operators(tested)  # the target resolved once per parameter
    op_key = op_key or allowed[0]
    if op_key not in allowed:
        raise invalid(param, raw, f"Operator {op_key!r} does not apply to {name} ({tested.family}).",
                      allowed, "unknown_operator")
    op = REGISTRY[tested.family][op_key]
    parser, ch_type = tested.parser, tested.ch_type
    p = key
    wrong = raw  # the value a refusal names: the whole parameter, or the list's element that does not fit
    try:
        if op.value == "flag":
            value, ch_type = _bool(raw), "Bool"
        elif op.value == "list":
            value, ch_type = [], f"Array({ch_type})"
            for wrong in value_list(raw):
                value.append(parser(wrong))
        elif op.whole_element:
            value = parser(raw.strip(SPACES))
        else:
            value = parser(raw)
    except ValueError as exc:
        expected = exc.args[0] if exc.args else "a valid value"
        where = f" (in {raw[:100]!r})" if wrong != raw else ""
        raise invalid(param, raw, f"{param}: {wrong[:100]!r}{where} is not {expected}.", expected,
                      "invalid_filter") from None
    sql = op.sql.format(c=tested.sql, p=f"{{{p}:{ch_type}}}", like=f"{{{p}_like:String}}")
    params = {p: value} if "{p}" in op.sql else {}
    col = schema.BY_NAME.get(name)
    if col is None:  # a bucket: no list elements, no text index
        return Condition(sql, params)
    rows_sql = ""
    if op.element_test and by_elements(col):
        test = op.element_test.format(x="x", p=f"{{{p}:{ch_type}}}", like=f"{{{p}_like:String}}")
        over = f"hasAny({column_sql(col)}, arrayFilter(x -> {test}, {{{ELEMENTS}{col.name}:Array(String)}}))"
        # Which one runs is a constant the engine folds: the element list is bound when a request runs
        # (query/run.py), and a version with too many distinct elements keeps the test on each game.
        sql = f"if({{{ELEMENTS}{col.name}_listed:Bool}}, {over}, {sql})"
        if col.name in physical.ELEMENT_LISTS:
            test = op.element_test.format(x="element", p=f"{{{p}:{ch_type}}}", like=f"{{{p}_like:String}}")
            rows_sql = ROWS_SQL.format(list=f"{{{p}_list:String}}", test=test)
            params[f"{p}_list"] = col.name
    if "{like}" in op.sql:
        params[f"{p}_like"] = like_pattern(value)
    scans = False
    if op.key == "contains" and col.name in physical.WORD_INDEXED:
        scans = _WORD.fullmatch(value) is None
        if scans and value.isascii():
            sql = f"lower({column_sql(col)}) LIKE {{{p}_like:String}}"
            params[f"{p}_like"] = like_pattern(value.lower())
        runs = word_runs(value)
        # Each run is a substring of any match, so testing it first changes no answer; the text index
        # answers it and the whole needle is then checked only where all its runs are.
        sql = " AND ".join([*(f"{column_sql(col)} ILIKE {{{p}_run{i}:String}}" for i in range(len(runs))), sql])
        params.update({f"{p}_run{i}": like_pattern(run) for i, run in enumerate(runs)})
    return Condition(sql, params, scans, rows_sql)


# A text index (ingest/physical.py) splits text into runs of ASCII letters and digits; it answers a
# substring of one such run. A needle that is not one run (`open-wor`, `open world`) is served by its
# runs of 3 or more (at most MAX_RUNS, the longest: they select best), and then checked whole. A run
# of 2 (`co` of `co-op`, `fi` of `sci-fi`) is in so many words of the dictionary that the engine
# gives up on it (text_index_like_max_postings_to_read) after the scan of the dictionary, and then
# scans every description anyway [bench/query.py line "description: runs of 2 letters"].
_RUN = re.compile(r"[A-Za-z0-9]{3,}")
MAX_RUNS = 3
# A needle the index takes whole (`vr`, `zombie`); any other reads the text where its runs leave it
# (Condition.scans). That read checks an ASCII needle with lower() and LIKE, 1.5-1.9× faster than ILIKE
# over the descriptions [bench/query.py lines "description: runs of 2 letters", "part of a word"]: an
# ASCII letter then matches only itself in either case, as in the text index (its preprocessor is
# lower()). The one other character the engine's ILIKE may fold to ASCII, a Kelvin sign (U+212A), it
# folds to `k` on some of its code paths and not on others (where the bytes fall in its buffers).
_WORD = re.compile(r"[A-Za-z0-9]+")


def word_runs(needle: str) -> list[str]:
    """The runs of a needle that the text index can serve; none when it is one run already."""
    runs = _RUN.findall(needle)
    if runs == [needle]:
        return []
    return sorted(runs, key=len, reverse=True)[:MAX_RUNS]


def like_pattern(text: str) -> str:
    """`text` as a substring pattern for LIKE/ILIKE: its own % _ and \\ are plain characters."""
    return "%" + re.sub(r"([%_\\])", r"\\\1", text) + "%"


# What a value's ends lose, as a list element's did at the load (schema._SPLIT's trimBoth): spaces only.
# All whitespace went, so `tags__has=%C2%A0Indie` found the games with `Indie`, and never the one whose
# element is ` Indie` with a no-break space (helper-60).
SPACES = " "


def value_list(raw: str) -> list[str]:
    """Comma-separated values (`__in`, `series`), read as one CSV line: a value in double quotes may
    hold commas, as studio names often do (`"Wise Wizard Games, LLC",Valve`), and `""` is a quote in it.
    Each value loses the spaces at its ends (SPACES): `Indie, RPG` is two genres, as people write a list
    (list elements are stored so, and a number's parser trims any whitespace)."""
    try:
        return [value.strip(SPACES) for value in next(csv.reader([raw], strict=True, skipinitialspace=True), [])]
    except csv.Error:
        raise ValueError('a comma-separated list (a value that holds a comma goes in double quotes: '
                         '"Studio, LLC")') from None
