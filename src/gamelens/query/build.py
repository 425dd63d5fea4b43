"""A request's query string -> one parameterised SELECT (rows, count, facets, aggregates).

Identifiers come only from the schema (columns, buckets, metrics); every value is bound.
Row order is always total: the requested keys, then app_id, then the source row number, so pages
never overlap or skip; the keyset cursor carries the last row's values of exactly those keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .. import schema
from ..engine import ident
from ..errors import GameLensError, invalid
from . import filters, formats

MAX_LIMIT, DEFAULT_LIMIT, MAX_OFFSET = 1000, 50, 100_000_000
FACET_DEFAULT, FACET_MAX = 10, 100
# Each facet is a GROUP BY over the matching rows: a few per request, on groupable columns only.
MAX_FACETS = 5
# Each list column in a GROUP BY multiplies the rows (one arrayJoin each): at most this many.
MAX_LIST_GROUPS = 2
ROWS_PARAMS = {"sort", "limit", "offset", "cursor", "fields", "format", "facet", "facet_size"}
AGG_PARAMS = {"group_by", "metrics", "having", "sort", "limit", "offset", "format", "top", "series"}
MAX_SERIES = 50
SUMMARY_PARAMS: set[str] = set()


def _int(items: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = items.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,12}", raw.strip()) or not lo <= int(raw) <= hi:
        raise invalid(name, raw, f"{name} must be a whole number from {lo} to {hi}.")
    return int(raw)


def _csv_list(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _single(items: list[tuple[str, str]], names: set[str]) -> dict[str, str]:
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


def where(items: list[tuple[str, str]], control: set[str]) -> Where:
    """AND of every filter parameter (anything that is not a control parameter)."""
    conds = [filters.parse(k, v, f"f{i}") for i, (k, v) in enumerate(items) if k not in control]
    if not conds:
        return Where()
    params: dict[str, Any] = {}
    for c in conds:
        params.update(c.params)
    return Where(" AND ".join(f"({c.sql})" for c in conds), params)


# --- sorting and the keyset cursor ---------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    sql: str
    ch_type: str  # for binding a cursor value
    desc: bool = False


SORTABLE = [c.name for c in schema.COLUMNS if c.kind.filter != "list"]
# Long free text and continuous numbers are no groups: nearly every value is its own.
GROUPABLE = [c.name for c in schema.COLUMNS if c.name != "about_the_game" and c.kind.filter != "float"
             ] + list(schema.BUCKETS)


def _column_keys(col: schema.Column, desc: bool) -> list[Key]:
    sql = filters.column_sql(col)
    if not col.ch_type.startswith("Nullable("):
        return [Key(sql, col.ch_type, desc)]
    # NULLs last in either direction, and no NULL in a comparison: (isNull, value) pairs.
    base = col.ch_type.removeprefix("Nullable(").removesuffix(")")
    zero = {"Date": "toDate(0)", "String": "''"}.get(base, "0")
    return [Key(f"isNull({sql})", "UInt8"), Key(f"ifNull({sql}, {zero})", base, desc)]


def sort_keys(raw: str | None) -> tuple[str, list[Key]]:
    """`-positive,name` -> ORDER BY keys; returns the normalised sort text too (for the cursor)."""
    names = _csv_list(raw or "")
    keys, seen = [], set()
    for item in names:
        desc, name = item.startswith("-"), item.lstrip("-+")
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


def order_by(keys: list[Key]) -> str:
    return ", ".join(f"{k.sql} {'DESC' if k.desc else 'ASC'}" for k in keys)


def encode_cursor(sort: str, values: list[Any]) -> str:
    raw = json.dumps({"s": sort, "k": values}, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
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
    if ch_type.startswith("Decimal") or ch_type == "Float64":
        return isinstance(value, int | float) and math.isfinite(value) and abs(value) < 10**10
    return isinstance(value, int) and 0 <= value < _INT_RANGES[ch_type]


def _is_utf8(text: str) -> bool:
    """JSON may carry a lone surrogate (\\ud800); UTF-8, and so the engine, cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _no_constants(name: str):
    raise ValueError(name)  # NaN, Infinity: not JSON, and not a value of any key


