"""What a read endpoint is: one object per endpoint (rows.py, aggregate.py, summary.py, game.py) that
holds its parameters, its SQL, its answer and that answer's declared shape, its export and the
requests the page makes first (answered before a version is switched in). api/games.py routes them,
query/run.py runs them on a dataset version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .build import MAX_LIMIT

if TYPE_CHECKING:
    from ..ingest.versions import Snapshot
    from .run import Explorer

Items = list[tuple[str, str]]


class Endpoint:
    name: ClassVar[str]  # the answer cache's kind
    path: ClassVar[str]  # the route, under the API's prefix
    model: ClassVar[type[BaseModel]]  # the JSON answer's shape (query/answers.py), for OpenAPI
    openapi_params: ClassVar[list[dict]] = []  # its query-string parameters (query/openapi.py)
    timed: ClassVar[bool] = True  # its answers carry engine_ms and took_ms
    warm: ClassVar[list[Items]] = []  # the page's first requests of it (ui/main.js and its views)
    exports: ClassVar[bool] = False  # answers ?format=<export> too (query/formats.py)

    def parse(self, items: Items, accept: str | None = None, max_limit: int = MAX_LIMIT) -> Any:
        """The request from its query string; a bad parameter is a 400 whether or not there is data."""
        raise NotImplementedError

    def answer(self, reader: Explorer, req: Any, items: Items, path: str, snap: Snapshot) -> dict:
        """The JSON answer (engine_ms among its members when timed) on one version."""
        raise NotImplementedError

    # --- exports (when `exports`) ---

    export_name: ClassVar[str] = ""  # the file's name, without the format's extension
    export_settings: ClassVar[dict[str, Any]] = {}  # the engine's settings for its export statement

    def check_export(self, req: Any) -> None:
        """Refuse (400) what an export cannot do, before it takes a slot (nothing by default)."""

    def prepare_export(self, reader: Explorer, req: Any, snap: Snapshot) -> None:
        """Whatever the export's statements need found first (nothing by default)."""

    def export_count(self, req: Any, table: str) -> tuple[str, dict[str, Any]]:
        """How many rows (or groups) the export could hold."""
        raise NotImplementedError

    def export_sql(self, req: Any, table: str, limit: int) -> tuple[str, dict[str, Any]]:
        """Every row (or group) from the request's offset, at most `limit`."""
        raise NotImplementedError
