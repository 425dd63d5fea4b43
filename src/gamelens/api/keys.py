"""Key management routes (admins only)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ..keys import KeyStore
from . import answers
from .auth import admin, writer
from .deps import NO_QUERY

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], dependencies=[Depends(admin), Depends(NO_QUERY)])


def get_keys(request: Request) -> KeyStore:
    return request.app.state.guard.keys


class KeyRequest(BaseModel):
    name: str = Field(..., max_length=64, examples=["alice"])
    role: Literal["reader", "admin"] = "reader"


@router.post("", status_code=201, summary="Create a key (shown once)", dependencies=[Depends(writer)],
             response_model=answers.NewKey)
def create_key(body: KeyRequest, keys: Annotated[KeyStore, Depends(get_keys)]):
    return keys.create(body.name, body.role)


@router.get("", summary="List keys (names, roles, hints; never the keys)", response_model=answers.Keys)
def list_keys(keys: Annotated[KeyStore, Depends(get_keys)]):
    return {"keys": keys.list()}


@router.delete("/{name}", summary="Revoke a key", dependencies=[Depends(writer)], response_model=answers.Key)
def revoke_key(name: str, keys: Annotated[KeyStore, Depends(get_keys)]):
    return keys.revoke(name)
