"""Run a parsed request on the engine and shape the answer (rows page, one game, aggregate, export)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from .. import schema
from ..engine import Engine, ident
from ..errors import EngineError, GameLensError
from ..ingest import versions
from . import build, filters

UNKNOWN_TABLE = 60
# A page's statements (rows, exact total, facets) run side by side on pooled connections. The total
# is its own count() rather than the page's rows_before_limit: exact_rows_before_limit disables
# ClickHouse's early LIMIT (measured 400 ms against 30 ms for an unfiltered page at 500 MB).
_side_by_side = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gamelens-query")


def table(engine: Engine) -> str:
    return f"{ident(engine.db)}.{ident(versions.ACTIVE)}"


@contextmanager
def needs_dataset():
    """Before the first upload there is no table to read: the client's 409, not an engine failure."""
    try:
        yield
    except EngineError as exc:
        if exc.engine_code == UNKNOWN_TABLE:
            raise GameLensError("no_dataset", "No dataset has been loaded yet: POST a link to /api/v1/uploads.",
                                409) from None
        raise


def select(engine: Engine, sql: str, params: dict, settings: dict | None = None, spent: list | None = None):
    """Run a read; `spent` collects the engine's own time of each statement (reported as engine_ms)."""
    with needs_dataset():
        res = engine.select(sql, params, settings=settings)
    if spent is not None:
        spent.append(res.stats.get("elapsed_ms", 0))
    return res


def _url(path: str, items: list[tuple[str, str]], **changes: Any) -> str:
    kept = [(k, v) for k, v in items if k not in changes]
    kept += [(k, str(v)) for k, v in changes.items() if v is not None]
    return f"{path}?{urlencode(kept)}"


def rows(engine: Engine, items: list[tuple[str, str]], path: str) -> dict:
    t0 = time.perf_counter()
    req = build.parse_rows(items)
    page_size = req.limit
    req.limit += 1  # one more row tells whether a next page exists
    spent: list[float] = []
    page = _side_by_side.submit(select, engine, *build.rows_sql(req, table(engine)), spent=spent)
    total = _side_by_side.submit(select, engine, *build.count_sql(req.where, table(engine)), spent=spent)
    facets = {name: _side_by_side.submit(facet, engine, req, name, spent) for name in req.facets}
    res = page.result()
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
              "next": next_url, "next_cursor": next_cursor}
    if facets:
        answer["facets"] = {name: f.result() for name, f in facets.items()}
    answer["took_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    answer["engine_ms"] = round(max(spent, default=0), 2)  # statements ran side by side: the longest
    return answer


def facet(engine: Engine, req: build.RowsRequest, name: str, spent: list) -> list[dict]:
    res = select(engine, *build.facet_sql(req, name, table(engine)), spent=spent)
    return [{"value": v, "count": n} for v, n in res.rows]


def game(engine: Engine, app_id: int) -> dict:
    names = schema.output_names()
    res = select(engine, f"SELECT {', '.join(ident(n) for n in names)} FROM {table(engine)} "
                 f"WHERE {ident(schema.KEY)} = {{id:UInt32}} ORDER BY {schema.ROW_COL} LIMIT 1", {"id": app_id})
    if not res.rows:
        raise GameLensError("not_found", f"There is no game with app_id {app_id}.", 404, param="app_id",
                            value=app_id)
    return dict(zip(names, res.rows[0], strict=True))


def aggregate(engine: Engine, items: list[tuple[str, str]], path: str) -> dict:
    t0 = time.perf_counter()
    req = build.parse_aggregate(items)
    spent: list[float] = []
    res = select(engine, *build.aggregate_sql(req, table(engine)), {"exact_rows_before_limit": 1}, spent)
    total = res.stats.get("rows_before_limit")
    total = len(res.rows) + req.offset if total is None else total
    more = req.offset + len(res.rows) < total
    return {"rows": res.dicts(), "total_groups": total, "group_by": req.group_by,
            "metrics": [m.alias for m in req.metrics], "limit": req.limit, "offset": req.offset,
            "next": _url(path, items, offset=req.offset + req.limit) if more else None,
            "took_ms": round((time.perf_counter() - t0) * 1000, 2), "engine_ms": round(sum(spent), 2)}


# --- export --------------------------------------------------------------------------------------

ENGINE_FORMATS = {"csv": ("CSVWithNames", "text/csv; charset=utf-8"),
                  "ndjson": ("JSONEachRow", "application/x-ndjson")}


def export(engine: Engine, items: list[tuple[str, str]], fmt: str, cap: int, aggregate_view: bool
           ) -> tuple[Iterator[bytes], str, dict[str, str]]:
    """All matching rows (up to `cap`), streamed block by block, with headers saying if the cap cut it."""
    if aggregate_view:
        req = build.parse_aggregate(items)
        req.offset = 0
        sql, params = build.aggregate_sql(req, table(engine), limit=cap)
        total = None
    else:
        req = build.parse_rows(items)
        req.offset, req.cursor = 0, None
        total = select(engine, *build.count_sql(req.where, table(engine))).scalar()
        sql, params = build.rows_sql(req, table(engine), limit=cap)
    engine_fmt, media = ENGINE_FORMATS[fmt]
    chunks = engine.stream(sql, params, engine_fmt, {"max_result_rows": cap + 1})
    with needs_dataset():
        first = next(chunks, b"")  # errors before the first byte still get a proper error response
    headers = {"Content-Disposition": f'attachment; filename="games{"-aggregate" if aggregate_view else ""}.{fmt}"'}
    if total is not None:
        exported = min(total, cap)
        headers.update({"X-Total-Count": str(total), "X-Exported-Count": str(exported),
                        "X-Truncated": "true" if total > cap else "false"})

    def body():
        yield first
        yield from chunks

    return body(), media, headers


def schema_doc() -> dict:
    """Every column with its type, operators and an example; buckets and metrics (drives UI and docs)."""
    cols = []
    for c in schema.COLUMNS:
        ops = filters.operators_for(c)
        cols.append({
            "name": c.name, "header": c.header, "type": c.kind.filter, "clickhouse_type": c.ch_type,
            "doc": c.doc, "example": c.example, "operators": ops, "default_operator": ops[0],
            "operator_docs": {k: filters.REGISTRY[c.kind.filter][k].doc for k in ops},
            "sortable": c.name in build.SORTABLE, "groupable": c.name in build.GROUPABLE,
        })
        if c.raw_name:
            cols.append({"name": c.raw_name, "type": "raw", "doc": f"{c.name} as written in the CSV",
                         "operators": [], "sortable": False, "groupable": False})
    return {
        "columns": cols,
        "buckets": [{"name": b.name, "doc": b.doc, "source": b.source} for b in schema.BUCKETS.values()],
        "metrics": [{"name": m.name, "doc": m.doc, "columns": [c.name for c in schema.COLUMNS
                                                               if c.kind.filter in m.families]}
                    for m in schema.METRICS.values()],
        "limits": {"max_limit": build.MAX_LIMIT, "default_limit": build.DEFAULT_LIMIT,
                   "formats": list(build.FORMATS)},
    }
