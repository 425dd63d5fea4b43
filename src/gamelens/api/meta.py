"""Health, readiness."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse

from ..engine import Engine
from ..errors import GameLensError
from ..observe import metrics_text
from .auth import principal
from .deps import get_engine

router = APIRouter(tags=["meta"])


@router.get("/healthz", summary="The process is alive")
def healthz():
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics (needs a key)", dependencies=[Depends(principal)],
            response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def metrics():
    return Response(metrics_text(), media_type="text/plain; version=0.0.4")


@router.get("/readyz", summary="The database answers")
def readyz(engine: Annotated[Engine, Depends(get_engine)]):
    try:
        engine.ping()
    except Exception as exc:
        raise GameLensError("not_ready", f"The database does not answer: {exc}", 503) from None
    return {"status": "ready"}
