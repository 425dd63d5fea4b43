"""The web UI: a static page and its two files, served with a strict Content-Security-Policy."""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from ..errors import GameLensError

UI = files("gamelens") / "ui"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> Response:
    return FileResponse(str(UI / "index.html"), media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    if name not in TYPES:
        raise GameLensError("not_found", f"No UI file {name!r}.", 404)
    return FileResponse(str(UI / name), media_type=TYPES[name], headers={"Cache-Control": "no-cache"})
