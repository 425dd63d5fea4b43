"""Cross-cutting pieces routes receive as dependencies (so tests swap them without patching).

They read no file and ask no database, so they are async: FastAPI runs a plain `def` dependency in its thread
pool, and a request would queue for a thread there just to read an attribute."""

from collections.abc import Awaitable, Callable

from fastapi import Request

from ..engine import Engine
from ..errors import invalid
from ..ingest.jobs import Uploads
from ..query.run import Explorer
from ..settings import Settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_uploads(request: Request) -> Uploads:
    return request.app.state.uploads


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_explorer(request: Request) -> Explorer:
    return request.app.state.explorer


def known_query(allowed: tuple[str, ...], what: str = "") -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing the query parameters a route does not read, and any given twice: a typo
    (`?limt=5`) is a 400 naming it, not a silently different answer. `what`: " for an upload"."""
    async def check(request: Request) -> None:
        for name in request.query_params:
            values = request.query_params.getlist(name)
            if name not in allowed:
                takes = "" if allowed else " This request takes no query parameter."
                raise invalid(name, values[0], f"Unknown parameter {name!r}{what}.{takes}", list(allowed))
            if len(values) > 1:
                raise invalid(name, values, f"{name} may be given only once.")
    return check


NO_QUERY = known_query(())  # for routes that read no query parameter
