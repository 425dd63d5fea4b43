"""GET /api/v1/games: the rows matching the filters, sorted and paginated (offset or keyset cursor),
with facets; or all of them exported.

Row order is always total: the requested keys, then app_id, then the source row number, so pages
never overlap or skip; the keyset cursor carries the last row's values of exactly those keys
(build.sort_keys, build.keyset).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .. import schema
from ..engine import ident
from ..errors import invalid
from ..ingest import physical
from . import answers, formats, openapi
from .build import (
    DEFAULT_LIMIT,
    GROUPABLE,
    MAX_LIMIT,
    MAX_OFFSET,
    SORTABLE,
    Key,
    Where,
    count_sql,
    csv_expr,
    csv_list,
    encode_cursor,
    field_sql,
    int_param,
    keyset,
    order_by,
    page_url,
    ranked_keys,
    single_params,
    sort_keys,
    source_form,
    value_counts,
    where,
)
from .endpoint import Endpoint, Items

if TYPE_CHECKING:
    from ..ingest.versions import Snapshot
    from .run import Explorer

FACET_DEFAULT, FACET_MAX = 10, 100

# A page reads blocks of 4 granules, not the engine's 64: a page that stops at its LIMIT (filtered, in
# the table's order) stops after the blocks that hold its rows instead of reading ~65k rows of every
# column first: at 500 MB `name=bowl` 21.2 -> 16.2 ms on the engine, `price=19.99` 15.4 -> 13.3 (half of it,
# the machine sped up between the runs) [`python bench/query.py 500`, filter lines; docs/measured.md,
# eighth pass].
PAGE_SETTINGS = {"max_block_size": 4096}
# A page sorted by another key reads every matching row before its LIMIT, so it stops nowhere early:
# there blocks of 16 granules sort faster. Engine alone, 500 MB, median of 15, two runs (4096 -> 16384
# rows): sorted by rating 14.6 -> 11.8 and 14.9 -> 11.6 ms, deep offset by -positive,name 44.9 -> 39.9
# and 44.5 -> 42.1; in the table's order 16384 was slower (`price=19.99` 6.6 -> 7.9).
SORTED_PAGE_SETTINGS = {"max_block_size": 16384}
# A needle the text index cannot take whole (Where.scans) may read the text of every game. Its page in
# the table's order stops at its 51st match, in the first blocks where matches are common (`open world`,
# 3 % of the games: 5,120 rows read at 500 MB), and reads every row where they are few or none. So that
# page runs beside the count, told to stop (`break`, not an error) past this many rows read; a page
# that stopped so is read again in full after the count, if the count says it has rows. 500 MB, engine
# alone, median of 21, count first -> beside: `open world` 102.9 -> 83.0 ms, `co-op` 80.1 -> 76.5; a
# needle found rarely or never pays the rows read in vain: `é` 61.1 -> 67.0, `open-wor` 64.8 -> 73.2
# [`python bench/query.py 500`, lines "description: ..."; docs/measured.md, twelfth pass].
NEEDLE_PAGE_ROWS = 16384


def _scan(reader: Explorer, settings: dict | None = None) -> dict:
    """A needle's statement's settings: it reads every description, mapped (engine.MAPPED_READS)."""
    return {**(settings or {}), **reader.engine.mapped_reads}


# A page of this many packed fields (physical.PACKED) or more reads them from the packed column: it costs
# what ~7 columns do where a page's rows are scattered (the middle page sorted by `-positive,name` at
# 500 MB, engine alone, by hand, median of 11: its keys 25.6 ms, with the packed column 32.6, with 7 columns
# 28.7, with the 22 packed fields as columns ~44), so below this the columns are cheaper.
PACK_FROM = 10


# Each facet is a GROUP BY over the matching rows: a few per request, on groupable columns only.
MAX_FACETS = 5


PARAMS = {"sort", "limit", "offset", "cursor", "fields", "format", "facet", "facet_size"}


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
    ranks: frozenset[str] = frozenset()  # the sort ranks of the version it reads (Snapshot.ranks)
    packed: bool = False  # the version it reads holds the packed fields (Snapshot.packed)
    identity: str = ""  # the version it reads (Snapshot.identity): a cursor's ranks are of one version


def page_settings(req: RowsRequest) -> dict[str, int]:
    if req.keys[0].sql == ident(schema.KEY):
        return PAGE_SETTINGS
    return SORTED_PAGE_SETTINGS


def _stops_early(req: RowsRequest, snap: Snapshot) -> bool:
    """A page in the table's order from its first match or a cursor: it ends at its LIMIT, not after
    reading every matching row (as a sorted page or the keys before an offset do). Only on a version with
    its ranks, stored after its merge into one part (Versions.finish): before the merge such a page reads
    past the budget anyway. Its ranks are no proof of one part (a version whose merge failed is ranked
    at the next start, Versions.rank_and_pack): what keeps answers exact whatever the parts is _whole
    (over two parts a page that stopped at its budget reported no more rows read than the budget while
    it held 313 of its 1,001 rows, in a review)."""
    return bool(snap.ranks) and req.offset == 0 and req.keys[0].sql == ident(schema.KEY)


def _whole(page_rows: int, rows_read: int | None, total: int, req: RowsRequest) -> bool:
    """Whether a page read with the budget (NEEDLE_PAGE_ROWS) is whole: it read no more than the budget,
    and it is either full or, from the first match, as long as the count says."""
    if rows_read is None or rows_read > NEEDLE_PAGE_ROWS:
        return False
    return page_rows == req.limit or (not req.cursor and page_rows == total)


def _budgeted(req: RowsRequest) -> dict[str, Any]:
    return {**page_settings(req), "max_rows_to_read": NEEDLE_PAGE_ROWS, "read_overflow_mode": "break"}


def parse(items: list[tuple[str, str]], accept: str | None = None, max_limit: int = MAX_LIMIT) -> RowsRequest:
    """A rows request; exports pass their own `max_limit` (the export cap)."""
    single = single_params(items, PARAMS)
    fmt = formats.chosen(single.get("format"), accept)
    all_fields = schema.output_names()
    # In the source's form a date is written as the source file wrote it: its raw copy is left out by default.
    default = [f for f in all_fields if f in schema.BY_NAME] if source_form(fmt) else all_fields
    fields = csv_list(single.get("fields", "")) or default
    unknown = [f for f in fields if f not in all_fields]
    if unknown:
        raise invalid("fields", single["fields"], f"Unknown field(s): {', '.join(unknown)}.",
                      all_fields, "unknown_field")
    sort, keys = sort_keys(single.get("sort"))
    # `facet` repeats, or lists several with commas as `fields` and `group_by` do
    facets = list(dict.fromkeys(f for k, v in items if k == "facet" for f in csv_list(v)))
    for f in facets:
        if f not in GROUPABLE:
            raise invalid("facet", f, f"Cannot facet by {f!r}.", GROUPABLE, "unknown_facet")
    if len(facets) > MAX_FACETS:
        raise invalid("facet", ",".join(facets), f"At most {MAX_FACETS} facets per request.", code="too_many_facets")
    cursor = single.get("cursor")
    return RowsRequest(
        where=where(items, PARAMS), fields=list(dict.fromkeys(fields)), sort=sort, keys=keys,
        limit=int_param(single, "limit", DEFAULT_LIMIT, 1, max_limit),
        offset=0 if cursor else int_param(single, "offset", 0, 0, MAX_OFFSET),
        cursor=cursor, facets=facets, limited="limit" in single,
        facet_size=int_param(single, "facet_size", FACET_DEFAULT, 1, FACET_MAX), format=fmt)


def _after_cursor(req: RowsRequest, table: str) -> Where:
    if not req.cursor:
        return req.where
    after = keyset(req.cursor, req.sort, req.keys, table, req.identity, req.ranks)
    return Where(f"{req.where.sql} AND {after.sql}", {**req.where.params, **after.params}, req.where.scans)


def _packs(req: RowsRequest) -> bool:
    return req.packed and sum(f in physical.PACKED_FIELDS for f in req.fields) >= PACK_FROM


def _read_fields(req: RowsRequest) -> list[str]:
    """The page's fields as its statement reads them: the packed ones as one column, first, if it packs."""
    if not _packs(req):
        return [field_sql(f) for f in req.fields]
    return [physical.PACKED] + [field_sql(f) for f in req.fields if f not in physical.PACKED_FIELDS]


