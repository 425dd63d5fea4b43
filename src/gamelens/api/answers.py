"""The shapes of the answers about uploads, keys and health, declared for OpenAPI (the read answers'
are in query/answers.py): records as clients see them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, create_model

from .. import records
from ..query.answers import Answer


def _shown(record: type[BaseModel], hidden: set[str] | frozenset[str]) -> dict[str, Any]:
    """A record's fields (records.py) but those never shown to clients."""
    return {name: (f.annotation, f) for name, f in record.model_fields.items() if name not in hidden}


Upload = create_model("Upload", __base__=Answer, __doc__="One upload: its state, progress and result.",
                      **_shown(records.UploadRecord, records.UploadRecord.HIDDEN),
                      active=(bool, Field(description="its version is the one served")),
                      stored=(bool, Field(description="its version is kept and can be activated")))
Key = create_model("Key", __base__=Answer, __doc__="An API key as listed: never the key itself.",
                   **_shown(records.KeyRecord, {"hash"}))


class Uploads(Answer):
    uploads: list[Upload]
    states: dict[str, list[str]] = Field(description="running and final states")


class Keys(Answer):
    keys: list[Key]


class NewKey(Answer):
    name: str
    role: records.Role
    key: str = Field(description="the key: shown this once, never stored")
    created_at: records.ServerTime


class Status(Answer):
    status: str
