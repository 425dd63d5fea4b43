"""Upload routes: a link (JSON) or a file (multipart) to load, the bundled sample, progress, history,
re-activating a kept version."""

import asyncio
from importlib.resources import files
from pathlib import Path as FilePath
from pathlib import PurePath
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ErrorBody, GameLensError, invalid, shutting_down
from ..ingest import download
from ..ingest.jobs import Uploads
from ..ingest.received import CSV_TYPES, FILE_TYPES, media_type, receive_csv, receive_file
from ..keys import Principal
from ..settings import Settings
from . import answers
from .auth import admin, principal, writer
from .deps import NO_QUERY, get_settings, get_uploads, known_query

UploadId = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[1])]
Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
Writes = [Depends(writer)]  # write routes: a reader answers 409 read_only_replica
# Each route's query is checked after who may call it (a reader's key gets 403 whatever the query; the
# role's dependency runs once per request, cached, though the route also takes it as a parameter).
Jobs = Annotated[Uploads, Depends(get_uploads)]
Wait = Annotated[bool, Query(description="Block until the upload ends (for scripts and curl).")]
Activate = Annotated[bool, Query(description="Serve the data once it is loaded and checked (the default). false: "
                                 "keep it beside the data served, to look at its record (rows, rejected rows, "
                                 "warnings) first; POST /api/v1/uploads/{id}/activate serves it.")]
SAMPLE = files("gamelens") / "data" / "sample_games.csv"
WAIT_POLL_S = 0.2  # how often a request waiting for its upload looks at a stop and at its client (no query)


class UploadError(ErrorBody):
    """With wait=true, an upload that did not succeed: why, and its record."""

    upload: answers.Upload | None = None


DISK_FULL = "the database's disk filled up while it stored the file (the upload failed; the data served is unchanged)"
NO_ROOM = ("No room left on the server's disk for the file sent, or the database's disk is full (nothing stored); "
           "with wait=true also: " + DISK_FULL)
WAITED = {200: {"model": answers.Upload, "description": "With wait=true: the upload ended and succeeded"},
          409: {"model": UploadError, "description": "Conflict (e.g. with wait=true: this server stopped being "
                                                     "the writer before the upload started)"},
          413: {"model": UploadError, "description": "Body or file too large (with wait=true: the upload's file)"},
          422: {"model": UploadError, "description": "The link or its file cannot be loaded (with wait=true: "
                                                     "the upload failed)"},
          503: {"model": UploadError, "description": "The database is busy or a query hit a server limit; or the "
                                                     "server is shutting down (shutting_down): it takes no new "
                                                     "upload, and with wait=true one that did not end within "
                                                     "GAMELENS_SHUTDOWN_GRACE_S is being stopped (its Location "
                                                     "tells how it ended)"},
          507: {"model": UploadError, "description": "The database's disk is full (insufficient_storage); with "
                                                     "wait=true also: " + DISK_FULL}}

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"], dependencies=[Depends(principal)])


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # `activate` here was ignored, and the data served: say so

    url: str = Field(..., max_length=4096, examples=["https://example.com/games.csv"])
    max_rejected_rows: int | None = Field(
        None, ge=0, le=1_000_000, strict=True, description="Rows allowed to fail parsing (dropped and listed); "
        "default GAMELENS_MAX_REJECTED_ROWS.")


_BODIES = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": UploadRequest.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "The CSV file"},
        "max_rejected_rows": {"type": "integer", "minimum": 0, "maximum": 1_000_000}}}},
    "text/csv": {"schema": {"type": "string", "format": "binary",
                            "description": "The CSV file itself (rejected rows: ?max_rejected_rows=N, else "
                                           "GAMELENS_MAX_REJECTED_ROWS)"}}}}}


def shown_to(who: Principal, rec: dict) -> dict:
    """An upload record as this caller may see it: links can be signed or carry credentials, so
    reader keys see them without user info, query string or fragment, and a file the CLI loaded by
    its name only (not where it lies on the server); admins see them whole."""
    if who.is_admin or rec["source"] in ("file", "sample"):
        return rec
    if rec["source"] == "path":
        return {**rec, "url": PurePath(rec["url"]).name}
    parts = urlsplit(rec["url"])
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return {**rec, "url": urlunsplit((parts.scheme, netloc, parts.path, "", ""))}


# The upload routes' query parameters, each once: a misspelt or repeated one was ignored (`activated=false`
# served the data; of `activate=false&activate=true` the last won), as the read routes refuse them.
UPLOAD_QUERY = ("activate", "wait")
FORM_FIELDS = ("file", "max_rejected_rows")


