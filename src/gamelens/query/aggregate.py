"""GET /api/v1/games/aggregate: the matching games grouped (by columns, list elements and buckets)
and summarised by metrics (count, sums, averages, quantiles, shares, growth), with top=N series for
trends; or all groups exported.

Filters run on whole games first (an inner query); then each list column in the grouping is joined
into its elements, each distinct element once per game.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .. import schema
from ..engine import ident
from ..errors import GameLensError, invalid
from . import answers, filters, formats, openapi
from .build import (
    DEFAULT_LIMIT,
    GROUPABLE,
    MAX_LIMIT,
    MAX_OFFSET,
    Where,
    csv_list,
    group_expr,
    int_param,
    is_list,
    join_elements,
    page_url,
    single_params,
    sort_item,
    source_form,
    value_counts,
    where,
)
from .endpoint import Endpoint, Items

if TYPE_CHECKING:
    from ..ingest.versions import Snapshot
    from .run import Explorer

# Each list column in a GROUP BY multiplies the rows (one arrayJoin each): at most this many.
MAX_LIST_GROUPS = 2


PARAMS = {"group_by", "metrics", "having", "sort", "limit", "offset", "format", "top", "series"}


MAX_SERIES = 50


MAX_TOP = 100


@dataclass
class AggMetric:
    alias: str  # output name: count, avg_price, share_rating_gte, ...
    sql: str  # over the columns of the inner, per-game query
    inner: str | None = None  # a per-game expression the inner query adds (share conditions)
    params: dict[str, Any] = field(default_factory=dict)
    window: bool = False  # computed over the grouped rows in release_year order (growth)
    dated: bool = False  # its values are dates (min:/max: of a date column): having compares dates


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
    # first (Aggregate.prepare) and listed in rank order.
    series: list[str] | None = None
    # List columns no game of the version read repeats an element of (set with the version's
    # facts before the SQL is built: Aggregate.prepare; see build.join_elements).
    unrepeated: frozenset[str] = frozenset()


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


def _metric(spec: str, index: int, grouped: frozenset[str] = frozenset()) -> AggMetric:
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
    # A list column grouped by holds one element per row (build.join_elements): uniq:tags by tags is 1.
    sql = metric.over(col, filters.column_sql(col), as_element=col_name in grouped)
    # A metric without a unit of its own (min, max) gives values of its column's type.
    dated = col.kind.filter == "date" and not metric.unit
    return AggMetric(ALIAS_WITH_COLUMN.format(name=fn, column=col_name), sql, dated=dated)


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
    share = f"round(avgOrNull(__s{index}), {schema.DECIMALS})"  # of no games: none (schema._MEDIAN)
    return AggMetric(alias, share, f"ifNull(toUInt8({cond.sql}), 0) AS __s{index}", cond.params)


_HAVING = re.compile(r"^([a-z0-9_]+)__(gt|gte|lt|lte|exact|ne):(.+)$")


_HAVING_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "exact": "=", "ne": "!="}


def _having(specs: list[str], metrics: list[AggMetric]) -> Where:
    # growth is computed over the groups having kept (a window, after HAVING): it cannot choose them.
    kept = {m.alias: m for m in metrics if not m.window}
    windows = {m.alias for m in metrics if m.window}
    allowed = [f"{n}__{op}:<{'date' if m.dated else 'number'}>" for n, m in kept.items() for op in _HAVING_SQL]
    conds, params = [], {}
    for i, spec in enumerate(s for raw in specs for s in csv_list(raw)):
        m = _HAVING.match(spec)
        if m and m.group(1) in windows:
            raise invalid("having", spec, "growth compares each kept group with the year before, so it cannot "
                          "choose the groups; sort by it instead (sort=-growth).", allowed)
        if not m or m.group(1) not in kept:
            raise invalid("having", spec, "having is metric__op:value, the metric among those requested "
                          "(e.g. count__gte:10).", allowed)
        value, ch_type = _having_value(spec, m.group(3), kept[m.group(1)])
        conds.append(f"{ident(m.group(1))} {_HAVING_SQL[m.group(2)]} {{h{i}:{ch_type}}}")
        params[f"h{i}"] = value
    return Where(" AND ".join(conds) or "1", params)


def _having_value(spec: str, text: str, metric: AggMetric) -> tuple[Any, str]:
    """The value a having compares its metric with, and its parameter's type: a date for a metric of
    dates (a number there was a type error in the engine: a 503), else a finite number."""
    if metric.dated:
        try:
            return filters.parse_date(text), "Date32"
        except ValueError:
            # not parse_date's own words: its `Oct 21, 2008` holds a comma, which ends a having here
            raise invalid("having", spec, f"{text!r} is not a date: YYYY-MM-DD or 'May 2020'.") from None
    try:
        value = float(text)
    except ValueError:
        raise invalid("having", spec, f"{text!r} is not a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise invalid("having", spec, "having needs a finite number.")
    return value, "Float64"


def _unique_aliases(metrics: list[AggMetric]) -> list[AggMetric]:
    seen: dict[str, int] = {}
    for m in metrics:
        seen[m.alias] = seen.get(m.alias, 0) + 1
        if seen[m.alias] > 1:
            m.alias = f"{m.alias}_{seen[m.alias]}"
    return metrics


def parse(items: list[tuple[str, str]], accept: str | None = None, max_limit: int = MAX_LIMIT
                    ) -> AggRequest:
    single = single_params(items, PARAMS)
    group_by = list(dict.fromkeys(csv_list(single.get("group_by", ""))))
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
    metrics = _unique_aliases([_metric(spec, i, frozenset(group_by)) for i, spec in enumerate(specs)])
    top = int_param(single, "top", 0, 1, MAX_TOP) if "top" in single else None
    if top and not group_by:
        raise invalid("top", single["top"], "top keeps the top N values of the first group_by key: give group_by.")
    series = _series(single.get("series"), group_by, top)
    if any(m.window for m in metrics) and "release_year" not in group_by:
        raise invalid("metrics", single.get("metrics"), "growth compares each release year with the one before: "
                      "add release_year to group_by.", code="invalid_metric")
    having = _having([v for k, v in items if k == "having"], metrics)
    trend = bool(top) or series is not None  # series=, like top=N: every point of its series, in their order
    default_limit = MAX_LIMIT if trend else DEFAULT_LIMIT
    return AggRequest(
        where=where(items, PARAMS), group_by=group_by, metrics=metrics, having=having,
        order=_agg_order(single.get("sort"), group_by, metrics, bool(top), series is not None),
        limit=int_param(single, "limit", default_limit, 1, max_limit),
        offset=int_param(single, "offset", 0, 0, MAX_OFFSET),
        format=formats.chosen(single.get("format"), accept), limited="limit" in single, top=top, series=series)


def _series(raw: str | None, group_by: list[str], top: int | None) -> list[str] | None:
    """series=Action,Strategy: keep only these values of the first group key (a text or list column),
    in any case: each group keeps the data's own spelling."""
    if raw is None:
        return None
    first = schema.BY_NAME.get(group_by[0]) if group_by else None
    if first is None or first.kind.filter not in ("string", "list"):
        raise invalid("series", raw, "series chooses values of the first group_by key, which must be a text or "
                      "list column (e.g. group_by=genres,release_year&series=Action,Strategy).")
    if top:
        raise invalid("series", raw, "Give series (the values you choose) or top (the N largest), not both.")
    try:
        values = _unique_in_any_case([v for v in filters.value_list(raw) if v])
    except ValueError as exc:
        raise invalid("series", raw, f"series is {exc.args[0]}.") from None
    if not values or len(values) > MAX_SERIES:
        raise invalid("series", raw, f"series is 1 to {MAX_SERIES} comma-separated values.")
    return values