# A sort key whose page sorts by its rank (so the column is not read to sort) and unpacks its field anyway
# takes its next cursor's value from the packed column, not from a read of its own column for the page's
# rows. The middle page by `-positive,name` at 500 MB, engine alone, by hand, median of 12: 49.4 -> 46.2 ms
# (its first page 31.3 -> 30.0) [docs/measured.md, twenty-ninth pass].
_PACKED_BY_SQL = {ident(f): f for f in physical.PACKED_FIELDS}


def _keys_from_packed(req: RowsRequest) -> list[str | None]:
    """Per sort key: the packed field its value is taken from, or None where the statement reads it."""
    if not _packs(req):
        return [None] * len(req.keys)
    return [_PACKED_BY_SQL.get(k.sql) if k.rank in req.ranks else None for k in req.keys]


def unpacked(req: RowsRequest, rows: list[list]) -> list[list]:
    """The page's rows as the fields it asks for, in their order, then the sort keys and their ranks,
    whether or not its statement read the packed column (rows_sql)."""
    if not _packs(req):
        return rows
    width = 1 + sum(f not in physical.PACKED_FIELDS for f in req.fields)
    from_packed = _keys_from_packed(req)
    out = []
    for row in rows:
        packed = dict(zip(physical.PACKED_FIELDS, orjson.loads(row[0]), strict=True))
        others, read = iter(row[1:width]), iter(row[width:])
        fields = [packed[f] if f in packed else next(others) for f in req.fields]
        keys = [next(read) if f is None else packed[f] for f in from_packed]
        out.append(fields + keys + list(read))  # what is left of the row: the ranks
    return out


