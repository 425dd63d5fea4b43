"""Explore routes: rows (filter, sort, page, facets, export), one game, aggregates, schema."""

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse

from ..query import formats
from ..query.answers import SchemaDoc
from ..query.endpoint import Endpoint
from ..query.run import ENDPOINTS, Explorer, schema_doc
from ..query.spool import Spool
from ..settings import Settings
from .deps import NO_QUERY, get_explorer, get_settings

router = APIRouter(prefix="/api/v1", tags=["games"])
ROWS, AGGREGATE, SUMMARY, GAME = (ENDPOINTS[name] for name in ("rows", "aggregate", "summary", "game"))
Reader = Annotated[Explorer, Depends(get_explorer)]


def _items(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


# Answers change only when another dataset version is switched in: clients keep them and revalidate.
CACHING = {"Cache-Control": "private, no-cache"}


def _answer(request: Request, explorer: Explorer, endpoint: Endpoint, items: list[tuple[str, str]] | None = None
            ) -> Response:
    """A JSON answer with its ETag; 304 when the client's copy (If-None-Match) is current. Whether it
    came from the cache is shown to admins only: it tells which queries other keys asked."""
    answer = explorer.answer(endpoint, _items(request) if items is None else items, request.url.path,
                             ", ".join(request.headers.getlist("if-none-match")))  # one list, however sent
    headers = {"ETag": answer.etag, "X-Dataset-Version": str(answer.version), **CACHING}
    if request.state.principal.is_admin:
        headers["X-Cache"] = "hit" if answer.cached else "miss"
    if answer.body is None:
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


class SpooledResponse(StreamingResponse):
    """An export's spool, sent block by block, and closed (its disk freed) when the response ends for
    any reason: sent whole, cut by the client, stalled, or failed. A client that takes no block for
    GAMELENS_EXPORT_SEND_TIMEOUT_S is cut off, so a stalled reader cannot hold a slot and its disk.
    An error while sending propagates: the server then drops the connection short of Content-Length,
    so a client can tell a cut export from a whole one."""

    def __init__(self, spool: Spool, media_type: str, headers: dict[str, str], send_timeout_s: float):
        super().__init__(spool.blocks(), media_type=media_type, headers=headers)
        self.spool, self.send_timeout_s = spool, send_timeout_s

    async def __call__(self, scope, receive, send) -> None:
        async def send_in_time(message) -> None:
            with anyio.fail_after(self.send_timeout_s):
                await send(message)

        try:
            await super().__call__(scope, receive, send_in_time)
        finally:
            self.spool.close()


def _read(request: Request, explorer: Explorer, endpoint: Endpoint) -> Response:
    """The JSON answer, or the same query exported when asked by ?format= or Accept."""
    # Each Accept line counts: a client (or a proxy) may send several, which mean their lists joined.
    items, accept = _items(request), ", ".join(request.headers.getlist("accept")) or None
    if not endpoint.exports:
        return _answer(request, explorer, endpoint, items)
    if formats.chosen(dict(items).get("format"), accept) == formats.JSON:
        response = _answer(request, explorer, endpoint, items)
    else:
        spool, media, headers = explorer.export(endpoint, items, accept, request.state.principal.name)
        response = SpooledResponse(spool, media, headers, explorer.settings.export_send_timeout_s)
    response.headers["Vary"] = "Accept"  # the same URL answers JSON or an export by it: caches must tell
    return response


EXPORTS = {200: {"content": formats.openapi_content(), "description": "JSON, or the export in the format asked for"}}


def _route(endpoint: Endpoint, summary_text: str):
    """GET <endpoint.path>: its parameters, its answer's shape and its export formats in OpenAPI."""
    return router.get(endpoint.path, summary=summary_text, response_model=endpoint.model,
                      openapi_extra={"parameters": endpoint.openapi_params} if endpoint.openapi_params else None,
                      responses=EXPORTS if endpoint.exports else None)


@_route(ROWS, "Rows matching the filters: sorted, paginated, with facets; or exported")
def games(request: Request, explorer: Reader):
    return _read(request, explorer, ROWS)


@_route(AGGREGATE, "Group and summarise the matching rows")
def aggregate(request: Request, explorer: Reader):
    return _read(request, explorer, AGGREGATE)


@_route(SUMMARY, "The matching games at a glance: counts, prices, reviews, ratings, estimated revenue, "
        "price bands, top tags and genres, top games")
def summary(request: Request, explorer: Reader):
    return _read(request, explorer, SUMMARY)


@_route(GAME, "One game by app_id")
def game(request: Request, app_id: Annotated[int, Path(ge=0, le=2**32 - 1, examples=[20200])], explorer: Reader):
    # as written: its int (checked for range by the annotation, and for OpenAPI) reads 20200.0 too
    return _answer(request, explorer, GAME, [("app_id", request.path_params["app_id"]), *_items(request)])


@router.get("/schema", summary="Columns, their operators and examples; buckets and metrics",
            response_model=SchemaDoc, response_model_exclude_unset=True, dependencies=[Depends(NO_QUERY)])
def schema_route(settings: Annotated[Settings, Depends(get_settings)]):
    return schema_doc(settings)