def _unique_in_any_case(values: list[str]) -> list[str]:
    """Each value once, as first written: series match in any case, so `indie,Indie` is one series.
    In the engine's case (lowerUTF8, as _grouped compares them): a casefold made `STRASSE` one with
    `Straße`, two series to the engine (helper-60)."""
    seen: set[str] = set()
    unique = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            unique.append(value)
    return unique


def _agg_order(raw: str | None, group_by: list[str], metrics: list[AggMetric], top: bool, chosen: bool = False
               ) -> str:
    names = [m.alias for m in metrics] + group_by
    parts = []
    if raw:
        items = csv_list(raw)
    elif top or chosen:  # series in rank (or chosen) order, then each in its keys' natural order (years in time)
        items = []
        key = _as_text(group_by[0])
        if chosen:  # matched in any case (_grouped)
            parts.append(f"indexOf(arrayMap(x -> lowerUTF8(x), {{series:Array(String)}}), lowerUTF8({key})) ASC")
        else:
            parts.append(f"indexOf({{series:Array(String)}}, {key}) ASC")
        parts += [f"min({schema.BUCKETS[g].order}) ASC" for g in group_by[1:] if g in schema.BUCKETS]
    else:
        items = ["-count"] if "count" in names else []
    for item in items:
        desc, name = sort_item(item)
        if name not in names:
            raise invalid("sort", raw, f"Cannot sort by {name!r}: sort by a requested metric or group.", names,
                          "unknown_sort")
        expr = f"min({schema.BUCKETS[name].order})" if name in schema.BUCKETS else ident(name)
        parts.append(f"{expr} {'DESC' if desc else 'ASC'}")
    parts += [f"{ident(g)} ASC" for g in group_by]  # a total order: stable pages
    return ", ".join(parts) or "1"


