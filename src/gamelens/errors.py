"""One error type, raised anywhere, rendered once (api/app.py) as the uniform JSON body:

    {"error": {"code": "...", "message": "...", "param": "...", "value": "...", "allowed": [...]}}
"""

from typing import Any

from pydantic import BaseModel


class GameLensError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        param: str | None = None,
        value: Any = None,
        allowed: Any = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.param, self.value, self.allowed = param, value, allowed
        self.headers = headers or {}

    def body(self) -> dict:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        for key in ("param", "value", "allowed"):
            if getattr(self, key) is not None:
                err[key] = getattr(self, key)
        return {"error": err}


def invalid(param: str, value: Any, message: str, allowed: Any = None, code: str = "invalid_parameter",
            status: int = 400) -> GameLensError:
    """A request parameter (or header) the client must change: 400 unless said, naming it and what is
    allowed."""
    if isinstance(value, str) and len(value) > 200:
        value = value[:200] + "…"
    return GameLensError(code, message, status, param=param, value=value, allowed=allowed)


def unloadable(code: str, message: str, status: int = 422, **kw: Any) -> GameLensError:
    """A link or file that cannot be loaded is the request's problem, whoever failed: 4xx, never 5xx."""
    return GameLensError(code, message, status, **kw)


def shutting_down(message: str) -> GameLensError:
    """The server began to stop (a signal): the client should come back once it is up again."""
    return GameLensError("shutting_down", message, 503, headers={"Retry-After": "30"})


class ErrorDetail(BaseModel):
    code: str
    message: str
    param: str | None = None
    value: Any = None
    allowed: Any = None


class ErrorBody(BaseModel):
    """The one error body (documented in OpenAPI for every route)."""

    error: ErrorDetail


# Every route may answer these (bad input, auth, limits, a busy or failing upstream).
ERROR_RESPONSES = {status: {"model": ErrorBody, "description": text} for status, text in {
    400: "Bad input: unknown column, operator or value", 401: "Missing, wrong or revoked API key",
    403: "Needs an admin key", 404: "Not found", 405: "Method not allowed", 409: "Conflict (e.g. no dataset yet)",
    406: "The Accept header refuses every format of the answer",
    413: "Body or file too large", 414: "Query string too long",
    422: "The link or its file cannot be loaded (the host failed, or the file is not a valid games CSV)",
    429: "Rate limited (see Retry-After)", 503: "The database is busy or a query hit a server limit",
    507: "The database's disk is full, or an export would leave it nearly full (insufficient_storage)"}.items()}


class EngineError(GameLensError):
    """The database refused or failed a statement. The client sees a fixed message; the engine's
    own text stays in `detail` (logged with the request id) and `engine_code` is its numeric code."""

    def __init__(self, detail: str, engine_code: int | None = None):
        super().__init__("engine_error", "The database could not run this request; it has been logged "
                         "under this response's X-Request-ID. Try again shortly.", 503)
        self.detail, self.engine_code = detail, engine_code