def keyset(cursor: str, sort: str, keys: list[Key]) -> Where:
    """Rows strictly after the cursor's row in the (key1, key2, ...) order, directions included."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), parse_constant=_no_constants)
        values = doc["k"]
        ok = doc["s"] == sort and isinstance(values, list) and len(values) == len(keys)
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
        ok = False
    if not ok or not all(_cursor_value_ok(v, k.ch_type) for v, k in zip(values, keys, strict=True)):
        raise invalid("cursor", cursor, "Invalid cursor: use the next_cursor of a response with the same sort.",
                      code="invalid_cursor")
    params = {f"c{i}": v for i, v in enumerate(values)}
    ors = []
    for i, key in enumerate(keys):
        eq = [f"{k.sql} = {{c{j}:{k.ch_type}}}" for j, k in enumerate(keys[:i])]
        eq.append(f"{key.sql} {'<' if key.desc else '>'} {{c{i}:{key.ch_type}}}")
        ors.append("(" + " AND ".join(eq) + ")")
    return Where("(" + " OR ".join(ors) + ")", params)


# --- rows ----------------------------------------------------------------------------------------


@dataclass
class RowsRequest:
    where: Where
    fields: list[str]
    sort: str
    keys: list[Key]
    limit: int
    offset: int
    cursor: str | None
    facets: list[str]
    facet_size: int
    format: str
    limited: bool = False  # the client gave a limit (an export then stops there, not at the cap)


def parse_rows(items: list[tuple[str, str]], accept: str | None = None, max_limit: int = MAX_LIMIT) -> RowsRequest:
    """A rows request; exports pass their own `max_limit` (the export cap)."""
    single = _single(items, ROWS_PARAMS)
    fmt = formats.chosen(single.get("format"), accept)
    all_fields = schema.output_names()
    # In the source's form a date is written as the source file wrote it: its raw copy is left out by default.
    default = [f for f in all_fields if f in schema.BY_NAME] if _source_form(fmt) else all_fields
    fields = _csv_list(single.get("fields", "")) or default
    unknown = [f for f in fields if f not in all_fields]
    if unknown:
        raise invalid("fields", single["fields"], f"Unknown field(s): {', '.join(unknown)}.",
                      all_fields, "unknown_field")
    sort, keys = sort_keys(single.get("sort"))
    facets = list(dict.fromkeys(v for k, v in items if k == "facet"))
    for f in facets:
        if f not in GROUPABLE:
            raise invalid("facet", f, f"Cannot facet by {f!r}.", GROUPABLE, "unknown_facet")
    if len(facets) > MAX_FACETS:
        raise invalid("facet", ",".join(facets), f"At most {MAX_FACETS} facets per request.", code="too_many_facets")
    cursor = single.get("cursor")
    return RowsRequest(
        where=where(items, ROWS_PARAMS), fields=list(dict.fromkeys(fields)), sort=sort, keys=keys,
        limit=_int(single, "limit", DEFAULT_LIMIT, 1, max_limit),
        offset=0 if cursor else _int(single, "offset", 0, 0, MAX_OFFSET),
        cursor=cursor, facets=facets, limited="limit" in single,
        facet_size=_int(single, "facet_size", FACET_DEFAULT, 1, FACET_MAX), format=fmt)


def _after_cursor(req: RowsRequest) -> Where:
    if not req.cursor:
        return req.where
    after = keyset(req.cursor, req.sort, req.keys)
    return Where(f"{req.where.sql} AND {after.sql}", {**req.where.params, **after.params})


def rows_sql(req: RowsRequest, table: str) -> tuple[str, dict[str, Any]]:
    """The page: its fields plus hidden sort-key columns __k0.. for the next cursor."""
    cond = _after_cursor(req)
    cols = [field_sql(f) for f in req.fields] + [f"{k.sql} AS __k{i}" for i, k in enumerate(req.keys)]
    order = order_by(req.keys)
    page = f"WHERE {cond.sql} ORDER BY {order} LIMIT {{lim:UInt64}} OFFSET {{off:UInt64}}"
    if req.offset and req.keys[0].sql == ident(schema.KEY):
        # In the table's own order, keys first: the rows before the offset are read as two key columns,
        # and the page's rows by the primary key (row 157,000 at 500 MB: 356 -> 33 ms). Other orders
        # gain nothing so: their cost is the sort itself.
        key = f"({ident(schema.KEY)}, {schema.ROW_COL})"
        sql = (f"SELECT {', '.join(cols)} FROM {table} WHERE {key} IN (SELECT {key} FROM {table} {page}) "
               f"ORDER BY {order}")
    else:
        sql = f"SELECT {', '.join(cols)} FROM {table} {page}"
    return sql, {**cond.params, "lim": req.limit, "off": req.offset}


def _source_form(fmt: str) -> bool:
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


def export_sql(req: RowsRequest, table: str, limit: int) -> tuple[str, dict[str, Any]]:
    """Every requested row from `offset`, at most `limit`; CSV columns in the source file's form."""
    cond = _after_cursor(req)
    if _source_form(req.format):
        cols = [f"{csv_expr(f)} AS {ident(f)}" for f in req.fields]
    else:
        cols = [field_sql(f) for f in req.fields]
    sql = (f"SELECT {', '.join(cols)} FROM {table} WHERE {cond.sql} ORDER BY {order_by(req.keys)} "
           "LIMIT {lim:UInt64} OFFSET {off:UInt64}")
    return sql, {**cond.params, "lim": limit, "off": req.offset}


