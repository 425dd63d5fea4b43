"""One error type, raised anywhere, rendered once (api/app.py) as the uniform JSON body:

    {"error": {"code": "...", "message": "...", "param": "...", "value": "...", "allowed": [...]}}
"""

from typing import Any


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


class EngineError(GameLensError):
    """The database refused or failed a statement; `engine_code` is ClickHouse's numeric code."""

    def __init__(self, message: str, engine_code: int | None = None):
        super().__init__("engine_error", message, 503)
        self.engine_code = engine_code
