"""GET /api/v1/games/{app_id}: one game, every field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import schema
from ..engine import ident
from ..errors import GameLensError, invalid
from . import answers, openapi
from .build import MAX_LIMIT, field_sql
from .endpoint import Endpoint, Items

if TYPE_CHECKING:
    from ..ingest.versions import Snapshot
    from .run import Explorer


class Game(Endpoint):
    name, path, model = "game", "/games/{app_id}", answers.Game
    timed = False  # a game's answer is the game alone
    openapi_params = [openapi.VERSION]  # beside the route's app_id

    def parse(self, items: Items, accept: str | None = None, max_limit: int = MAX_LIMIT) -> int:
        """The path's app_id as written (the route puts it first, its range checked), in digits only as
        the filter `app_id=` takes it (the route's int also reads `20200.0` and `20_200`); any query
        parameter left is refused: its only one is `version`, taken before, and a typo would read the
        data served unsaid."""
        (_, app_id), *rest = items
        if not (app_id.isascii() and app_id.isdigit()):
            raise invalid("app_id", app_id, f"app_id: {app_id!r} is not a whole number", "a whole number")
        if rest:
            name, value = rest[0]
            raise invalid(name, value, f"Unknown parameter {name!r} for one game.", ["version"])
        return int(app_id)

    def answer(self, reader: Explorer, app_id: int, items: Items, path: str, snap: Snapshot) -> dict:
        names = schema.output_names()
        res = reader.select(snap, f"SELECT {', '.join(field_sql(n) for n in names)} FROM {snap.table} "
                            f"WHERE {ident(schema.KEY)} = {{id:UInt32}} ORDER BY {schema.ROW_COL} LIMIT 1",
                            {"id": app_id})
        if not res.rows:
            raise GameLensError("not_found", f"There is no game with app_id {app_id} in upload {snap.upload_id}'s "
                                "data.", 404, param="app_id", value=app_id)
        return dict(zip(names, res.rows[0], strict=True))


ENDPOINT = Game()
