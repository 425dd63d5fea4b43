"""Health, readiness."""

from typing import Annotated

from fastapi import APIRouter, Depends

from ..engine import Engine
from ..errors import GameLensError
from .deps import get_engine

router = APIRouter(tags=["meta"])


@router.get("/healthz", summary="The process is alive")
def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers")
def readyz(engine: Annotated[Engine, Depends(get_engine)]):
    try:
        engine.ping()
    except Exception as exc:
        raise GameLensError("not_ready", f"The database does not answer: {exc}", 503) from None
    return {"status": "ready"}
