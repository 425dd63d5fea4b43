"""Health, readiness."""

import logging
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse

from ..engine import Engine
from ..errors import GameLensError
from ..observe import metrics_text
from ..store import Store
from . import answers
from .auth import principal
from .deps import get_engine

log = logging.getLogger(__name__)
router = APIRouter(tags=["meta"])


# Probes answer while every thread of the pool the sync routes share is busy (a burst of slow reads):
# /healthz needs no thread, /readyz's one query has threads of its own.
PROBE_THREADS = anyio.CapacityLimiter(2)


@router.get("/healthz", summary="The process is alive", response_model=answers.Status)
async def healthz():
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics (needs a key)", dependencies=[Depends(principal)],
            response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def metrics():
    return Response(metrics_text(), media_type="text/plain; version=0.0.4")


@router.get("/readyz", summary="The database answers", response_model=answers.Status)
async def readyz(engine: Annotated[Engine, Depends(get_engine)]):
    try:
        await anyio.to_thread.run_sync(Store(engine).ping, limiter=PROBE_THREADS)
    except Exception:  # whatever the cause, it is logged; the answer says only "not ready"
        log.warning("readiness check failed", exc_info=True)
        raise GameLensError("not_ready", "The database does not answer.", 503) from None
    return {"status": "ready"}
