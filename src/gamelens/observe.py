"""Operations: structured JSON logs with a request id, and Prometheus metrics.

Every log line is one JSON object; lines written while serving a request carry its `request_id`
(taken from a client's X-Request-ID when it is sane, otherwise made here, and echoed back).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

# Metric labels come from a fixed set: a client must not be able to create new series (any token is
# a valid HTTP method to the server; unmatched paths are one label, not one series per path).
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}  # uvicorn's ANSI copy

REGISTRY = CollectorRegistry()
REQUESTS = Counter("gamelens_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("gamelens_request_seconds", "HTTP request latency", ["route"], registry=REGISTRY,
                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
UPLOADS = Counter("gamelens_uploads_total", "Uploads that ended, by final state", ["state"], registry=REGISTRY)
UPLOAD_SECONDS = Histogram("gamelens_upload_seconds", "Upload duration, submit to end", registry=REGISTRY,
                           buckets=(.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
UPLOAD_ROWS = Counter("gamelens_upload_rows_total", "Rows stored by successful uploads", registry=REGISTRY)
CACHE_REQUESTS = Counter("gamelens_cache_requests_total", "Response cache look-ups", ["result"], registry=REGISTRY)
ENGINE_ERRORS = Counter("gamelens_engine_errors_total", "Statements the database refused or failed",
                        ["code"], registry=REGISTRY)


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        rid = request_id.get()
        if rid:
            doc["request_id"] = rid
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # replaced by our access line (with request id)


access_log = logging.getLogger("gamelens.access")
# The request id in the ASGI scope too: the handler of unhandled errors runs outside this middleware
# (Starlette's ServerErrorMiddleware), after its context variable was reset.
REQUEST_ID_KEY = "gamelens.request_id"


class RequestContext:
    """ASGI middleware: request id, one access log line, and request metrics per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        sent = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
        token = request_id.set(rid)
        scope[REQUEST_ID_KEY] = rid
        status, start = 500, time.perf_counter()

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(route).observe(elapsed)
            access_log.info("%s %s %s", scope["method"], scope["path"], status, extra={
                "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 2)})
            request_id.reset(token)