_known_query = known_query(UPLOAD_QUERY, " for an upload")
# A CSV sent as the body has no field of its own for its tolerance: the query string carries it.
_known_upload_query = known_query((*UPLOAD_QUERY, "max_rejected_rows"), " for an upload")
# Text, read by the form field's rule (`_tolerance`): as an int, `1_0`, `5.0` and `+5` passed as 10, 5 and 5.
Tolerance = Annotated[str | None, Query(description="With a CSV sent as the body (text/csv) only: rows allowed "
                                        "to fail parsing, a whole number from 0 to 1000000; default "
                                        "GAMELENS_MAX_REJECTED_ROWS. A link's goes in its JSON, a form's in a form "
                                        "field.", examples=["10"])]


def _known_fields(fields: dict[str, str]) -> None:
    for name, value in fields.items():
        if name not in FORM_FIELDS:
            where = " (activate goes in the query string: ?activate=false)" if name == "activate" else ""
            raise invalid(name, value, f"Unknown form field {name!r}{where}.", list(FORM_FIELDS))


def _tolerance(fields: dict[str, str]) -> int | None:
    raw = fields.get("max_rejected_rows", "").strip()
    if not raw:
        return None
    # ASCII digits only: isdigit() alone passes `²` (int() then fails: a 500) and `٣`
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 1_000_000:
        raise invalid("max_rejected_rows", raw, "max_rejected_rows is a whole number from 0 to 1000000.")
    return int(raw)


NOT_JSON = ('The body is not JSON: send a link as {"url": "https://..."} (Content-Type: application/json), or '
            "the CSV as multipart/form-data in a field named `file`, or as the body itself with Content-Type: "
            "text/csv.")


async def _submit_file(request: Request, uploads: Uploads, settings: Settings, who: Principal, activate: bool,
                       tolerance: int | None) -> dict:
    """A file in a multipart body (its tolerance in a form field), or the body itself (text/csv; its
    tolerance from the query string)."""
    cap = settings.max_upload_mb * 1024 * 1024
    if media_type(request.headers.get("content-type", "")) in CSV_TYPES:
        got = await receive_csv(request, uploads.engine.incoming, cap)
    else:
        got = await receive_file(request, uploads.engine.incoming, cap)
    try:
        _known_fields(got.fields)
        if "max_rejected_rows" in got.fields:
            tolerance = _tolerance(got.fields)
        return await run_in_threadpool(uploads.submit_file, got.path, got.filename, "file", who.name, tolerance,
                                       activate)
    except BaseException:
        got.path.unlink(missing_ok=True)
        raise


async def _link_body(request: Request) -> UploadRequest:
    """A link in a JSON body, its form checked (scheme, host, port): refused before it counts."""
    try:
        body = UploadRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):  # no body, a CSV, a form...
            raise invalid("body", None, NOT_JSON) from None
        raise RequestValidationError(exc.errors(include_url=False)) from None
    download.check_link(body.url)
    return body


# A failed upload's status for a client that waited for it: what the file did is a 4xx (422 unless
# named here); a database whose disk filled up is the server's trouble.
FAILED_STATUS = {"too_large": 413, "insufficient_storage": 507}


async def _waited(request: Request, uploads: Uploads, upload_id: int) -> dict:
    """The upload's record once a client that waits for it may have it. It waits on the event loop, not in a
    thread: forty waiters behind a stalled link held every thread the sync routes run in (reads and /readyz
    waited up to a minute), and a waiter whose client left held its thread until the upload ended. Woken
    at the end itself (the record it answers with is the one of that moment: indexes still building)."""
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    uploads.when_ended(upload_id, lambda: loop.call_soon_threadsafe(ended.set))
    while uploads.waits_on(upload_id) and not await request.is_disconnected():
        with anyio.move_on_after(WAIT_POLL_S):  # between wake-ups: a stop's grace, a client that left
            await ended.wait()
    return await run_in_threadpool(uploads.get, upload_id)


async def _answer(request: Request, uploads: Uploads, rec: dict, wait: bool) -> JSONResponse:
    location = f"/api/v1/uploads/{rec['id']}"
    if not wait:
        return JSONResponse(rec, 202, headers={"Location": location})
    rec = await _waited(request, uploads, rec["id"])
    if rec["state"] == "succeeded":
        return JSONResponse(rec, 200, headers={"Location": location})
    if rec["state"] == "failed":
        status = FAILED_STATUS.get(rec["error"]["code"], 422)
        return JSONResponse({"error": rec["error"], "upload": rec}, status, headers={"Location": location})
    if uploads.stopping():  # it did not end within the grace of a stop that began, or never started
        error = _cut_by_the_stop(rec, location, uploads.settings)
        return JSONResponse({**error.body(), "upload": rec}, error.status, headers={"Location": location,
                                                                                     **error.headers})
    if rec["state"] == "interrupted":  # this server lost the writer lease before the upload started
        return JSONResponse({"error": rec["error"], "upload": rec}, 409, headers={"Location": location})
    return JSONResponse(rec, 202, headers={"Location": location})  # still running: its Location tells the end