def _grouped(req: AggRequest, table: str) -> tuple[str, dict[str, Any]]:
    # Filters run on whole games first (inner query); then list columns are joined into elements.
    keys = [ident(g) if is_list(g) else f"{group_expr(g)} AS {ident(g)}" for g in req.group_by]
    mets = [f"{m.sql} AS {ident(m.alias)}" for m in req.metrics]
    group = f" GROUP BY {', '.join(ident(g) for g in req.group_by)}" if req.group_by else ""
    inner = ", ".join(["*", *(m.inner for m in req.metrics if m.inner)])
    params = {**req.where.params, **req.having.params}
    for m in req.metrics:
        params.update(m.params)
    joins, conds = "", []
    for i, g in enumerate(g for g in req.group_by if is_list(g)):
        join, once = join_elements(g, i, repeats=g not in req.unrepeated)
        joins += join
        conds.append(once)
    # Before grouping: only the chosen values of the first key (series=, or top=N's) are grouped at all.
    if req.top and req.series is not None:  # the top N's values, read from the data as they are written
        conds.append(f"{_as_text(req.group_by[0])} IN {{series:Array(String)}}")
        params["series"] = req.series
    elif req.series is not None:  # chosen values match in any case, as text filters do (series=indie)
        chosen = "arrayMap(x -> lowerUTF8(x), {series:Array(String)})"
        conds.append(f"lowerUTF8({_as_text(req.group_by[0])}) IN {chosen}")
        params["series"] = req.series
    elif req.top:
        raise ValueError("top=N is grouped once its values are known (Aggregate.prepare sets series)")
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
    first = req.group_by[0]
    ranked = value_counts(first, table, req.where.sql, having="value IS NOT NULL", repeats=first not in req.unrepeated)
    return (f"SELECT groupArray(toString(value)) FROM ({ranked} LIMIT {{top:UInt64}})",
            {**req.where.params, "top": req.top})


def page_sql(req: AggRequest, table: str, limit: int | None = None) -> tuple[str, dict[str, Any]]:
    sql, params = _grouped(req, table)
    sql += f" ORDER BY {req.order} LIMIT {{lim:UInt64}} OFFSET {{off:UInt64}}"
    return sql, {**params, "lim": req.limit if limit is None else limit, "off": req.offset}


def groups_count_sql(req: AggRequest, table: str) -> tuple[str, dict[str, Any]]:
    sql, params = _grouped(req, table)
    return f"SELECT count() FROM ({sql})", params


def groups_export_sql(req: AggRequest, table: str, limit: int) -> tuple[str, dict[str, Any]]:
    """The groups from `offset`, at most `limit`; in CSV, text group values are neutralised."""
    sql, params = page_sql(req, table, limit)
    if not source_form(req.format):
        return sql, params
    outer = []
    for g in req.group_by:
        col = schema.BY_NAME.get(g)
        text = col is not None and col.kind.filter in ("string", "list")  # a group's value is text (not a date)
        outer.append(f"{schema.NEUTRALISE.format(e=ident(g))} AS {ident(g)}" if text else ident(g))
    outer += [ident(m.alias) for m in req.metrics]
    return f"SELECT {', '.join(outer)} FROM ({sql})", params



OPENAPI_PARAMS = [
    openapi.param("group_by", f"Comma-separated: {', '.join(GROUPABLE)}. List columns count a game once per "
                  "element.", "genres,release_year"),
    openapi.param("metrics", "Comma-separated: count; growth (the change in games against the year before; needs "
                  "release_year in group_by); fn:column with fn one of "
                  f"{', '.join(m for m in schema.METRICS if m not in ('count', 'growth'))} (output name fn_column); "
                  "or share(<filter>), the share of the group's games meeting one filter written as a query "
                  "parameter (output name share_<column>_<op>).", "count,avg:price,share(rating__gte=0.8)"),
    openapi.param("top", f"1 to {MAX_TOP}: keep only the first group_by key's top N values by number of games "
                  "(e.g. group_by=tags,release_year&top=8: a trend of 8 series); rows come in rank order.", "8",
                  "integer"),
    openapi.param("series", f"Up to {MAX_SERIES} comma-separated values of the first group_by key (a text or "
                  "list column) to keep, in any case: chosen series, e.g. "
                  "group_by=genres,release_year&series=Action,Strategy.",
                  "Action,Strategy"),
    openapi.param("having", "Repeatable: metric__op:value, op one of gt, gte, lt, lte, exact, ne; the value a "
                  "number, or a date (YYYY-MM-DD) for min: and max: of a date.", "count__gte:10"),
    openapi.param("sort", "Comma-separated metric or group names, - for descending (default -count).", "-count"),
    openapi.param("limit", f"Groups per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}; with top or series "
                  f"{MAX_LIMIT}, every point of the series).", "50", "integer"),
    openapi.param("offset", "Groups to skip.", "0", "integer"),
    openapi.FORMAT, openapi.VERSION, *openapi.FILTERS,
]