def count_sql(cond: Where, table: str) -> tuple[str, dict[str, Any]]:
    return f"SELECT count() FROM {table} WHERE {cond.sql}", cond.params


def facet_sql(req: RowsRequest, name: str, table: str) -> tuple[str, dict[str, Any]]:
    sql = _value_counts(name, table, req.where.sql) + " LIMIT {fsize:UInt64}"
    return sql, {**req.where.params, "fsize": req.facet_size}


# --- aggregates ------------------------------------------------------------------------------------


@dataclass
class AggMetric:
    alias: str  # output name: count, avg_price, share_rating_gte, ...
    sql: str  # over the columns of the inner, per-game query
    inner: str | None = None  # a per-game expression the inner query adds (share conditions)
    params: dict[str, Any] = field(default_factory=dict)
    window: bool = False  # computed over the grouped rows in release_year order (growth)


@dataclass
class AggRequest:
    where: Where
    group_by: list[str]
    metrics: list[AggMetric]
    having: Where
    order: str
    limit: int
    offset: int
    format: str
    limited: bool = False  # the client gave a limit (an export then stops there, not at the cap)
    top: int | None = None  # keep only the first key's top N values (by games), e.g. for trends
    # Keep only these values of the first key: chosen (series=), or with top=N its N values, found
    # first (query/run.py) and listed in rank order.
    series: list[str] | None = None


MAX_TOP = 100
_SHARE = re.compile(r"^share\((.*)\)$", re.S)


def _metric_specs(raw: str) -> list[str]:
    """Split the metrics list on commas outside parentheses (a share condition may hold commas)."""
    specs, depth, current = [], 0, ""
    for ch in raw:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth <= 0:
            specs.append(current)
            current, depth = "", 0
        else:
            current += ch
    return [x.strip() for x in [*specs, current] if x.strip()]


# How a metric names its output column. /schema publishes these templates, so the page reads the rule
# instead of copying it: sum:price -> sum_price, share(rating__gte=0.8) -> share_rating_gte.
ALIAS_WITH_COLUMN = "{name}_{column}"
SHARE_ALIAS = "share_{column}_{operator}"
SHARE_ALIAS_NO_OPERATOR = "is"  # share(price=0) -> share_price_is


def alias_template(metric: schema.Metric) -> str:
    if metric.families:
        return ALIAS_WITH_COLUMN
    return metric.name


