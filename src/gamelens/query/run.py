"""Run parsed requests on the engine and shape the answers: a rows page, one game, an aggregate, an
export. Every request reads one dataset version, resolved once (see ingest/versions.py).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from .. import schema
from ..engine import Engine, ident
from ..errors import GameLensError, invalid
from ..ingest.versions import Snapshot, Versions
from ..settings import Settings
from . import build, filters, formats
from .cache import Cache, etag, make_key
from .spool import Spool, Spools

log = logging.getLogger(__name__)

# Answers that report the engine's time and the request's (a game's answer is the game alone).
TIMED = {"rows", "aggregate", "summary"}
# A list column with more distinct elements than this is filtered game by game (see filters.ELEMENTS):
# the elements travel as a query parameter, which stays small.
ELEMENTS_MAX = 20_000


def _url(path: str, items: list[tuple[str, str]], **changes: Any) -> str:
    kept = [(k, v) for k, v in items if k not in changes]
    kept += [(k, str(v)) for k, v in changes.items() if v is not None]
    return f"{path}?{urlencode(kept)}"


@dataclass
class Answer:
    etag: str
    body: bytes | None  # the JSON answer; None: the client's copy (If-None-Match) is current
    cached: bool


# The page's first requests (ui/main.js and its views), answered for a new version before it is switched in.
WARM = {
    "rows": [[], [("fields", "name,release_date,price,reviews,rating,est_owners,genres,app_id"), ("limit", "50")],
             [("facet", "genres"), ("facet", "tags"), ("facet", "categories"), ("limit", "1"), ("fields", "app_id"),
              ("facet_size", "100")]],
    "summary": [[]],
    "aggregate": [[("group_by", "genres"), ("metrics", "count"), ("limit", "20"), ("sort", "-count")],
                  [("group_by", "release_year"), ("sort", "release_year"), ("limit", "500")],
                  [("group_by", "genres,release_year"), ("metrics", "count"), ("limit", "1000"), ("top", "8")]],
}


class Explorer:
    """The read side: pages, games, aggregates, summaries and exports, each on one version.

    A page's statements (rows, exact total, facets) run side by side on pooled connections. The total
    is its own count() rather than the page's rows_before_limit: exact_rows_before_limit disables
    ClickHouse's early LIMIT (measured 400 ms against 30 ms for an unfiltered page at 500 MB).
    JSON answers are cached per version (query/cache.py).
    """

    def __init__(self, engine: Engine, versions: Versions, settings: Settings):
        self.engine, self.versions, self.settings = engine, versions, settings
        # Bound into every read: virtual columns (est_owners, est_revenue) use it (see schema.py).
        self.constants = {"review_multiple": settings.review_multiple}
        self._parallel = ThreadPoolExecutor(max_workers=settings.query_pool_size, thread_name_prefix="gamelens-query")
        self.spools = Spools(settings.data_dir / "tmp", settings)
        self.cache = Cache(settings.cache_mb << 20, settings.cache_entries)
        # kind -> (parse the parameters, compute the answer from them on a snapshot)
        self._kinds = {"rows": (build.parse_rows, self._rows), "aggregate": (build.parse_aggregate, self._aggregate),
                       "summary": (_parse_summary, self._summary), "game": (_parse_game, self._game)}
        versions.on_switch.append(lambda snap: self.cache.keep_only(snap.identity))
        # (version identity, list column) -> its elements by games, None when too many (see _ranking_of)
        self._rankings: dict[tuple[str, str], list[tuple[str, int]] | None] = {}
        self._closing = threading.Event()
        self._warming: list[threading.Thread] = []

    def close(self) -> None:
        """Stop warming and wait for the statements in flight: the engine is closed next, and chDB
        crashes the process when a statement still runs as it shuts down."""
        self._closing.set()
        for thread in self._warming:
            thread.join()
        self._parallel.shutdown(wait=True, cancel_futures=True)

    def _select(self, snap: Snapshot, sql: str, params: dict, settings: dict | None = None,
                spent: list | None = None):
        """Run a read of `snap`; `spent` collects the engine's own time of each statement (engine_ms).
        A statement that might not end before `snap` may be dropped is refused before it starts."""
        snap.check_time(self.settings.queue_timeout_s + self.settings.query_limit_s)
        res = self.engine.select(sql, self._params(snap, sql, params), settings=settings)
        if spent is not None:
            spent.append(res.stats.get("elapsed_ms", 0))
        return res

    def _params(self, snap: Snapshot, sql: str, params: dict) -> dict:
        """A statement's parameters: the request's, the settings bound into every read, and the distinct
        elements of the list columns its filters test through them (filters.ELEMENTS)."""
        bound = {**self.constants, **params}
        for name in {found[0] for found in filters.ELEMENTS_PARAM.findall(sql)}:
            elements = self._elements_of(snap, name)
            bound[filters.ELEMENTS + name] = elements or []
            bound[filters.ELEMENTS + name + "_listed"] = elements is not None
        return bound

    def _ranking_of(self, snap: Snapshot, name: str) -> list[tuple[str, int]] | None:
        """Every distinct element of list column `name` (one that filters.by_elements) in `snap`'s
        version with its number of games, most first; None when there are more than ELEMENTS_MAX.
        Read once per version (a version never changes): the elements serve its filters, the counts
        serve requests over the whole version (facets, the summary's top lists, top=N)."""
        key = (snap.identity, name)
        if key not in self._rankings:
            found = self._select(snap, build.value_counts_sql(name, snap.table, ELEMENTS_MAX + 1), {}).rows
            kept = {k: v for k, v in self._rankings.items() if k[0] == snap.identity}  # other versions: gone
            self._rankings = {**kept, key: [(v, n) for v, n in found] if len(found) <= ELEMENTS_MAX else None}
        return self._rankings[key]

    def _elements_of(self, snap: Snapshot, name: str) -> list[str] | None:
        ranking = self._ranking_of(snap, name)
        if ranking is None:
            return None
        return [value for value, _ in ranking]

    def _whole_ranking(self, snap: Snapshot, name: str, where: build.Where) -> list[tuple[str, int]] | None:
        """`name`'s ranking when a request covers the whole version (no filter) and it is kept; else None."""
        col = schema.BY_NAME.get(name)
        if where.sql != build.Where().sql or col is None or not filters.by_elements(col):
            return None
        return self._ranking_of(snap, name)

    # --- answers (cached) ----------------------------------------------------------------------

    def answer(self, kind: str, items: list[tuple[str, str]], path: str, if_none_match: str = "") -> Answer:
        """The JSON answer of `kind` (rows | aggregate | summary | game) for these parameters, from
        the active version: from the cache when it has it, else computed (and kept)."""
        t0 = time.perf_counter()
        req = self._kinds[kind][0](items)  # a bad parameter is a 400 whether or not there is data
        snap = self.versions.current()
        key = make_key(snap.identity, kind, items, self.constants)
        tag = etag(key)
        if tag in if_none_match:
            return Answer(tag, None, True)
        body = self.cache.get(key)
        cached = body is not None
        engine_ms = 0.0  # a cached answer cost the engine nothing
        if not cached:
            body, engine_ms = self._compute(kind, req, items, path, snap)
            self.cache.put(key, body)
        if kind in TIMED:
            body = _with_timings(body, engine_ms, round((time.perf_counter() - t0) * 1000, 2))
        return Answer(tag, body, cached)

    def _compute(self, kind: str, req, items: list[tuple[str, str]], path: str, snap: Snapshot
                 ) -> tuple[bytes, float]:
        """The answer as the bytes kept and sent (without its timings), and the engine's time."""
        result = self._kinds[kind][1](req, items, path, snap)
        engine_ms = result.pop("engine_ms", 0.0)
        return orjson.dumps(result), engine_ms

    def warm(self, snap: Snapshot) -> None:
        """Answer the page's first requests for a version before anyone can read it, and read the
        distinct elements its list filters use."""
        for col in schema.COLUMNS:
            if filters.by_elements(col) and not self._closing.is_set():
                self._elements_of(snap, col.name)
        for kind, requests in WARM.items():
            for items in requests:
                if self._closing.is_set():
                    return
                path = "/api/v1/games" + ("" if kind == "rows" else f"/{kind}")
                body, _ = self._compute(kind, self._kinds[kind][0](items), items, path, snap)
                self.cache.put(make_key(snap.identity, kind, items, self.constants), body)

    def warm_soon(self, snap: Snapshot) -> None:
        """A reader saw a switch: answer the page's first requests for it, in the background
        (not when there is no cache to fill: a CLI command on the data directory runs with none)."""
        if not self.cache.enabled:
            return

        def warm():
            try:
                self.warm(snap)
            except Exception:  # only a cache: it fills as pages are read
                log.warning("warming the cache of upload %s failed", snap.upload_id, exc_info=True)

        thread = threading.Thread(target=warm, name="gamelens-warm", daemon=True)
        self._warming = [t for t in self._warming if t.is_alive()] + [thread]  # switches seen in a row
        thread.start()

    def _rows(self, req: build.RowsRequest, items: list[tuple[str, str]], path: str, snap: Snapshot) -> dict:
        page_size = req.limit
        req.limit += 1  # one more row tells whether a next page exists
        spent: list[float] = []
        total = self._parallel.submit(self._select, snap, *build.count_sql(req.where, snap.table), spent=spent)
        facets = {name: self._parallel.submit(self._facet, req, name, snap, spent) for name in req.facets}
        res = self._select(snap, *build.rows_sql(req, snap.table), spent=spent)  # on this thread: one hop fewer
        more, data = len(res.rows) > page_size, res.rows[:page_size]
        width = len(req.fields)
        next_cursor = build.encode_cursor(req.sort, data[-1][width:]) if more else None
        if not more:
            next_url = None
        elif req.cursor:
            next_url = _url(path, items, cursor=next_cursor)
        else:
            next_url = _url(path, items, offset=req.offset + page_size)
        answer = {"rows": [dict(zip(req.fields, r[:width], strict=True)) for r in data],
                  "total": total.result().scalar(), "limit": page_size, "offset": req.offset,
                  "next": next_url, "next_cursor": next_cursor, "version": snap.upload_id}
        if facets:
            answer["facets"] = {name: f.result() for name, f in facets.items()}
        answer["engine_ms"] = round(max(spent, default=0), 2)  # statements ran side by side: the longest
        return answer

    def _facet(self, req: build.RowsRequest, name: str, snap: Snapshot, spent: list) -> list[dict]:
        ranking = self._whole_ranking(snap, name, req.where)
        if ranking is None:
            ranking = self._select(snap, *build.facet_sql(req, name, snap.table), spent=spent).rows
        return [{"value": v, "count": n} for v, n in ranking[:req.facet_size]]

    def _game(self, app_id: int, items: list[tuple[str, str]], path: str, snap: Snapshot) -> dict:
        names = schema.output_names()
        spent: list[float] = []
        res = self._select(snap, f"SELECT {', '.join(build.field_sql(n) for n in names)} FROM {snap.table} "
                           f"WHERE {ident(schema.KEY)} = {{id:UInt32}} ORDER BY {schema.ROW_COL} LIMIT 1",
                           {"id": app_id}, spent=spent)
        if not res.rows:
            raise GameLensError("not_found", f"There is no game with app_id {app_id}.", 404, param="app_id",
                                value=app_id)
        return dict(zip(names, res.rows[0], strict=True))

    def _aggregate(self, req: build.AggRequest, items: list[tuple[str, str]], path: str, snap: Snapshot) -> dict:
        spent: list[float] = []
        self._choose_top(req, snap, spent)
        res = self._select(snap, *build.aggregate_sql(req, snap.table), {"exact_rows_before_limit": 1}, spent)
        total = res.stats.get("rows_before_limit")
        total = len(res.rows) + req.offset if total is None else total
        more = req.offset + len(res.rows) < total
        answer = {"rows": res.dicts(), "total_groups": total, "group_by": req.group_by,
                  "metrics": [m.alias for m in req.metrics], "limit": req.limit, "offset": req.offset,
                  "next": _url(path, items, offset=req.offset + req.limit) if more else None,
                  "version": snap.upload_id}
        if req.top:  # the series, in the order the rows give them (rank order unless sorted otherwise)
            answer["series"] = list(dict.fromkeys(row[req.group_by[0]] for row in answer["rows"]))
        answer["engine_ms"] = round(sum(spent), 2)
        return answer

    def _choose_top(self, req: build.AggRequest, snap: Snapshot, spent: list) -> None:
        """top=N: the first key's N values with the most games become the series grouped, in rank order
        (for the whole version, from its ranking)."""
        if not req.top:
            return
        ranking = self._whole_ranking(snap, req.group_by[0], req.where)
        if ranking is None:
            req.series = self._select(snap, *build.top_sql(req, snap.table), spent=spent).scalar()
        else:
            req.series = [value for value, _ in ranking[:req.top]]

    def _summary(self, cond: build.Where, items: list[tuple[str, str]], path: str, snap: Snapshot) -> dict:
        """One segment at a glance (the matching games), its statements side by side; over the whole
        version, its top tags and genres come from their rankings."""
        spent: list[float] = []
        statements = build.summary_sql(cond, snap.table)
        names = list(statements)  # the answer's order
        ranked = {}
        for part, name in build.SUMMARY_RANKED.items():
            ranking = self._whole_ranking(snap, name, cond)
            if ranking is not None:
                del statements[part]
                ranked[part] = [{"value": v, "games": n} for v, n in ranking[:build.SUMMARY_TOP]]
        futures = {name: self._parallel.submit(self._select, snap, sql, params, spent=spent)
                   for name, (sql, params) in statements.items()}
        parts = {name: ranked[name] if name in ranked else futures[name].result().dicts() for name in names}
        return {**parts.pop("overview")[0], **parts, "version": snap.upload_id,
                "est_revenue_note": schema.REVENUE_CAVEAT, "review_multiple": self.settings.review_multiple,
                "engine_ms": round(max(spent, default=0), 2)}

    # --- exports -------------------------------------------------------------------------------

    def export(self, items: list[tuple[str, str]], accept: str | None, aggregate_view: bool, caller: str
               ) -> tuple[Spool, str, dict[str, str]]:
        """Every matching row (or group) from `offset`, up to `limit` if given, else up to the export
        cap; the count and whether the cap cut it are in the headers. The result is computed to the
        end first, into a spool file (see Engine.spool and query/spool.py), and sent with its
        Content-Length. The caller sends the spool and must close it."""
        cap = self.settings.export_max_rows
        parse = build.parse_aggregate if aggregate_view else build.parse_rows
        req = parse(items, accept, max_limit=cap)
        fmt = req.format
        if getattr(req, "cursor", None):
            raise invalid("cursor", req.cursor, "Exports take offset and limit, not a cursor.")
        limit = req.limit if req.limited else cap
        snap = self.versions.current()
        spool = self.spools.admit(caller)
        try:
            if aggregate_view:
                self._choose_top(req, snap, [])
                total = self._select(snap, *build.aggregate_count_sql(req, snap.table)).scalar()
                sql, params = build.aggregate_export_sql(req, snap.table, limit)
            else:
                total = self._select(snap, *build.count_sql(req.where, snap.table)).scalar()
                sql, params = build.export_sql(req, snap.table, limit)
            self._spool(snap, sql, params, fmt, aggregate_view, spool)
        except BaseException:
            spool.close()
            raise
        exported = min(max(total - req.offset, 0), limit)
        name = "games-aggregate" if aggregate_view else "games"
        headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"',
                   "Content-Length": str(spool.size), "X-Total-Count": str(total),
                   "X-Exported-Count": str(exported), "X-Dataset-Version": str(snap.upload_id),
                   "X-Truncated": "true" if not req.limited and total - req.offset > cap else "false"}
        return spool, formats.EXPORTS[fmt].media_type, headers

    def _spool(self, snap: Snapshot, sql: str, params: dict, fmt: str, aggregate_view: bool, spool: Spool) -> None:
        snap.check_time(self.settings.queue_timeout_s + self.settings.export_limit_s)
        export = formats.EXPORTS[fmt]
        settings = {"max_result_rows": self.settings.export_max_rows + 1,
                    "max_execution_time": self.settings.export_limit_s, **export.settings}
        if not aggregate_view:
            # Row exports write CSV columns as `expr AS name`: filters and sort keys must still read
            # the stored column `name`. (Aggregates group by their aliases, so not there.)
            settings["prefer_column_name_to_alias"] = 1
        self.engine.spool(sql, self._params(snap, sql, params), export.engine, spool, settings)