class Aggregate(Endpoint):
    name, path, model = "aggregate", "/games/aggregate", answers.Aggregate
    openapi_params = OPENAPI_PARAMS
    warm = [[("group_by", "genres"), ("metrics", "count"), ("limit", "20"), ("sort", "-count")],
            [("group_by", "release_year"), ("sort", "release_year"), ("limit", "500")],
            [("group_by", "genres,release_year"), ("metrics", "count"), ("limit", "1000"), ("top", "8")]]
    exports, export_name = True, "games-aggregate"

    def parse(self, items: Items, accept: str | None = None, max_limit: int = MAX_LIMIT) -> AggRequest:
        return parse(items, accept, max_limit)

    def answer(self, reader: Explorer, req: AggRequest, items: Items, path: str, snap: Snapshot) -> dict:
        spent: list[float] = []
        self.prepare(reader, req, snap, spent)
        res = reader.select(snap, *page_sql(req, snap.table), {"exact_rows_before_limit": 1}, spent)
        total = res.stats.get("rows_before_limit")
        total = len(res.rows) + req.offset if total is None else total
        more = req.offset + len(res.rows) < total
        answer = {"rows": res.dicts(), "total_groups": total, "group_by": req.group_by,
                  "metrics": [m.alias for m in req.metrics], "limit": req.limit, "offset": req.offset,
                  "next": page_url(path, items, offset=req.offset + req.limit) if more else None,
                  "version": snap.upload_id}
        if req.top or req.series is not None:  # the series, in the order the rows give them (rank or chosen
            # order unless sorted otherwise); a chosen value without games is not among them
            answer["series"] = self._series(reader, req, snap, answer, spent)
        answer["engine_ms"] = round(sum(spent), 2)
        return answer

    @staticmethod
    def _series(reader: Explorer, req: AggRequest, snap: Snapshot, answer: dict, spent: list) -> list:
        """Every page names all the series, in the order of the rows: from the page itself when it
        holds them all, else from every group in that order (one ORDER BY: a sort by growth is a
        window, which a window's own order cannot hold). A trend has few groups: its top N or chosen
        series times its second key's values."""
        rows = answer["rows"]
        if req.offset > 0 or answer["next"] is not None:
            every = replace(req, offset=0)
            rows = reader.select(snap, *page_sql(every, snap.table, answer["total_groups"]), spent=spent).dicts()
        return list(dict.fromkeys(row[req.group_by[0]] for row in rows))

    @staticmethod
    def prepare(reader: Explorer, req: AggRequest, snap: Snapshot, spent: list) -> None:
        """What the statements need to know of the version read: its list columns that repeat no
        element; with top=N, the first key's N values with the most games, which become the series
        grouped, in rank order (for the whole version, from its ranking: query/run.py)."""
        req.unrepeated = frozenset(g for g in req.group_by if is_list(g) and not reader.repeats(snap, g))
        if not req.top:
            return
        first = req.group_by[0]
        ranking = reader.whole_ranking(snap, first, req.where)
        if ranking is None and reader.bitmapped(snap, [first]):
            ranking = reader.element_counts(snap, [first], req.where, req.top, spent)[first]
        if ranking is None:
            req.series = reader.select(snap, *top_sql(req, snap.table), spent=spent).scalar()
        else:
            req.series = [value for value, _ in ranking[:req.top]]

    def prepare_export(self, reader: Explorer, req: AggRequest, snap: Snapshot) -> None:
        self.prepare(reader, req, snap, [])

    def export_count(self, req: AggRequest, table: str) -> tuple[str, dict[str, Any]]:
        return groups_count_sql(req, table)

    def export_sql(self, req: AggRequest, table: str, limit: int) -> tuple[str, dict[str, Any]]:
        return groups_export_sql(req, table, limit)


ENDPOINT = Aggregate()