def _metric(spec: str, index: int) -> AggMetric:
    share = _SHARE.match(spec)
    if share:
        return _share(spec, share.group(1), index)
    fn, _, col_name = spec.partition(":")
    metric = schema.METRICS.get(fn)
    allowed = [f"{m.name}:<column>" if m.families else m.name for m in schema.METRICS.values()]
    allowed.append("share(<column>[__op]=<value>)")
    if metric is None:
        raise invalid("metrics", spec, f"Unknown metric {fn!r}.", allowed, "unknown_metric")
    if not metric.families:
        if col_name:
            raise invalid("metrics", spec, f"{fn} takes no column.", allowed, "unknown_metric")
        return AggMetric(fn, metric.sql, window=fn == "growth")
    col = schema.BY_NAME.get(col_name)
    if col is None or col.kind.filter not in metric.families:
        fits = [c.name for c in schema.COLUMNS if c.kind.filter in metric.families]
        raise invalid("metrics", spec, f"{fn} needs one of these columns: {', '.join(fits)}.",
                      [f"{fn}:{c}" for c in fits], "unknown_metric")
    return AggMetric(ALIAS_WITH_COLUMN.format(name=fn, column=col_name), metric.sql.format(c=filters.column_sql(col)))


def _share(spec: str, condition: str, index: int) -> AggMetric:
    """share(<filter>): the share (0 to 1) of the group's games meeting one filter, written exactly as
    a filter parameter: share(rating__gte=0.8), share(genres__has=Indie), share(price=0)."""
    param, sep, value = condition.partition("=")
    if not sep or not param.strip():
        raise invalid("metrics", spec, "share(...) takes one filter written as a query parameter, e.g. "
                      "share(rating__gte=0.8) or share(tags__has=Roguelike).", code="invalid_metric")
    try:
        cond = filters.parse(param.strip(), value, f"s{index}")
    except GameLensError as exc:
        raise invalid("metrics", spec, f"In {spec}: {exc.message}", exc.allowed, "invalid_metric") from None
    name, _, op = param.strip().partition("__")
    alias = SHARE_ALIAS.format(column=name, operator=op or SHARE_ALIAS_NO_OPERATOR)
    # An empty value never meets a condition (as in filters): NULL counts as 0, not as missing.
    return AggMetric(alias, f"round(avg(__s{index}), 4)", f"ifNull(toUInt8({cond.sql}), 0) AS __s{index}",
                     cond.params)


def _group_expr(name: str) -> str:
    """A group key that is no list: a bucket or a column (lists are joined: see _elements)."""
    if name in schema.BUCKETS:
        return schema.BUCKETS[name].expr
    return filters.column_sql(schema.BY_NAME[name])


def _is_list(name: str) -> bool:
    return name in schema.BY_NAME and schema.BY_NAME[name].kind.filter == "list"


def _join_elements(name: str, index: int, alias: str = "") -> tuple[str, str]:
    """`ARRAY JOIN` of a list column's elements, and the condition that keeps each distinct one once
    per game (a game is never counted twice for a repeated tag). Without `alias` the column itself
    becomes its element. `arrayEnumerateUniq` keeps the elements LowCardinality, where
    `arrayJoin(arrayDistinct(...))` made them strings: half the time of a group by tag at 500 MB."""
    col = ident(name)
    joined = f"{col} AS {alias}" if alias else col
    return f" ARRAY JOIN {joined}, arrayEnumerateUniq({col}) AS __u{index}", f"__u{index} = 1"


def _elements(name: str, table: str, cond: str) -> str:
    """FROM ... WHERE: each distinct element of list `name` (as `__e`) of the games meeting `cond`
    (the alias leaves `name` the whole list in `cond`)."""
    join, once = _join_elements(name, 0, "__e")
    return f"{table}{join} WHERE ({cond}) AND {once}"


def _value_counts(name: str, table: str, cond: str, count: str = "count", having: str = "1") -> str:
    """`value` and its number of games (named `count`) of a groupable column over the games meeting
    `cond`, largest first."""
    if _is_list(name):
        source = f"SELECT __e AS value, count() AS {count} FROM {_elements(name, table, cond)}"
    else:
        source = f"SELECT {_group_expr(name)} AS value, count() AS {count} FROM {table} WHERE {cond}"
    return f"{source} GROUP BY value HAVING {having} ORDER BY {count} DESC, value ASC"


