"""Layouts of a dataset version's table, and the ordered steps that bring an older one up to date.

Every version table records the layout it was written with in its COMMENT (`upload:<id> layout:<n>`).
Tables written before layouts were recorded carry `upload:<id>` only; their columns tell which
layout they have (`layout_of`).

    layout 1  release 421b14a: studios as text (`developers`, `publishers` String); no review columns
    layout 2  release c1d0440 and later: studios as lists; stored `reviews`, `review_score`, `rating`

At start, before serving, each kept version below LAYOUT is upgraded on a copy (`upgrade`): its parts
are attached to a new table by hard links, the steps run there, and the copy takes the version's name
in one EXCHANGE. A step that fails leaves the version exactly as it was: it is reported on its
upload record and never served. The next layout change is one more Step at the end of STEPS (and
LAYOUT moves to its number).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from .. import schema
from ..engine import Engine, ident
from ..errors import GameLensError

log = logging.getLogger(__name__)

LAYOUT = 2  # the layout this release writes
_TAGGED = re.compile(r"^upload:(\d+)(?: layout:(\d+))?$")
# A mutation (MATERIALIZE, DROP COLUMN) returns once it is done on every part.
SYNC = {"mutations_sync": 2, "alter_sync": 2}


def comment_for(upload_id: int, layout: int = LAYOUT) -> str:
    return f"upload:{int(upload_id)} layout:{int(layout)}"


def parse_comment(comment: str) -> tuple[int, int | None] | None:
    """(upload id, layout or None when untagged) of a dataset table's comment; None for other tables."""
    m = _TAGGED.match(comment or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


def layout_of(comment: str, columns: list[str]) -> int:
    """The layout of a dataset table: its tag, or for an untagged one what its columns show."""
    parsed = parse_comment(comment)
    if parsed and parsed[1] is not None:
        return parsed[1]
    return 2 if "reviews" in columns else 1


# --- the steps ------------------------------------------------------------------------------------


def _after(name: str) -> str:
    """The column a stored column follows in today's layout (so a migrated table reads like a new one)."""
    order = [c.name for c in schema.STORED_COLUMNS]
    return order[order.index(name) - 1]


def _studio_lists_and_review_columns(t: str) -> list[str]:
    """Layout 1 -> 2: studio text becomes lists (the schema's split) and the stored review columns are
    computed from their schema expressions. Each new column is added with its expression as DEFAULT,
    written to disk (MATERIALIZE), then loses the DEFAULT, so the table is like one loaded today."""
    studios, reviews = ("developers", "publishers"), ("reviews", "review_score", "rating")
    text = {n: f"{n}__text" for n in studios}
    adds = [f"ADD COLUMN {ident(n)} {schema.BY_NAME[n].ch_type} DEFAULT "
            f"{schema.BY_NAME[n].kind.parse.format(r=ident(text[n]))} AFTER {ident(text[n])}" for n in studios]
    adds += [f"ADD COLUMN {ident(n)} {schema.BY_NAME[n].ch_type} DEFAULT {schema.BY_NAME[n].stored} "
             f"AFTER {ident(_after(n))}" for n in reviews]
    new = (*studios, *reviews)
    return [
        f"ALTER TABLE {t} " + ", ".join(f"RENAME COLUMN {ident(n)} TO {ident(text[n])}" for n in studios),
        f"ALTER TABLE {t} " + ", ".join(adds),
        f"ALTER TABLE {t} " + ", ".join(f"MATERIALIZE COLUMN {ident(n)}" for n in new),
        f"ALTER TABLE {t} " + ", ".join(f"MODIFY COLUMN {ident(n)} REMOVE DEFAULT" for n in new),
        f"ALTER TABLE {t} " + ", ".join(f"DROP COLUMN {ident(text[n])}" for n in studios),
    ]


@dataclass(frozen=True)
class Step:
    to: int  # the layout a table has after this step
    what: str
    statements: Callable[[str], list[str]]  # over the quoted table


STEPS = (Step(2, "studio lists; stored review columns", _studio_lists_and_review_columns),)
assert [s.to for s in STEPS] == list(range(2, LAYOUT + 1)), "one step per layout, in order"


def upgrade_name(upload_id: int) -> str:
    return f"upgrade_{int(upload_id)}"


def upgrade(engine: Engine, table: str, upload_id: int, layout: int) -> None:
    """Bring the version table `table` (unquoted name) from `layout` to LAYOUT, atomically: the steps
    run on a copy, which replaces the table only once all of them succeeded and it holds every row.
    On any failure the copy goes and the table is untouched."""
    db = ident(engine.db)
    src, copy = f"{db}.{ident(table)}", f"{db}.{ident(upgrade_name(upload_id))}"
    if layout == LAYOUT:  # written before layouts were recorded: only the record is missing
        engine.execute(f"ALTER TABLE {src} MODIFY COMMENT {comment_for(upload_id)!r}")
        return
    engine.execute(f"DROP TABLE IF EXISTS {copy} SYNC")
    try:
        engine.execute(f"CREATE TABLE {copy} AS {src}")
        engine.execute(f"ALTER TABLE {copy} ATTACH PARTITION tuple() FROM {src}")  # hard links: no copying
        for step in STEPS:
            if step.to > layout:
                for sql in step.statements(copy):
                    engine.execute(sql, settings=SYNC)
        engine.execute(f"ALTER TABLE {copy} MODIFY COMMENT {comment_for(upload_id)!r}")
        same = engine.select(f"SELECT (SELECT count() FROM {src}) = (SELECT count() FROM {copy})",
                             readonly=False).scalar()
        if same != 1:
            raise GameLensError("upgrade_failed", "The upgraded copy does not hold every row.", 500)
        engine.execute(f"EXCHANGE TABLES {copy} AND {src}")
    finally:
        _drop_quietly(engine, copy)  # after the exchange, the old layout


def _drop_quietly(engine: Engine, table: str) -> None:
    """Drop an upgrade's copy; if that fails the upgrade still stands, and the next start drops it."""
    try:
        engine.execute(f"DROP TABLE IF EXISTS {table} SYNC")
    except GameLensError as exc:
        log.warning("dropping %s failed (%s); the next start drops it", table, exc.code)
