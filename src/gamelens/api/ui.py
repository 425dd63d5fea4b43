"""The HTML pages: the web UI and the API docs (Swagger UI), every one with a strict
Content-Security-Policy, and every file they load served from the package (no CDN).

Swagger UI's files come from the fastapi-offline package (MIT); its start-up script is ours
(ui/docs.js), because the CSP allows no inline script. ReDoc is not offered: it needs inline styles.
"""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from ..errors import GameLensError

UI = files("gamelens") / "ui"
SWAGGER = files("fastapi_offline") / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HTML = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "png": "image/png"}
# The page's modules and styles, as shipped in the package: nothing else under /ui is served.
UI_FILES = {p.name for p in UI.iterdir() if p.name.endswith((".js", ".css"))}
VIEW_FILES = {p.name for p in (UI / "views").iterdir() if p.name.endswith(".js")}
SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}

router = APIRouter(include_in_schema=False)


def _file(folder, name: str, allowed: set[str]) -> Response:
    if name not in allowed:
        raise GameLensError("not_found", f"No such file {name!r}.", 404)
    return FileResponse(str(folder / name), media_type=TYPES[name.rsplit(".", 1)[1]],
                        headers={"Cache-Control": "no-cache"})


# The page answers HEAD too: uptime monitors probe a site's front page so (UptimeRobot's default method).
@router.api_route("/", methods=["GET", "HEAD"])
def index() -> Response:
    return FileResponse(str(UI / "index.html"), media_type="text/html; charset=utf-8", headers=HTML)


@router.get("/docs")
def docs() -> Response:
    return FileResponse(str(UI / "docs.html"), media_type="text/html; charset=utf-8", headers=HTML)


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    return _file(UI, name, UI_FILES)


@router.get("/ui/views/{name}")
def view_asset(name: str) -> Response:
    return _file(UI / "views", name, VIEW_FILES)


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    return _file(SWAGGER, name, SWAGGER_FILES)
