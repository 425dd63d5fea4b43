"""Dataset versions: one table per successful upload; the active one is always named `games`.

Each table carries its upload id in its COMMENT, so the catalogue itself says which version a
table holds: EXCHANGE TABLES swaps names atomically (a query sees the old or the new dataset,
never a mix or nothing), and a crash between two steps is repaired at start-up by `reconcile`.
"""

from __future__ import annotations

import re
import threading

from ..engine import Engine, ident
from ..errors import GameLensError

ACTIVE = "games"
_COMMENT = re.compile(r"^upload:(\d+)$")
# Swaps, re-activations and pruning change table names: one at a time.
lock = threading.Lock()


def comment_for(upload_id: int) -> str:
    return f"upload:{int(upload_id)}"


def stage_name(upload_id: int) -> str:
    return f"stage_{int(upload_id)}"


def version_name(upload_id: int) -> str:
    return f"games_v{int(upload_id)}"


def _holdings(engine: Engine) -> dict[str, int]:
    """table name -> upload id it holds, for every dataset table."""
    out = {}
    for name, comment in engine.tables().items():
        m = _COMMENT.match(comment or "")
        if m:
            out[name] = int(m.group(1))
    return out


def active_id(engine: Engine) -> int | None:
    return _holdings(engine).get(ACTIVE)


def stored_ids(engine: Engine) -> list[int]:
    """Upload ids whose data is kept (active first, then newest first)."""
    held = _holdings(engine)
    kept = sorted((i for n, i in held.items() if n == version_name(i)), reverse=True)
    return ([held[ACTIVE]] if ACTIVE in held else []) + kept


def _q(engine: Engine, name: str) -> str:
    return f"{ident(engine.db)}.{ident(name)}"


def swap_in(engine: Engine, upload_id: int, keep: int) -> None:
    """Make the staging table of `upload_id` the active dataset."""
    stage = stage_name(upload_id)
    with lock:
        previous = active_id(engine)
        if previous is None:
            engine.execute(f"RENAME TABLE {_q(engine, stage)} TO {_q(engine, ACTIVE)}")
        else:
            engine.execute(f"EXCHANGE TABLES {_q(engine, ACTIVE)} AND {_q(engine, stage)}")
            engine.execute(f"RENAME TABLE {_q(engine, stage)} TO {_q(engine, version_name(previous))}")
        _prune(engine, keep)


def activate(engine: Engine, upload_id: int) -> None:
    """Make a kept older version active again (the current one becomes a kept version)."""
    with lock:
        held = _holdings(engine)
        if held.get(ACTIVE) == upload_id:
            return
        if held.get(version_name(upload_id)) != upload_id:
            raise GameLensError("version_not_kept", f"Upload {upload_id} has no stored data to re-activate "
                                "(it failed, or it is older than GAMELENS_KEEP_VERSIONS).", 409,
                                param="id", value=upload_id, allowed=stored_ids(engine))
        old = _q(engine, version_name(upload_id))
        engine.execute(f"EXCHANGE TABLES {_q(engine, ACTIVE)} AND {old}")
        engine.execute(f"RENAME TABLE {old} TO {_q(engine, version_name(held[ACTIVE]))}")


def _prune(engine: Engine, keep: int) -> None:
    for upload_id in stored_ids(engine)[keep:]:
        engine.execute(f"DROP TABLE IF EXISTS {_q(engine, version_name(upload_id))} SYNC")


def drop_stage(engine: Engine, upload_id: int) -> None:
    engine.execute(f"DROP TABLE IF EXISTS {_q(engine, stage_name(upload_id))} SYNC")


def reconcile(engine: Engine, keep: int) -> None:
    """At start-up: drop half-built tables and give every kept version its proper name."""
    with lock:
        for name, upload_id in _holdings(engine).items():
            if name == ACTIVE or name == version_name(upload_id):
                continue
            if name == stage_name(upload_id):  # never swapped in: an interrupted load
                engine.execute(f"DROP TABLE IF EXISTS {_q(engine, name)} SYNC")
            else:  # swapped out, but the rename after the exchange did not happen
                engine.execute(f"RENAME TABLE {_q(engine, name)} TO {_q(engine, version_name(upload_id))}")
        for name in engine.tables():
            if name.endswith("_csv") and name.startswith("stage_"):
                engine.execute(f"DROP TABLE IF EXISTS {_q(engine, name)} SYNC")
        _prune(engine, keep)