def _parse_summary(items: list[tuple[str, str]]) -> build.Where:
    return build.where(items, build.SUMMARY_PARAMS)


def _parse_game(items: list[tuple[str, str]]) -> int:
    return int(dict(items)["app_id"])  # the route has checked it


def _with_timings(body: bytes, engine_ms: float, took_ms: float) -> bytes:
    """The answer's JSON object with its timings as its last members (the cached bytes never hold them)."""
    if not body.endswith(b"}"):
        raise ValueError("an answer is a JSON object")
    return body[:-1] + b',"engine_ms":' + orjson.dumps(engine_ms) + b',"took_ms":' + orjson.dumps(took_ms) + b"}"


def schema_doc(settings: Settings) -> dict:
    """Every column with its type, operators and an example (derived ones with their formula and
    source); buckets and metrics. Drives the page and the docs."""
    cols = []
    for c in schema.COLUMNS:
        ops = filters.operators_for(c)
        doc = {
            "name": c.name, "header": c.header or None, "type": c.kind.filter, "clickhouse_type": c.ch_type,
            "doc": c.doc, "example": c.example, "operators": ops, "default_operator": ops[0],
            "operator_docs": {k: filters.REGISTRY[c.kind.filter][k].doc for k in ops},
            "sortable": c.name in build.SORTABLE, "groupable": c.name in build.GROUPABLE, "unit": c.unit or None,
        }
        if c.derived:
            doc.update(derived="virtual" if c.virtual else "stored", formula=c.formula, source=c.source or None)
        cols.append(doc)
        if c.raw_name:
            cols.append({"name": c.raw_name, "type": "raw", "doc": f"{c.name} as written in the CSV",
                         "operators": [], "sortable": False, "groupable": False})
    return {
        "columns": cols,
        "buckets": [{"name": b.name, "doc": b.doc, "source": b.source, "unit": b.unit or None}
                    for b in schema.BUCKETS.values()],
        # alias: the output column's name ({name}, {column} and {operator} filled in from the request).
        "metrics": [{"name": m.name, "doc": m.doc, "unit": m.unit or None, "alias": build.alias_template(m),
                     "columns": [c.name for c in schema.COLUMNS if c.kind.filter in m.families]}
                    for m in schema.METRICS.values()]
        + [{"name": "share", "doc": "share(<filter>): the share (0 to 1) of the group's games that meet one filter, "
            "written as a query parameter, e.g. share(rating__gte=0.8)", "columns": [], "unit": "percent",
            "alias": build.SHARE_ALIAS, "alias_no_operator": build.SHARE_ALIAS_NO_OPERATOR}],
        # A metric without a unit (sum, avg, min, max, median, p90) reads in its column's unit.
        "units": schema.UNITS,
        "exports": [{"format": f.name, "media_type": f.media_type, "label": f.label, "doc": f.doc}
                    for f in formats.EXPORTS.values()],
        "review_multiple": settings.review_multiple,
        "est_revenue_note": schema.REVENUE_CAVEAT,
        "limits": {"max_limit": build.MAX_LIMIT, "default_limit": build.DEFAULT_LIMIT,
                   "formats": list(formats.NAMES), "max_facets": build.MAX_FACETS,
                   "max_list_groups": build.MAX_LIST_GROUPS, "max_top": build.MAX_TOP},
    }