_HAVING = re.compile(r"^([a-z0-9_]+)__(gt|gte|lt|lte|exact|ne):(.+)$")
_HAVING_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "exact": "=", "ne": "!="}


def _having(specs: list[str], metrics: list[AggMetric]) -> Where:
    names = [m.alias for m in metrics]
    conds, params = [], {}
    for i, spec in enumerate(s for raw in specs for s in _csv_list(raw)):
        m = _HAVING.match(spec)
        if not m or m.group(1) not in names:
            raise invalid("having", spec, "having is metric__op:number, the metric among those requested "
                          "(e.g. count__gte:10).", [f"{n}__{op}:<number>" for n in names for op in _HAVING_SQL])
        try:
            value = float(m.group(3))
        except ValueError:
            raise invalid("having", spec, f"{m.group(3)!r} is not a number.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise invalid("having", spec, "having needs a finite number.")
        conds.append(f"{ident(m.group(1))} {_HAVING_SQL[m.group(2)]} {{h{i}:Float64}}")
        params[f"h{i}"] = value
    return Where(" AND ".join(conds) or "1", params)


def _unique_aliases(metrics: list[AggMetric]) -> list[AggMetric]:
    seen: dict[str, int] = {}
    for m in metrics:
        seen[m.alias] = seen.get(m.alias, 0) + 1
        if seen[m.alias] > 1:
            m.alias = f"{m.alias}_{seen[m.alias]}"
    return metrics


def parse_aggregate(items: list[tuple[str, str]], accept: str | None = None, max_limit: int = MAX_LIMIT
                    ) -> AggRequest:
    single = _single(items, AGG_PARAMS)
    group_by = list(dict.fromkeys(_csv_list(single.get("group_by", ""))))
    for g in group_by:
        if g not in GROUPABLE:
            raise invalid("group_by", g, f"Cannot group by {g!r}.", GROUPABLE, "unknown_group")
    lists = [g for g in group_by if g in schema.BY_NAME and schema.BY_NAME[g].kind.filter == "list"]
    if len(lists) > MAX_LIST_GROUPS:
        raise invalid("group_by", single["group_by"], f"Group by at most {MAX_LIST_GROUPS} list columns at once "
                      f"(each multiplies the rows); got {', '.join(lists)}.", code="too_many_list_groups")
    specs = list(dict.fromkeys(_metric_specs(single.get("metrics", "count"))))
    if not specs:
        raise invalid("metrics", single.get("metrics"), "Give at least one metric.")
    metrics = _unique_aliases([_metric(spec, i) for i, spec in enumerate(specs)])
    top = _int(single, "top", 0, 1, MAX_TOP) if "top" in single else None
    if top and not group_by:
        raise invalid("top", single["top"], "top keeps the top N values of the first group_by key: give group_by.")
    series = _series(single.get("series"), group_by, top)
    if any(m.window for m in metrics) and "release_year" not in group_by:
        raise invalid("metrics", single.get("metrics"), "growth compares each release year with the one before: "
                      "add release_year to group_by.", code="invalid_metric")
    having = _having([v for k, v in items if k == "having"], metrics)
    default_limit = MAX_LIMIT if top else DEFAULT_LIMIT  # a trend: every point of its N series
    return AggRequest(
        where=where(items, AGG_PARAMS), group_by=group_by, metrics=metrics, having=having,
        order=_agg_order(single.get("sort"), group_by, metrics, bool(top)),
        limit=_int(single, "limit", default_limit, 1, max_limit), offset=_int(single, "offset", 0, 0, MAX_OFFSET),
        format=formats.chosen(single.get("format"), accept), limited="limit" in single, top=top, series=series)


def _series(raw: str | None, group_by: list[str], top: int | None) -> list[str] | None:
    """series=Action,Strategy: keep only these values of the first group key (a text or list column)."""
    if raw is None:
        return None
    first = schema.BY_NAME.get(group_by[0]) if group_by else None
    if first is None or first.kind.filter not in ("string", "list"):
        raise invalid("series", raw, "series chooses values of the first group_by key, which must be a text or "
                      "list column (e.g. group_by=genres,release_year&series=Action,Strategy).")
    if top:
        raise invalid("series", raw, "Give series (the values you choose) or top (the N largest), not both.")
    values = list(dict.fromkeys(_csv_list(raw)))
    if not values or len(values) > MAX_SERIES:
        raise invalid("series", raw, f"series is 1 to {MAX_SERIES} comma-separated values.")
    return values


def _agg_order(raw: str | None, group_by: list[str], metrics: list[AggMetric], top: bool) -> str:
    names = [m.alias for m in metrics] + group_by
    parts = []
    if raw:
        items = _csv_list(raw)
    elif top:  # series in rank order, then each series in its keys' natural order (years in time order)
        items = []
        parts.append(f"indexOf({{series:Array(String)}}, {_as_text(group_by[0])}) ASC")
        parts += [f"min({schema.BUCKETS[g].order}) ASC" for g in group_by[1:] if g in schema.BUCKETS]
    else:
        items = ["-count"] if "count" in names else []
    for item in items:
        desc, name = item.startswith("-"), item.lstrip("-+")
        if name not in names:
            raise invalid("sort", raw, f"Cannot sort by {name!r}: sort by a requested metric or group.", names,
                          "unknown_sort")
        expr = f"min({schema.BUCKETS[name].order})" if name in schema.BUCKETS else ident(name)
        parts.append(f"{expr} {'DESC' if desc else 'ASC'}")
    parts += [f"{ident(g)} ASC" for g in group_by]  # a total order: stable pages
    return ", ".join(parts) or "1"


def _grouped(req: AggRequest, table: str) -> tuple[str, dict[str, Any]]:
    # Filters run on whole games first (inner query); then list columns are joined into elements.
    keys = [ident(g) if _is_list(g) else f"{_group_expr(g)} AS {ident(g)}" for g in req.group_by]
    mets = [f"{m.sql} AS {ident(m.alias)}" for m in req.metrics]
    group = f" GROUP BY {', '.join(ident(g) for g in req.group_by)}" if req.group_by else ""
    inner = ", ".join(["*", *(m.inner for m in req.metrics if m.inner)])
    params = {**req.where.params, **req.having.params}
    for m in req.metrics:
        params.update(m.params)
    joins, conds = "", []
    for i, g in enumerate(g for g in req.group_by if _is_list(g)):
        join, once = _join_elements(g, i)
        joins += join
        conds.append(once)
    # Before grouping: only the chosen values of the first key (series=, or top=N's) are grouped at all.
    if req.series is not None:
        conds.append(f"{_as_text(req.group_by[0])} IN {{series:Array(String)}}")
        params["series"] = req.series
    elif req.top:
        raise ValueError("top=N is grouped once its values are known (query/run.py sets series)")
    chosen = f" WHERE {' AND '.join(conds)}" if conds else ""
    window = ""
    if any(m.window for m in req.metrics):  # each series' previous year (growth)
        others = [ident(g) for g in req.group_by if g != "release_year"]
        partition = f"PARTITION BY {', '.join(others)} " if others else ""
        window = f" WINDOW w AS ({partition}ORDER BY `release_year` ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
    sql = (f"SELECT {', '.join(keys + mets)} FROM (SELECT {inner} FROM {table} WHERE {req.where.sql})"
           f"{joins}{chosen}{group} HAVING {req.having.sql}{window}")
    return sql, params


def _as_text(name: str) -> str:
    """A group key as text, as chosen series are given (a year's series are '2019', '2020')."""
    col = schema.BY_NAME.get(name)
    if col is not None and col.kind.filter in ("string", "list"):
        return ident(name)
    return f"toString({ident(name)})"


def top_sql(req: AggRequest, table: str) -> tuple[str, dict[str, Any]]:
    """The first key's top N values (as text), most games first, under the request's filters. Found
    before the groups, which then cover those N values only: a set of constants, not a scalar
    subquery the grouping statement waits on (160 -> 72 ms grouping the top-8 tags by year at 500 MB)."""
    # No NULL among them: NULL is not a series (groupArray would drop it, and N series would be N - 1).
    ranked = _value_counts(req.group_by[0], table, req.where.sql, having="value IS NOT NULL")
    return (f"SELECT groupArray(toString(value)) FROM ({ranked} LIMIT {{top:UInt64}})",
            {**req.where.params, "top": req.top})


def value_counts_sql(name: str, table: str, limit: int) -> str:
    """Every value of `name` over the whole version with its number of games, most first (at most `limit`)."""
    return _value_counts(name, table, "1") + f" LIMIT {int(limit)}"


def aggregate_sql(req: AggRequest, table: str, limit: int | None = None) -> tuple[str, dict[str, Any]]:
    sql, params = _grouped(req, table)
    sql += f" ORDER BY {req.order} LIMIT {{lim:UInt64}} OFFSET {{off:UInt64}}"
    return sql, {**params, "lim": req.limit if limit is None else limit, "off": req.offset}


def aggregate_count_sql(req: AggRequest, table: str) -> tuple[str, dict[str, Any]]:
    sql, params = _grouped(req, table)
    return f"SELECT count() FROM ({sql})", params


def aggregate_export_sql(req: AggRequest, table: str, limit: int) -> tuple[str, dict[str, Any]]:
    """The groups from `offset`, at most `limit`; in CSV, text group values are neutralised."""
    sql, params = aggregate_sql(req, table, limit)
    if not _source_form(req.format):
        return sql, params
    outer = []
    for g in req.group_by:
        col = schema.BY_NAME.get(g)
        text = col is not None and col.kind.filter in ("string", "list")  # a group's value is text (not a date)
        outer.append(f"{schema.NEUTRALISE.format(e=ident(g))} AS {ident(g)}" if text else ident(g))
    outer += [ident(m.alias) for m in req.metrics]
    return f"SELECT {', '.join(outer)} FROM ({sql})", params


# --- the segment summary -----------------------------------------------------------------------

SUMMARY_TOP = 10
# The summary's lists of a list column's values by games: for the whole version they are its ranking,
# which query/run.py reads once per version instead of running these statements.
SUMMARY_RANKED = {"top_tags": "tags", "top_genres": "genres"}


def _col(name: str) -> str:
    return filters.column_sql(schema.BY_NAME[name])


def summary_sql(cond: Where, table: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The statements of GET /games/summary, each over the matching games (run side by side)."""
    median = schema.METRICS["median"].sql
    p90 = schema.METRICS["p90"].sql
    band = schema.BUCKETS["price_band"]
    t, w, p = table, cond.sql, cond.params
    top = {"n": SUMMARY_TOP}
    return {
        "overview": (f"SELECT count() AS games, round(countIf({_col('price')} = 0) / count(), 4) AS share_free, "
                     f"{median.format(c=_col('price'))} AS median_price, {p90.format(c=_col('price'))} AS p90_price, "
                     f"{median.format(c=_col('reviews'))} AS median_reviews, "
                     f"round(avg({_col('rating')}), 4) AS avg_rating, "
                     f"round(sum({_col('est_revenue')}), 2) AS est_revenue FROM {t} WHERE {w}", p),
        "price_bands": (f"SELECT {band.expr} AS band, count() AS games FROM {t} WHERE {w} "
                        f"GROUP BY band ORDER BY min({band.order})", p),
        **{part: (_value_counts(name, t, w, "games") + " LIMIT {n:UInt64}", {**p, **top})
           for part, name in SUMMARY_RANKED.items()},
        "top_rated": (f"SELECT app_id, name, rating, reviews FROM {t} WHERE ({w}) AND rating IS NOT NULL "
                      "ORDER BY rating DESC, reviews DESC, app_id ASC LIMIT {n:UInt64}", {**p, **top}),
        "most_reviewed": (f"SELECT app_id, name, reviews, rating FROM {t} WHERE {w} "
                          "ORDER BY reviews DESC, app_id ASC LIMIT {n:UInt64}", {**p, **top}),
    }
