"""The records GameLens keeps in ClickHouse, typed: one document per upload (table `uploads`) and
one per API key (table `api_keys`).

Each write is a new row whose `version` is the database server's clock (never this process's), so
the newest write wins whichever process made it; the times inside a record are the server's too.
Records written by earlier releases lack fields added since; they read with the defaults below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

UploadState = Literal["queued", "downloading", "loading", "succeeded", "failed", "interrupted"]
RUNNING: tuple[UploadState, ...] = ("queued", "downloading", "loading")
FINAL: tuple[UploadState, ...] = tuple(s for s in get_args(UploadState) if s not in RUNNING)
IndexState = Literal["building", "ready", "failed", "unsupported"]
# A time read from the database server's clock, written as ISO 8601 with milliseconds and its zone.
ServerTime = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(timespec="milliseconds"), when_used="json")]


class UploadRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)
    HIDDEN: ClassVar[frozenset[str]] = frozenset({"path", "writer"})  # never shown to clients

    id: int
    source: Literal["link", "file", "sample", "path"] = "link"
    url: str  # the link, or the file's name
    path: str | None = None  # where a file waits on this machine (never shown to clients)
    state: UploadState
    created_by: str | None = None
    created_at: ServerTime
    started_at: ServerTime | None = None
    finished_at: ServerTime | None = None
    bytes_received: int = 0
    bytes_expected: int | None = None
    sha256: str | None = None
    rows_loaded: int = 0
    rows_rejected: int = 0
    rejected_rows: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    timings_ms: dict[str, int] = Field(default_factory=dict)
    max_rejected_rows: int = 0
    # Serve the data once it is loaded and checked (the default). False: keep it beside the data served,
    # until POST /uploads/{id}/activate serves it (the record's `active` says which is served).
    activate: bool = True
    stored_bytes: int | None = None
    indexes: IndexState | None = None
    # Set when this version's stored data could not be brought to the current layout at a start:
    # the version is then never served (see ingest/migrations.py).
    upgrade_error: str | None = None
    # The writer lease's generation (lease.py) of the process that wrote this version of the record: a
    # fence. A record is not written over one a later generation wrote (Store.save_upload), so a writer
    # cut off from the database cannot, once it is back, overwrite what its successor recorded.
    writer: int = 0

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    def doc(self) -> str:
        return self.model_dump_json()


Role = Literal["reader", "admin"]


class KeyRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    role: Role
    hash: str  # SHA-256 of the key, hex
    hint: str  # the key's first characters, to tell keys apart
    created_at: ServerTime
    revoked_at: ServerTime | None = None

    def shown(self) -> dict:
        return self.model_dump(mode="json", exclude={"hash"})
