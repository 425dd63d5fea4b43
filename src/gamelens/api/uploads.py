"""Upload routes: submit a link, follow its progress, list history, re-activate a version."""

from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..ingest.jobs import Uploads
from ..keys import Principal
from .auth import admin, principal
from .deps import get_uploads

UploadId = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[1])]
Caller = Annotated[Principal, Depends(principal)]


def shown_to(who: Principal, rec: dict) -> dict:
    """An upload record as this caller may see it: links can be signed or carry credentials, so
    reader keys see them without user info, query string or fragment; admins see them whole."""
    if who.is_admin:
        return rec
    parts = urlsplit(rec["url"])
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return {**rec, "url": urlunsplit((parts.scheme, netloc, parts.path, "", ""))}
router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"], dependencies=[Depends(principal)])


class UploadRequest(BaseModel):
    url: str = Field(..., max_length=4096, examples=["https://example.com/games.csv"])
    max_rejected_rows: int | None = Field(
        None, ge=0, le=1_000_000, description="Rows allowed to fail parsing (dropped and listed); "
        "default GAMELENS_MAX_REJECTED_ROWS.")


@router.post("", status_code=202, summary="Load a CSV from a public link")
def create_upload(
    body: UploadRequest,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(admin)],
    uploads: Annotated[Uploads, Depends(get_uploads)],
    wait: Annotated[bool, Query(description="Block until the upload ends (for scripts and curl).")] = False,
):
    guard = request.app.state.guard
    guard.limit(guard.uploads, who.name, "uploads")
    rec = uploads.submit(body.url, who.name, body.max_rejected_rows)
    location = f"/api/v1/uploads/{rec['id']}"
    if not wait:
        response.headers["Location"] = location
        return rec
    rec = uploads.wait(rec["id"])
    if rec["state"] == "failed":
        status = 413 if rec["error"]["code"] == "too_large" else 422
        return JSONResponse({"error": rec["error"], "upload": rec}, status, headers={"Location": location})
    return JSONResponse(rec, 200, headers={"Location": location})


@router.get("", summary="Upload history, newest first")
def list_uploads(uploads: Annotated[Uploads, Depends(get_uploads)], who: Caller):
    return {"uploads": [shown_to(who, rec) for rec in uploads.list()]}


@router.get("/{upload_id}", summary="One upload: state, progress, result")
def get_upload(upload_id: UploadId, uploads: Annotated[Uploads, Depends(get_uploads)], who: Caller):
    return shown_to(who, uploads.get(upload_id))


@router.post("/{upload_id}/activate", summary="Make a kept older version the active dataset")
def activate(upload_id: UploadId, uploads: Annotated[Uploads, Depends(get_uploads)],
             _: Annotated[Principal, Depends(admin)]):
    uploads.get(upload_id)  # 404 for an unknown id
    uploads.versions.activate(upload_id)
    return uploads.get(upload_id)
