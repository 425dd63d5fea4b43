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
LAYOUT moves to its number). A step that changes what a packed field holds (physical.PACKED_FIELDS)
drops the packed column (physical.PACKED) too: the next start packs the version again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import GameLensError
from ..store import Store

log = logging.getLogger(__name__)

LAYOUT = 2  # the layout this release writes
_TAGGED = re.compile(r"^upload:(\d+)(?: layout:(\d+))?$")


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


@dataclass(frozen=True)
class Step:
    to: int  # the layout a table has after this step
    what: str
    statements: Callable[[Store, str], list[str]]  # the step's statements on a (copied) table


STEPS = (Step(2, "studio lists; stored review columns", Store.studio_lists_and_review_columns),)
assert [s.to for s in STEPS] == list(range(2, LAYOUT + 1)), "one step per layout, in order"


def upgrade_name(upload_id: int) -> str:
    return f"upgrade_{int(upload_id)}"


def upgrade(store: Store, table: str, upload_id: int, layout: int) -> None:
    """Bring the version table `table` from `layout` to LAYOUT, atomically: the steps run on a copy,
    which replaces the table only once all of them succeeded and it holds every row. On any failure
    the copy goes and the table is untouched. The steps keep every row's `_row`, which the version's
    element bitmaps name (physical.elements_table): a step that changed a list column or numbered the
    rows again would have to drop them too (Store.drop_version's first drop; a start writes them again)."""
    if layout == LAYOUT:  # written before layouts were recorded: only the record is missing
        store.comment(table, comment_for(upload_id))
        return
    copy = upgrade_name(upload_id)
    store.drop(copy)
    try:
        store.copy_table(table, copy)  # hard links: no data is copied
        for step in STEPS:
            if step.to > layout:
                store.alter(copy, step.statements(store, copy))
        store.comment(copy, comment_for(upload_id))
        if not store.same_count(table, copy):
            raise GameLensError("upgrade_failed", "The upgraded copy does not hold every row.", 500)
        store.exchange(copy, table)
    finally:
        _drop_quietly(store, copy)  # after the exchange, the old layout


def _drop_quietly(store: Store, table: str) -> None:
    """Drop an upgrade's copy; if that fails the upgrade still stands, and the next start drops it."""
    try:
        store.drop(table)
    except GameLensError as exc:
        log.warning("dropping %s failed (%s); the next start drops it", table, exc.code)
