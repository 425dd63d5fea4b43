"""create_app(): the engine, the upload worker, the routers, and the one error renderer."""

from __future__ import annotations

import contextlib
import logging
import math
import re
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..engine import Engine
from ..errors import ERROR_RESPONSES, GameLensError
from ..ingest.jobs import Uploads
from ..keys import KeyStore
from ..lease import WriterLease
from ..observe import REQUEST_ID_KEY, RequestContext
from ..query.run import Explorer
from ..settings import Settings, get_settings
from ..store import Store
from . import games, keys, meta, ui, uploads
from .auth import Guard, principal
from .hardening import Limits

log = logging.getLogger(__name__)


def error_response(err: GameLensError) -> JSONResponse:
    return JSONResponse(err.body(), err.status, headers=err.headers)


def _client_gone() -> GameLensError:
    """No one reads this answer, but the log shows it as the client's doing, not as a bug of ours."""
    return GameLensError("client_disconnected", "The client went away before its request's body arrived.", 400)


# An unhandled error is logged once, by the handler below (with the request id). Starlette re-raises it
# after the handler answered, so that the server may log it too: uvicorn's copy is dropped.
_LOGGED = "_gamelens_logged"


class _LoggedOnce(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, _LOGGED, False)


_LOGGED_ONCE = _LoggedOnce()


def install_error_handlers(app: FastAPI) -> None:
    logging.getLogger("uvicorn.error").addFilter(_LOGGED_ONCE)  # once: the same filter is not added twice

    @app.exception_handler(GameLensError)
    async def _own(_: Request, exc: GameLensError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        said, allowed = _in_our_words(first)
        return error_response(GameLensError(
            "invalid_parameter", f"{'.'.join(where) or 'request'}: {said}", 400,
            param=".".join(where) or None, value=_echoable(first.get("input")), allowed=allowed))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        # FastAPI says 400 "There was an error parsing the body" for any error while it reads one.
        if isinstance(exc.__cause__, GameLensError):
            return error_response(exc.__cause__)
        if isinstance(exc.__cause__, ClientDisconnect):
            return error_response(_client_gone())
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not just those of the route that matched
            headers["Allow"] = ", ".join(_methods_for(request.app, request.url.path))
        return error_response(GameLensError(code, str(exc.detail), exc.status_code, headers=headers))

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect):
        return error_response(_client_gone())

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        # Outside RequestContext (see REQUEST_ID_KEY): the id is passed to the log line and the answer here.
        rid = request.scope.get(REQUEST_ID_KEY, "")
        log.exception("unhandled error", extra={"request_id": rid})
        with contextlib.suppress(AttributeError):  # an exception type without attributes is logged twice
            setattr(exc, _LOGGED, True)
        headers = {"X-Request-ID": rid} if rid else {}
        return error_response(GameLensError("internal", "Internal error; it has been logged under this "
                                            "response's X-Request-ID.", 500, headers=headers))


# Pydantic's wording for the checks our routes declare (a path's app_id, a form's numbers), in the API's
# own ("GET /games/abc" said "Input should be a valid integer, unable to parse string as an integer").
_OWN_WORDS = {
    "int_parsing": ("is not a whole number", "a whole number"),
    "int_from_float": ("is not a whole number", "a whole number"),
    "int_type": ("is not a whole number", "a whole number"),  # a strict field (JSON true, "5", 1.0)
    "greater_than_equal": ("is below the least allowed, {ge}", "from {ge}"),
    "less_than_equal": ("is above the most allowed, {le}", "up to {le}"),
    "missing": ("is required", None),
    "string_type": ("is not text", "text"),
    "bool_parsing": ("is not true or false", "true or false"),
    "string_too_long": ("is longer than {max_length} characters", "at most {max_length} characters"),
    "literal_error": ("is not one of {expected}", "{expected}"),
}


def _in_our_words(error: dict) -> tuple[str, str | None]:
    """A validation error's message and what is allowed, where the API says them its own way."""
    own = _OWN_WORDS.get(error.get("type", ""))
    if own is None:
        return error.get("msg", "invalid"), None
    ctx = error.get("ctx") or {}
    allowed = own[1].format(**ctx) if own[1] else None
    if error.get("type") == "missing":
        return own[0], allowed
    return f"{str(error.get('input'))[:100]!r} {own[0].format(**ctx)}", allowed


