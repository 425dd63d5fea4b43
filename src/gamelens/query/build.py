"""The pieces every read statement is built from: the request's filters (`Where`), limits and
paging parameters, sort keys and the keyset cursor, fields, and value counts over list elements.
Each endpoint's own SQL is in its module (rows.py, aggregate.py, summary.py, game.py).

Identifiers come only from the schema (columns, buckets, metrics); every value is bound.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode

from .. import schema
from ..engine import ident
from ..errors import GameLensError, invalid
from ..ingest import physical
from . import filters, formats

MAX_LIMIT, DEFAULT_LIMIT, MAX_OFFSET = 1000, 50, 100_000_000


def int_param(items: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = items.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw.strip()) or not lo <= int(raw) <= hi:  # ASCII digits, as paths
        allowed = f"a whole number from {lo} to {hi}"
        raise invalid(name, raw, f"{name} must be {allowed}.", allowed)
    return int(raw)


def chosen_version(items: list[tuple[str, str]]) -> tuple[int | None, list[tuple[str, str]]]:
    """`version=N`, the stored version a read asks for (None: the one served), and the other parameters."""
    rest = [(k, v) for k, v in items if k != "version"]
    if len(rest) == len(items):
        return None, items
    return int_param(single_params(items, {"version"}), "version", 0, 1, 10**12 - 1), rest


def csv_list(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def single_params(items: list[tuple[str, str]], names: set[str]) -> dict[str, str]:
    """The control parameters that may appear once (facet and having may repeat)."""
    out: dict[str, str] = {}
    for k, v in items:
        if k in names and k not in ("facet", "having"):
            if k in out:
                raise invalid(k, v, f"{k} may be given only once.")
            out[k] = v
    return out


@dataclass
class Where:
    sql: str = "1"
    params: dict[str, Any] = field(default_factory=dict)
    scans: bool = False  # a condition may read the text of every game (filters.Condition.scans)
    # The matching games' rows as one bitmap from a version's element bitmaps ({bitmaps}: its table), when
    # every condition is an element test (filters.ROWS_SQL); "" when some game must be read to know.
    rows_sql: str = ""


def where(items: list[tuple[str, str]], control: set[str]) -> Where:
    """AND of every filter parameter (anything that is not a control parameter)."""
    conds = [_filter(k, v, f"f{i}", control) for i, (k, v) in enumerate(items) if k not in control]
    if not conds:
        return Where()
    params: dict[str, Any] = {}
    for c in conds:
        params.update(c.params)
    rows_sql = ""
    if all(c.rows_sql for c in conds):
        rows_sql = conds[0].rows_sql
        for c in conds[1:]:
            rows_sql = f"bitmapAnd({rows_sql}, {c.rows_sql})"
    return Where(" AND ".join(f"({c.sql})" for c in conds), params, any(c.scans for c in conds), rows_sql)


def _filter(param: str, raw: str, key: str, control: set[str]) -> filters.Condition:
    """One filter; a parameter that names no column is told apart from the read's own parameters, which
    the answer lists too (`?limit=5` on the summary said only "Unknown column 'limit'")."""
    try:
        return filters.parse(param, raw, key)
    except GameLensError as exc:
        if exc.code != "unknown_column":
            raise
        own = sorted(control | {"version"})
        raise invalid(param, raw, f"Unknown parameter {param!r}: neither a column to filter by nor one of this "
                      f"read's own parameters ({', '.join(own)}).", [*own, *exc.allowed], "unknown_column") from None


@dataclass(frozen=True)
class Key:
    sql: str
    ch_type: str  # for binding a cursor value
    desc: bool = False
    rank: str = ""  # a stored column in the same order, cheaper to sort by (physical.RANKED)


SORTABLE = [c.name for c in schema.COLUMNS if c.kind.filter != "list"]


# Long free text and continuous numbers are no groups: nearly every value is its own.
GROUPABLE = [c.name for c in schema.COLUMNS if c.name != "about_the_game" and c.kind.filter != "float"
             ] + list(schema.BUCKETS)


def _column_keys(col: schema.Column, desc: bool) -> list[Key]:
    sql = filters.column_sql(col)
    if col.name in physical.RANKED:
        return [Key(sql, col.ch_type, desc, physical.rank_column(col.name))]
    if not col.ch_type.startswith("Nullable("):
        return [Key(sql, col.ch_type, desc)]
    # NULLs last in either direction, and no NULL in a comparison: (isNull, value) pairs.
    base = col.ch_type.removeprefix("Nullable(").removesuffix(")")
    zero = {"Date": "toDate(0)", "String": "''"}.get(base, "0")
    return [Key(f"isNull({sql})", "UInt8"), Key(f"ifNull({sql}, {zero})", base, desc)]


def sort_item(item: str) -> tuple[bool, str]:
    """`-name` -> (descending, name): one sign at most (`--name` names no column)."""
    if item[:1] in ("-", "+"):
        return item.startswith("-"), item[1:]
    return False, item


def sort_keys(raw: str | None) -> tuple[str, list[Key]]:
    """`-positive,name` -> ORDER BY keys; returns the normalised sort text too (for the cursor)."""
    names = csv_list(raw or "")
    keys, seen = [], set()
    for item in names:
        desc, name = sort_item(item)
        if name not in SORTABLE:
            raise invalid("sort", raw, f"Cannot sort by {name!r}.", SORTABLE, "unknown_sort")
        if name in seen:
            continue
        seen.add(name)
        keys += _column_keys(schema.BY_NAME[name], desc)
    if schema.KEY not in seen:
        keys.append(Key(ident(schema.KEY), "UInt32"))
    keys.append(Key(schema.ROW_COL, "UInt64"))
    return ",".join(names), keys


def order_by(keys: list[Key], ranks: frozenset[str] = frozenset()) -> str:
    """ORDER BY the keys, each by its rank where the version stores one (`ranks`, Snapshot.ranks; see
    ingest/physical.py for the figures). Cursors keep the values themselves, which order the rows the
    same way in any version, and their ranks in the version they came from (ranked_keys)."""
    return ", ".join(f"{k.rank if k.rank in ranks else k.sql} {'DESC' if k.desc else 'ASC'}" for k in keys)


def ranked_keys(keys: list[Key], ranks: frozenset[str]) -> list[Key]:
    """The keys with a rank, if the version stores every one of them (`ranks`), else none: a page returns
    their ranks too, for its next cursor, which carries all or none."""
    ranked = [k for k in keys if k.rank]
    if all(k.rank in ranks for k in ranked):
        return ranked
    return []


# A text key value longer than this (as JSON) is left out of a cursor: a next link must fit the query
# string's cap (GAMELENS_MAX_QUERY_STRING, 8 KB by default), and a description or a long name would not
# (1,100 CJK characters took 8.9 KB, helper-58). The page after it reads the value from the cursor's row
# in its version instead (keyset), which a version of its own table can do: on another version such a
# cursor is refused.
CURSOR_TEXT_MAX = 256


def encode_cursor(sort: str, values: list[Any], identity: str = "", rank_values: list[int] | None = None) -> str:
    """The last row's key values; with its keys' ranks in the version `identity` (a table's UUID) if
    it has any: a keyset condition on that version compares numbers, not text (keyset). Long text values
    are left out (CURSOR_TEXT_MAX) and named, with that version, under "o"."""
    long = [i for i, v in enumerate(values) if isinstance(v, str) and len(json.dumps(v)) > CURSOR_TEXT_MAX]
    doc: dict[str, Any] = {"s": sort, "k": [None if i in long else v for i, v in enumerate(values)]}
    if rank_values:
        doc["r"] = {"t": identity, "v": rank_values}
    if long:
        doc["o"] = {"t": identity, "i": long}
    raw = json.dumps(doc, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


_DECIMAL = re.compile(r"Decimal\((\d+),\s*(\d+)\)")
_INT_RANGES = {"UInt8": 2**8, "UInt32": 2**32, "UInt64": 2**64}


def _cursor_value_ok(value: Any, ch_type: str) -> bool:
    """A cursor value must fit its key's type: a cursor is client input like any other."""
    if ch_type == "String":
        return isinstance(value, str) and _is_utf8(value)
    if ch_type == "Bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if ch_type == "Date":  # only YYYY-MM-DD: fromisoformat alone also takes week dates (2020-W01-1)
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            return False
        try:
            return date(1970, 1, 1) <= date.fromisoformat(value) <= date(2149, 6, 6)
        except ValueError:
            return False
    if ch_type == "Float64":  # any finite number (est_revenue passes 1e10 where prices are high)
        return _finite(value)
    if ch_type.startswith("Decimal"):
        return _finite(value) and abs(value) < _decimal_bound(ch_type)
    return isinstance(value, int) and 0 <= value < _INT_RANGES[ch_type]


def _finite(value: Any) -> bool:
    """A number a Float64 holds. JSON integers have no bound (math.isfinite(10**400) raises), and Python
    compares an int with a float exactly; NaN compares false."""
    return isinstance(value, int | float) and abs(value) <= sys.float_info.max


def _decimal_bound(ch_type: str) -> int:
    """Decimal(P, S) holds less than 10**(P - S) either side of zero."""
    precision, scale = (int(n) for n in _DECIMAL.fullmatch(ch_type).groups())
    return 10 ** (precision - scale)


def _is_utf8(text: str) -> bool:
    """JSON may carry a lone surrogate (\\ud800); UTF-8, and so the engine, cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _no_constants(name: str):
    raise ValueError(name)  # NaN, Infinity: not JSON, and not a value of any key


def _bad_cursor(cursor: str) -> GameLensError:
    return invalid("cursor", cursor, "Invalid cursor: use the next_cursor of a response with the same sort.",
                   code="invalid_cursor")


def _cursor_doc(cursor: str, sort: str, keys: list[Key]) -> tuple[dict, set[int]]:
    """A cursor's JSON: one for this sort, with a valid value for each key but those it left out; and
    the positions of those (_left_out)."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), parse_constant=_no_constants)
        values = doc["k"]
        ok = doc["s"] == sort and isinstance(values, list) and len(values) == len(keys)
        left_out = _left_out(doc, keys) if ok else set()
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
        ok = False
    if not ok or not all(i in left_out or _cursor_value_ok(v, k.ch_type)
                         for i, (v, k) in enumerate(zip(values, keys, strict=True))):
        raise _bad_cursor(cursor)
    return doc, left_out


def _left_out(doc: dict, keys: list[Key]) -> set[int]:
    """The positions of the text values a cursor left out (encode_cursor); ValueError if malformed."""
    if "o" not in doc:
        return set()
    o = doc["o"]
    if not (isinstance(o, dict) and isinstance(o.get("t"), str) and isinstance(o.get("i"), list)):
        raise ValueError("o")
    left_out = set()
    for i in o["i"]:
        if type(i) is not int or not 0 <= i < len(keys) or keys[i].ch_type != "String" or doc["k"][i] is not None:
            raise ValueError("o")
        left_out.add(i)
    return left_out


def _cursor_ranks(cursor: str, doc: dict, keys: list[Key], identity: str, ranks: frozenset[str]) -> list[int] | None:
    """The ranks a cursor carries (one per key with a rank), if they are of this version (`identity`)
    and it stores them all; None if it carries none or they are of another version."""
    if "r" not in doc:
        return None
    r, ranked = doc["r"], [k for k in keys if k.rank]
    if not (isinstance(r, dict) and isinstance(r.get("t"), str) and isinstance(r.get("v"), list)
            and len(r["v"]) == len(ranked) and all(_cursor_value_ok(v, "UInt32") for v in r["v"])):
        raise _bad_cursor(cursor)
    if r["t"] != identity or ranked_keys(keys, ranks) != ranked:
        return None
    return r["v"]


def _row_value(key: Key, keys: list[Key], values: list[Any], table: str) -> tuple[str, dict[str, Any]]:
    """A key's value read from the cursor's row (its app_id and source row number are keys too)."""
    app_id = next(v for k, v in zip(keys, values, strict=True) if k.sql == ident(schema.KEY))
    row = values[-1]
    return (f"(SELECT {key.sql} FROM {table} WHERE {ident(schema.KEY)} = {{c_app:UInt32}} "
            f"AND {schema.ROW_COL} = {{c_row:UInt64}})", {"c_app": app_id, "c_row": row})


def keyset(cursor: str, sort: str, keys: list[Key], table: str, identity: str = "",
           ranks: frozenset[str] = frozenset()) -> Where:
    """Rows strictly after the cursor's row in the (key1, key2, ...) order, directions included. A key
    the version stores a rank of is compared by that rank when the cursor carries it from this version:
    numbers, not text, for every row (the middle page by `-positive,name` at 500 MB, engine alone, its
    keys: 23.3 -> 15.2 ms, by hand, median of 11). A value the cursor left out is read from its row in
    `table`, if the cursor is of this version."""
    doc, left_out = _cursor_doc(cursor, sort, keys)
    rank_values = _cursor_ranks(cursor, doc, keys, identity, ranks)
    if left_out and doc["o"]["t"] != identity:
        raise invalid("cursor", cursor, "This cursor's page sorted by a long text, of another version of the "
                      "data than the one read now: start again from the first page, or page by offset.",
                      code="invalid_cursor")
    compared, params = [], {}  # compared: (sql, value's SQL) of each key, in order
    ranked_values = iter(rank_values or [])
    for i, (key, value) in enumerate(zip(keys, doc["k"], strict=True)):
        if rank_values and key.rank:
            compared.append((key.rank, f"{{c{i}:UInt32}}"))
            params[f"c{i}"] = next(ranked_values)
        elif i in left_out:
            value_sql, row_params = _row_value(key, keys, doc["k"], table)
            compared.append((key.sql, value_sql))
            params.update(row_params)
        else:
            compared.append((key.sql, f"{{c{i}:{key.ch_type}}}"))
            params[f"c{i}"] = value
    ors = []
    for i, key in enumerate(keys):
        eq = [f"{sql} = {value_sql}" for sql, value_sql in compared[:i]]
        sql, value_sql = compared[i]
        eq.append(f"{sql} {'<' if key.desc else '>'} {value_sql}")
        ors.append("(" + " AND ".join(eq) + ")")
    return Where("(" + " OR ".join(ors) + ")", params)


def source_form(fmt: str) -> bool:
    """Whether an export of `fmt` writes values as the source file does (see formats.Format)."""
    return fmt in formats.EXPORTS and formats.EXPORTS[fmt].source_form


def field_sql(name: str) -> str:
    """A returned field: its column, or a virtual column's expression named after it."""
    col = schema.BY_NAME.get(name)
    if col is not None and col.virtual:
        return f"{filters.column_sql(col)} AS {ident(name)}"
    return ident(name)


def csv_expr(name: str) -> str:
    """A field as a CSV export writes it: the way the source file does, formula-looking text neutralised."""
    col = schema.BY_NAME.get(name)
    if col is None:  # a raw text column (release_date_raw)
        return schema.NEUTRALISE.format(e=ident(name))
    expr = col.kind.csv.format(c=filters.column_sql(col), raw=ident(col.raw_name or col.name))
    return schema.NEUTRALISE.format(e=expr) if col.kind.text else expr


def count_sql(cond: Where, table: str) -> tuple[str, dict[str, Any]]:
    return f"SELECT count() FROM {table} WHERE {cond.sql}", cond.params


def group_expr(name: str) -> str:
    """A group key that is no list: a bucket or a column (lists are joined: see _elements)."""
    if name in schema.BUCKETS:
        return schema.BUCKETS[name].expr
    return filters.column_sql(schema.BY_NAME[name])


def is_list(name: str) -> bool:
    return name in schema.BY_NAME and schema.BY_NAME[name].kind.filter == "list"


def join_elements(name: str, index: int, alias: str = "", repeats: bool = True) -> tuple[str, str]:
    """`ARRAY JOIN` of a list column's elements, and the condition that keeps each distinct one once
    per game (a game is never counted twice for a repeated tag). Without `alias` the column itself
    becomes its element. `arrayEnumerateUniq` keeps the elements LowCardinality, where
    `arrayJoin(arrayDistinct(...))` made them strings: half the time of a group by tag at 500 MB.
    When the version is known to repeat no element of this column in any game (`repeats` False: see
    ranking_sql), there is nothing to keep once: 62 -> 36 ms counting Indie games' tags at 500 MB."""
    col = ident(name)
    joined = f"{col} AS {alias}" if alias else col
    if not repeats:
        return f" ARRAY JOIN {joined}", "1"
    return f" ARRAY JOIN {joined}, arrayEnumerateUniq({col}) AS __u{index}", f"__u{index} = 1"


def _elements(name: str, table: str, cond: str, repeats: bool) -> str:
    """FROM ... WHERE: each distinct element of list `name` (as `__e`) of the games meeting `cond`
    (the alias leaves `name` the whole list in `cond`)."""
    join, once = join_elements(name, 0, "__e", repeats)
    return f"{table}{join} WHERE ({cond}) AND {once}"


def value_counts(name: str, table: str, cond: str, count: str = "count", having: str = "1",
                 repeats: bool = True) -> str:
    """`value` and its number of games (named `count`) of a groupable column over the games meeting
    `cond`, largest first (`repeats`: see join_elements)."""
    if is_list(name):
        source = f"SELECT __e AS value, count() AS {count} FROM {_elements(name, table, cond, repeats)}"
    else:
        source = f"SELECT {group_expr(name)} AS value, count() AS {count} FROM {table} WHERE {cond}"
    return f"{source} GROUP BY value HAVING {having} ORDER BY {count} DESC, value ASC"


def element_counts_sql(cond: Where, table: str, elements: str, lists: list[str], limit: int
                       ) -> tuple[str, dict[str, Any]]:
    """(list, value, games): the top `limit` elements of each of `lists` over the games meeting `cond`, from
    the version's element bitmaps (`elements`, physical.elements_table): the matching games' rows as one
    bitmap, ANDed with each element's. The same as value_counts: each game once, most first, ties by value.
    The matching rows come from the bitmaps too when every filter is an element test (Where.rows_sql)."""
    rows = f"(SELECT groupBitmapState(toUInt32({schema.ROW_COL})) FROM {table} WHERE {cond.sql})"
    if cond.rows_sql:
        rows = cond.rows_sql.replace("{bitmaps}", elements)
    return (f"WITH {rows} AS __rows "
            f"SELECT list, element AS value, bitmapAndCardinality(rows, __rows) AS games FROM {elements} "
            "WHERE list IN {__lists:Array(String)} AND games > 0 ORDER BY list, games DESC, value ASC "
            "LIMIT {__n:UInt64} BY list", {**cond.params, "__lists": lists, "__n": limit})


def ranking_sql(name: str, table: str, limit: int) -> tuple[str, dict[str, Any]]:
    """Every element of list `name` over the whole version: its number of games, most first (at most
    `limit`), and whether some game lists it more than once (then its groups keep each once)."""
    col = ident(name)
    return (f"SELECT __e AS value, countIf(__u = 1) AS count, countIf(__u > 1) > 0 AS repeated FROM {table} "
            f"ARRAY JOIN {col} AS __e, arrayEnumerateUniq({col}) AS __u GROUP BY value "
            "ORDER BY count DESC, value ASC LIMIT {lim:UInt64}", {"lim": limit})


def page_url(path: str, items: list[tuple[str, str]], **changes: Any) -> str:
    """The URL of another page: the request's parameters with `changes` (None drops one)."""
    kept = [(k, v) for k, v in items if k not in changes]
    kept += [(k, str(v)) for k, v in changes.items() if v is not None]
    return f"{path}?{urlencode(kept)}"
