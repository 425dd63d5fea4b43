"""Cross-cutting pieces routes receive as dependencies (so tests swap them without patching)."""

from fastapi import Request

from ..engine import Engine
from ..ingest.jobs import Uploads
from ..query.run import Explorer
from ..settings import Settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_uploads(request: Request) -> Uploads:
    return request.app.state.uploads


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_explorer(request: Request) -> Explorer:
    return request.app.state.explorer