def _echoable(value):
    """The client's value, if JSON can say it back (NaN and Infinity it cannot); long text cut at 200
    characters, as errors.invalid cuts it (a 5,000-character link came back whole)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    if isinstance(value, str | int | float):
        return value
    return None


def _methods_for(app: FastAPI, path: str) -> list[str]:
    for template, ops in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            return sorted(m.upper() for m in ops)
    return []


def _writer_lease(store: Store, settings: Settings) -> WriterLease:
    """The writer's lease, or one clear sentence in the log and no start (another writer lives)."""
    lease = WriterLease(store, settings)
    try:
        lease.acquire()
    except GameLensError as exc:
        log.error(exc.message)
        raise
    return lease


def _stopping(app: FastAPI) -> bool:
    """A stop began (Uploads.stopping); no request arrives before the lifespan made the worker."""
    jobs = getattr(app.state, "uploads", None)
    return jobs is not None and jobs.stopping()


def _answer_head(router: APIRouter) -> None:
    """Every GET answers HEAD too (RFC 9110 9.3.2): the same checks, status and headers, no body. Uptime
    monitors probe so (UptimeRobot's default), `curl -I` sizes an export, a cache checks an ETag. The
    twins are left out of the OpenAPI document, which lists each route once."""
    routes = []
    for route in router.routes:
        routes.append(route)
        if isinstance(route, APIRoute) and "GET" in route.methods and "HEAD" not in route.methods:
            # next to its GET: a later catch-all (the page's static files) would answer HEAD first
            routes.append(APIRoute(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False,
                                   dependencies=route.dependencies, response_model=route.response_model,
                                   response_model_exclude_unset=route.response_model_exclude_unset,
                                   response_class=route.response_class))
    router.routes[:] = routes


# Once, at import: the routers are the modules' own, shared by every app this process creates.
for _router in (meta.router, uploads.router, games.router, keys.router, ui.router):
    _answer_head(_router)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = Engine(settings)
        store = Store(engine, settings.clickhouse_cluster)
        store.create_database()
        store.create_bookkeeping()
        guard = Guard(settings, KeyStore(engine))
        guard.keys.start()
        jobs = Uploads(engine, settings)
        explorer = Explorer(engine, jobs.versions, settings)
        lease = None
        if settings.role == "reader":  # no start-up work; its own cache is warmed when it sees a switch
            jobs.versions.on_switch.append(explorer.warm_soon)
        else:
            lease = _writer_lease(store, settings)
            jobs.hold(lease)
            try:
                guard.bootstrap()
                jobs.before_switch = explorer.warm
                jobs.start()
            except BaseException:  # a failed start leaves no lease behind it
                lease.release()
                raise
        app.state.engine, app.state.uploads, app.state.settings, app.state.guard = engine, jobs, settings, guard
        app.state.explorer, app.state.lease = explorer, lease
        try:
            yield
        finally:
            jobs.stop()
            if lease is not None:
                lease.release()
            explorer.close()
            engine.close()

    app = FastAPI(title="GameLens", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES,
                  description="Store a games CSV from a link; explore it by any field.",
                  docs_url=None, redoc_url=None)  # /docs is served by api/ui.py, from local files
    install_error_handlers(app)
    app.include_router(meta.router)  # health checks: no key
    app.include_router(uploads.router)  # readers see uploads; admin routes say so themselves
    app.include_router(games.router, dependencies=[Depends(principal)])
    app.include_router(keys.router)
    app.include_router(ui.router)
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(Limits, max_query_string=settings.max_query_string, max_body=settings.max_body_kb * 1024,
                       max_upload=settings.max_upload_mb * 1024 * 1024, body_timeout=settings.body_timeout_s,
                       stopping=lambda: _stopping(app))
    app.add_middleware(RequestContext)  # outermost: every response, errors included, has a request id
    return app
