"""Request limits and security headers, before routing (a plain ASGI middleware)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from ..errors import GameLensError, shutting_down
from ..ingest.received import FILE_TYPES, media_type

# How often a request waiting for its body looks whether a stop began (as the upload worker's waiters do).
STOP_POLL_S = 0.2

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class Limits:
    """Caps on the query string and the body. A file sent to /api/v1/uploads (multipart, text/csv) may be as
    large as GAMELENS_MAX_UPLOAD_MB (plus a little for the form around it); any other body is small."""

    FORM_OVERHEAD = 64 * 1024

    def __init__(self, app, max_query_string: int, max_body: int, max_upload: int, body_timeout: float,
                 stopping: Callable[[], bool] = lambda: False):
        self.app, self.max_query, self.max_body = app, max_query_string, max_body
        self.file_limit, self.max_upload = max_upload, max_upload + self.FORM_OVERHEAD
        self.body_timeout, self.stopping = body_timeout, stopping

    def _body_cap(self, scope, headers: dict[bytes, bytes]) -> int:
        # the first Content-Type, as the route reads it (Starlette's Headers.get)
        sent = next((value for name, value in scope.get("headers", []) if name == b"content-type"), b"")
        a_file = media_type(sent.decode("latin-1")) in FILE_TYPES
        if a_file and _uploads(scope):
            return self.max_upload
        return self.max_body

    def _too_large(self, scope, cap: int) -> GameLensError:
        if cap == self.max_upload:  # the limit a user set, not the form's allowance above it
            # the route's own code for a file over the limit (it answers too_large up to the form's allowance)
            return GameLensError("too_large", f"The file is larger than the limit of {self.file_limit} bytes "
                                 "(GAMELENS_MAX_UPLOAD_MB).", 413, param="file")
        hint = ""
        if cap != self.max_upload and _uploads(scope):  # a file sent in a body of another type
            hint = (" A file goes as multipart/form-data (a field named `file`), or as the body with Content-Type: "
                    "text/csv.")
        return GameLensError("body_too_large", f"The request body is over {cap} bytes (GAMELENS_MAX_BODY_KB).{hint}",
                             413)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        cap = self._body_cap(scope, headers)
        refused = self._refuse(scope, cap)
        if refused:
            return await _send_error(send, refused)

        received = 0
        body_left = _declares_body(headers)
        answering = False

        async def counted_receive():
            nonlocal received, body_left
            # The body is in (or there is none), or the answer began and no 503 can be sent: what is
            # left are waits for a disconnect (a streamed answer's).
            if not body_left or answering:
                return await receive()
            message = await _body_unless_stopping(receive, self.stopping, lambda: answering, self.body_timeout)
            body_left = message["type"] == "http.request" and message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > cap:  # a body without Content-Length, longer than allowed
                raise self._too_large(scope, cap)
            return message

        async def with_headers(message):
            nonlocal answering
            if message["type"] == "http.response.start":
                answering = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in present]
            await send(message)

        await self.app(scope, counted_receive, with_headers)

    def _refuse(self, scope, cap: int) -> GameLensError | None:
        if len(scope.get("query_string", b"")) > self.max_query:
            return GameLensError("query_too_long", f"The query string is over {self.max_query} bytes "
                                 "(GAMELENS_MAX_QUERY_STRING).", 414)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > cap):
                return self._too_large(scope, cap)
        return None


def _uploads(scope) -> bool:
    return scope["method"] == "POST" and scope["path"] == "/api/v1/uploads"


def _declares_body(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers


async def _body_unless_stopping(receive, stopping: Callable[[], bool], answering: Callable[[], bool],
                                timeout: float) -> dict:
    """The body's next message; a 503 instead for a body still arriving once a stop began, unless the
    answer has begun (a streamed answer may ask before it starts, and then waits here). A client
    that sends nothing more, or trickles, would otherwise hold the request until uvicorn's wait
    (GAMELENS_SHUTDOWN_GRACE_S + 5 s) ran out and uvicorn cancelled it with a plain-text 500. A body
    that is all in (uvicorn holds it) is the app's to answer. A 408 once nothing came for `timeout`
    seconds: uvicorn waits for a body forever, and a stalled upload held its connection and file."""
    pending = asyncio.ensure_future(receive())
    silent_until = time.monotonic() + timeout
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=STOP_POLL_S)
            if done:
                break
            if answering():  # no other answer can be sent now
                continue
            if stopping():
                raise _refused_at_the_stop()
            if time.monotonic() >= silent_until:
                raise _stalled(timeout)
    finally:
        pending.cancel()  # nothing when it is done
    message = pending.result()
    if message.get("more_body", False) and stopping() and not answering():
        raise _refused_at_the_stop()
    return message


def _stalled(timeout: float) -> GameLensError:
    return GameLensError("body_timeout", f"Nothing of the request body arrived for {timeout:g} s "
                         "(GAMELENS_BODY_TIMEOUT_S): send it again.", 408)


def _refused_at_the_stop() -> GameLensError:
    return shutting_down("The server is shutting down before this request's body arrived: send it again "
                         "once the server is back.")


async def _send_error(send, err: GameLensError) -> None:
    body = json.dumps(err.body()).encode()
    await send({"type": "http.response.start", "status": err.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
