"""Explore routes: rows (filter, sort, page, facets, export), one game, aggregates, schema."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse

from ..engine import Engine
from ..query import build, run
from ..settings import Settings
from .deps import get_engine, get_settings
from .docs import AGGREGATE_PARAMS, ROWS_PARAMS

router = APIRouter(prefix="/api/v1", tags=["games"])


def _items(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _export(request: Request, engine: Engine, settings: Settings, aggregate: bool):
    """The same query as CSV or NDJSON when asked by ?format= or Accept; None for JSON."""
    items = _items(request)
    fmt = build.output_format(dict(i for i in items if i[0] == "format"), request.headers.get("accept"))
    if fmt == "json":
        return None
    body, media, headers = run.export(engine, items, fmt, settings.export_max_rows, aggregate)
    return StreamingResponse(body, media_type=media, headers=headers)


EXPORTS = {200: {"content": {"application/json": {}, "text/csv": {}, "application/x-ndjson": {}},
                  "description": "JSON, or the export in the format asked for"}}


@router.get("/games", summary="Rows matching the filters: sorted, paginated, with facets; or exported",
            openapi_extra={"parameters": ROWS_PARAMS}, responses=EXPORTS)
def games(request: Request, engine: Annotated[Engine, Depends(get_engine)],
          settings: Annotated[Settings, Depends(get_settings)]):
    return _export(request, engine, settings, False) or run.rows(engine, _items(request), request.url.path)


@router.get("/games/aggregate", summary="Group and summarise the matching rows",
            openapi_extra={"parameters": AGGREGATE_PARAMS}, responses=EXPORTS)
def aggregate(request: Request, engine: Annotated[Engine, Depends(get_engine)],
              settings: Annotated[Settings, Depends(get_settings)]):
    return _export(request, engine, settings, True) or run.aggregate(engine, _items(request), request.url.path)


@router.get("/games/{app_id}", summary="One game by app_id")
def game(app_id: Annotated[int, Path(ge=0, le=2**32 - 1, examples=[20200])],
         engine: Annotated[Engine, Depends(get_engine)]):
    return run.game(engine, app_id)


@router.get("/schema", summary="Columns, their operators and examples; buckets and metrics")
def schema_route():
    return run.schema_doc()