def rows_sql(req: RowsRequest, table: str) -> tuple[str, dict[str, Any]]:
    """The page: its fields (or the packed ones as one column: _read_fields, unpacked) plus hidden
    sort-key columns __k0.. (but those taken from the packed column: _keys_from_packed) and the ranks
    __r0.. of those the version ranks, for the next cursor."""
    cond = _after_cursor(req, table)
    keys = zip(req.keys, _keys_from_packed(req), strict=True)
    cols = _read_fields(req) + [f"{k.sql} AS __k{i}" for i, (k, packed) in enumerate(keys) if packed is None]
    cols += [f"{k.rank} AS __r{i}" for i, k in enumerate(ranked_keys(req.keys, req.ranks))]
    order = order_by(req.keys, req.ranks)
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


def export_sql(req: RowsRequest, table: str, limit: int) -> tuple[str, dict[str, Any]]:
    """Every requested row from `offset`, at most `limit`; CSV columns in the source file's form."""
    cond = _after_cursor(req, table)
    if source_form(req.format):
        cols = [f"{csv_expr(f)} AS {ident(f)}" for f in req.fields]
    else:
        cols = [field_sql(f) for f in req.fields]
    sql = (f"SELECT {', '.join(cols)} FROM {table} WHERE {cond.sql} ORDER BY {order_by(req.keys, req.ranks)} "
           "LIMIT {lim:UInt64} OFFSET {off:UInt64}")
    return sql, {**cond.params, "lim": limit, "off": req.offset}


def _each_list(counted: Future, names: list[str]) -> dict[str, Future]:
    """Explorer.element_counts of several lists, pending, as one facet answer per list."""
    parts: dict[str, Future] = {name: Future() for name in names}

    def split(done: Future) -> None:
        if done.cancelled():  # the pool shut down (a stop): so are they
            for part in parts.values():
                part.cancel()
            return
        if done.exception() is not None:
            for part in parts.values():
                part.set_exception(done.exception())
            return
        for name, part in parts.items():
            part.set_result([{"value": v, "count": n} for v, n in done.result()[name]])

    counted.add_done_callback(split)
    return parts