def _cut_by_the_stop(rec: dict, location: str, settings: Settings) -> GameLensError:
    # Not "it is interrupted": the shutdown marks it only after this answer, and data already being
    # switched in at that moment is served (its record then says succeeded).
    if rec["started_at"] is None:  # it was said to have "not ended" though it never began
        return shutting_down(f"The server is shutting down and upload {rec['id']} was still waiting for its turn: "
                             "it does not start, and the previous dataset is kept. Send it again once the server "
                             f"is back ({location} will show it interrupted).")
    return shutting_down(f"The server is shutting down and upload {rec['id']} did not end within "
                         f"GAMELENS_SHUTDOWN_GRACE_S ({settings.shutdown_grace_s:g} s). It is being stopped: unless "
                         "its data was already being switched in, it ends interrupted and the previous dataset "
                         f"is kept. Once the server is back, {location} shows how it ended.")


@router.post("", status_code=202, summary="Load a CSV: a public link (JSON), or a file (multipart/form-data or "
             "text/csv)",
             openapi_extra=_BODIES, dependencies=[*Writes, Depends(admin), Depends(_known_upload_query)],
             response_model=answers.Upload,
             responses={**WAITED, 507: {"model": UploadError, "description": NO_ROOM}})
async def create_upload(request: Request, who: Admin, uploads: Jobs,
                        settings: Annotated[Settings, Depends(get_settings)], wait: Wait = False,
                        activate: Activate = True, max_rejected_rows: Tolerance = None):
    guard = request.app.state.guard
    uploads.check_keep(activate)  # before the bytes come, and costing no upload of the hourly limit
    sent = media_type(request.headers.get("content-type", ""))
    if max_rejected_rows is not None and sent not in CSV_TYPES:  # before the bytes come
        raise invalid("max_rejected_rows", max_rejected_rows, "max_rejected_rows goes in the query string only "
                      "with a CSV sent as the body (text/csv): a link's goes in its JSON, a form's in a form field.")
    tolerance = _tolerance({"max_rejected_rows": max_rejected_rows or ""})  # before the bytes come
    if sent in FILE_TYPES:
        guard.limit(guard.uploads, who.name, "uploads")  # before the bytes come: receiving them is the cost
        rec = await _submit_file(request, uploads, settings, who, activate, tolerance)
        return await _answer(request, uploads, rec, wait)
    # A malformed body or link (ftp://...), or a host refused (private, unknown), is its own 400 and costs no
    # upload of the per-key allowance: a typo in a host name must not use up a key's uploads. (Checked
    # again when queued, and at every connection.)
    body = await _link_body(request)
    await run_in_threadpool(download.check_url, body.url, settings.allow_private_urls)
    guard.limit(guard.uploads, who.name, "uploads")
    rec = await run_in_threadpool(uploads.submit, body.url, who.name, body.max_rejected_rows, activate)
    return await _answer(request, uploads, rec, wait)


@router.post("/sample", status_code=202, summary="Load the 100-row sample that ships with GameLens",
             responses=WAITED, dependencies=[*Writes, Depends(admin), Depends(_known_query)],
             response_model=answers.Upload)
async def load_sample(request: Request, who: Admin, uploads: Jobs, wait: Wait = False, activate: Activate = True):
    guard = request.app.state.guard
    if (await request.body()).strip():  # {"activate": false} here was ignored, and the sample served
        raise invalid("body", None, "The sample takes no body: ?wait=true and ?activate=false go in the query "
                      "string.", list(UPLOAD_QUERY))
    uploads.check_keep(activate)
    guard.limit(guard.uploads, who.name, "uploads")
    rec = await run_in_threadpool(uploads.submit_file, FilePath(str(SAMPLE)), "sample_games.csv", "sample", who.name,
                                  None, activate)
    return await _answer(request, uploads, rec, wait)


@router.get("", summary="Upload history, newest first", response_model=answers.Uploads,
            dependencies=[Depends(NO_QUERY)])
def list_uploads(uploads: Jobs, who: Caller):
    return {"uploads": [shown_to(who, rec) for rec in uploads.list()], "states": uploads.states()}


@router.get("/{upload_id:int}", summary="One upload: state, progress, result", response_model=answers.Upload,
            dependencies=[Depends(NO_QUERY)])
def get_upload(upload_id: UploadId, uploads: Jobs, who: Caller):
    return shown_to(who, uploads.get(upload_id))


@router.post("/{upload_id:int}/activate", summary="Make a kept older version the active dataset",
             dependencies=[*Writes, Depends(admin), Depends(NO_QUERY)], response_model=answers.Upload)
def activate(upload_id: UploadId, uploads: Jobs, _: Admin):
    rec = uploads.get(upload_id)  # 404 for an unknown id
    if rec["state"] != "succeeded":  # a running upload's table may exist for a moment before its switch
        raise GameLensError("upload_not_succeeded", f"Upload {upload_id} is {rec['state']}; only the data of a "
                            "succeeded upload can be activated.", 409, param="id", value=upload_id)
    uploads.versions.activate(upload_id)
    return uploads.get(upload_id)