def facet_sql(req: RowsRequest, name: str, table: str, repeats: bool = True) -> tuple[str, dict[str, Any]]:
    sql = value_counts(name, table, req.where.sql, repeats=repeats) + " LIMIT {fsize:UInt64}"
    return sql, {**req.where.params, "fsize": req.facet_size}



OPENAPI_PARAMS = [
    openapi.param("sort", "Comma-separated columns, - for descending; app_id breaks ties. One of: "
                  f"{', '.join(SORTABLE)}.", "-positive,name"),
    openapi.param("fields", "Comma-separated columns to return (default: all).", "name,price"),
    openapi.param("cursor", "The next_cursor of the previous page (keyset pagination, same sort)."),
    openapi.param("facet", "Repeatable or comma-separated: top values of a column or bucket with counts under the "
                  "filters.", "genres"),
    openapi.param("facet_size", f"Values per facet (default {FACET_DEFAULT}, max {FACET_MAX}).", "10", "integer"),
    *openapi.PAGING, openapi.VERSION, *openapi.FILTERS,
]


class Rows(Endpoint):
    """A page of games. Its statements (rows, exact total, facets) run side by side on pooled
    connections. The total is its own count() rather than the page's rows_before_limit:
    exact_rows_before_limit disables ClickHouse's early LIMIT (400 ms against 30 ms for an unfiltered
    page at 500 MB). Facets over the whole version come from its rankings (query/run.py)."""

    name, path, model = "rows", "/games", answers.Page
    openapi_params = OPENAPI_PARAMS
    warm = [[], [("fields", "name,release_date,price,reviews,rating,est_owners,genres,app_id"), ("limit", "50")],
            [("facet", "genres"), ("facet", "tags"), ("facet", "categories"), ("limit", "1"), ("fields", "app_id"),
             ("facet_size", "100")]]
    exports, export_name = True, "games"
    # Row exports write CSV columns as `expr AS name`: filters and sort keys must still read the stored
    # column `name`.
    export_settings = {"prefer_column_name_to_alias": 1}

    def parse(self, items: Items, accept: str | None = None, max_limit: int = MAX_LIMIT) -> RowsRequest:
        return parse(items, accept, max_limit)

    def answer(self, reader: Explorer, req: RowsRequest, items: Items, path: str, snap: Snapshot) -> dict:
        page_size = req.limit
        req.limit += 1  # one more row tells whether a next page exists
        req.ranks, req.packed, req.identity = snap.ranks, snap.packed, snap.identity
        spent: list[float] = []
        facets = self._facets(reader, req, snap, spent)
        if req.where.scans and _stops_early(req, snap):
            total, rows, counted_ms = self._needle_page_beside_count(reader, req, snap)
        elif req.where.scans:
            total, rows, counted_ms = self._count_then_page(reader, req, snap)
        elif (whole := reader.whole_count(snap, req.where)) is not None:
            rows = reader.select(snap, *rows_sql(req, snap.table), page_settings(req), spent).rows
            total, counted_ms = whole, 0.0
        else:
            counting = reader.beside(reader.select, snap, *count_sql(req.where, snap.table), spent=spent)
            # on this thread: one hop fewer
            rows = reader.select(snap, *rows_sql(req, snap.table), page_settings(req), spent).rows
            total, counted_ms = counting.result().scalar(), 0.0
        more, data = len(rows) > page_size, unpacked(req, rows[:page_size])
        width, ends = len(req.fields), len(req.fields) + len(req.keys)
        next_cursor = None
        if more:
            next_cursor = encode_cursor(req.sort, data[-1][width:ends], snap.identity, data[-1][ends:])
        if not more:
            next_url = None
        elif req.cursor:  # a cursor says where a page starts: an offset beside it (earlier links) is dropped
            next_url = page_url(path, items, cursor=next_cursor, offset=None)
        else:
            next_url = page_url(path, items, offset=req.offset + page_size)
        answer = {"rows": [dict(zip(req.fields, r[:width], strict=True)) for r in data],
                  "total": total, "limit": page_size, "offset": req.offset,
                  "next": next_url, "next_cursor": next_cursor, "version": snap.upload_id}
        if facets:
            answer["facets"] = {name: f.result() for name, f in facets.items()}
        # Statements side by side count as the longest (the count and then the page are one of them).
        answer["engine_ms"] = round(max([counted_ms, *spent]), 2)
        return answer

    @staticmethod
    def _count_then_page(reader: Explorer, req: RowsRequest, snap: Snapshot) -> tuple[int, list, float]:
        """A needle the text index cannot take whole is a scan of the text of every game, and so is
        the page of a needle that finds no rows or few (it reads in the table's order, on one core).
        The count first, on every core, and the page only where the count says it has rows:
        `python bench/query.py 500`, lines "description: ..." [notes in docs/measured.md]."""
        counted: list[float] = []
        total = reader.select(snap, *count_sql(req.where, snap.table), _scan(reader), counted).scalar()
        if total <= req.offset:  # past the last match: the page is empty
            return total, [], sum(counted)
        rows = reader.select(snap, *rows_sql(req, snap.table), _scan(reader, page_settings(req)), counted).rows
        return total, rows, sum(counted)

    @staticmethod
    def _needle_page_beside_count(reader: Explorer, req: RowsRequest, snap: Snapshot) -> tuple[int, list, float]:
        """Such a needle's page where it may stop early: beside its count, reading at most
        NEEDLE_PAGE_ROWS rows (see there). A page that read more may have stopped short of its rows."""
        counted: list[float] = []
        read: list[float] = []
        counting = reader.beside(reader.select, snap, *count_sql(req.where, snap.table), _scan(reader), counted)
        tried = reader.select(snap, *rows_sql(req, snap.table), _scan(reader, _budgeted(req)), read)
        total = counting.result().scalar()
        beside_ms = max(counted + read)
        if _whole(len(tried.rows), tried.stats.get("rows_read"), total, req):
            return total, tried.rows, beside_ms
        if not total:
            return total, [], beside_ms
        rows = reader.select(snap, *rows_sql(req, snap.table), _scan(reader, page_settings(req)), read).rows
        return total, rows, beside_ms + read[-1]

    @staticmethod
    def _facets(reader: Explorer, req: RowsRequest, snap: Snapshot, spent: list) -> dict[str, Future]:
        """Each facet's values, on the query pool. Under filters, the facets of lists that have element bitmaps
        are counted from them together, in one statement that reads the segment's rows once."""
        together = [name for name in reader.bitmapped(snap, req.facets)
                    if reader.whole_ranking(snap, name, req.where) is None]
        futures = {}
        if together:
            counted = reader.beside(reader.element_counts, snap, together, req.where, req.facet_size, spent)
            futures = _each_list(counted, together)
        for name in req.facets:
            if name not in futures:
                futures[name] = reader.beside(Rows._facet, reader, req, name, snap, spent)
        return {name: futures[name] for name in req.facets}  # in the request's order

    @staticmethod
    def _facet(reader: Explorer, req: RowsRequest, name: str, snap: Snapshot, spent: list) -> list[dict]:
        ranking = reader.whole_ranking(snap, name, req.where)
        if ranking is None:
            repeats = reader.repeats(snap, name)
            ranking = reader.select(snap, *facet_sql(req, name, snap.table, repeats), spent=spent).rows
        return [{"value": v, "count": n} for v, n in ranking[:req.facet_size]]

    def prepare_export(self, reader: Explorer, req: RowsRequest, snap: Snapshot) -> None:
        req.ranks = snap.ranks

    def check_export(self, req: RowsRequest) -> None:
        if req.cursor:
            raise invalid("cursor", req.cursor, "Exports take offset and limit, not a cursor.")

    def export_count(self, req: RowsRequest, table: str) -> tuple[str, dict[str, Any]]:
        return count_sql(req.where, table)

    def export_sql(self, req: RowsRequest, table: str, limit: int) -> tuple[str, dict[str, Any]]:
        return export_sql(req, table, limit)


ENDPOINT = Rows()
