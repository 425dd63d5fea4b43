"""The physical design of a dataset version's table, in one place: its DDL, its indexes, and how a
load writes it. Each choice names the benchmark line that justifies it (`python bench/physical.py
500` builds the table both ways from the same file and prints those lines).

A version's table is written once, by one load, and then only read:
- `index_granularity = 1024` (default 8192): a page reads its rows' granules, and one granule of
  this table holds ~1 KB descriptions, so smaller granules read less for a page
  [bench line "page, all fields" and "page sorted by reviews"].
- no merges (`max_bytes_to_merge_at_*_space_in_pool = 1`): merging the parts a load wrote is where
  a load's memory went (+550 MB merging 500 MB); nothing is ever inserted again, and the text
  indexes below keep substring search fast on the parts as written [bench line "load peak RSS"].
- text indexes, built right after the switch (one mutation), so a load is not slowed by them
  (they doubled the INSERT's time): `name` and `about_the_game` split into lower-case words answer
  `ILIKE '%word%'` from the index (a dictionary scan; needles of letters and digits only, others are
  scanned, exactly); list columns by element answer `has`, `hasAny` [bench lines "description
  substring", "name substring", "tag has"]. Until an index is built, answers are the same, slower.
"""

from __future__ import annotations

from .. import schema
from ..engine import ident

TABLE_SETTINGS = {
    "index_granularity": 1024,
    "max_bytes_to_merge_at_max_space_in_pool": 1,
    "max_bytes_to_merge_at_min_space_in_pool": 1,
}

# How a load feeds the engine: small insert blocks and parse chunks bound its memory, since the
# engine's memory for an INSERT grows with its blocks (8 MB blocks + 2 MB chunks: +~200 MB at 500 MB;
# the defaults, 256 MB / 10 MB: +1.1 GB) [bench line "load peak RSS"]. Each block is one part.
INSERT_SETTINGS = {
    "max_insert_block_size": 16384,
    "min_insert_block_size_rows": 16384,
    "min_insert_block_size_bytes": 8 << 20,
    "min_chunk_bytes_for_parallel_parsing": 2 << 20,
}

# Words of free text: the dictionary scan serves ILIKE with a lower-case needle of letters/digits.
WORD_INDEXED = ("name", "about_the_game")


def _index_type(col: schema.Column) -> str | None:
    if col.name in WORD_INDEXED:
        return f"text(tokenizer = splitByNonAlpha, preprocessor = lower({ident(col.name)}))"
    if col.kind.filter == "list":
        return "text(tokenizer = array)"
    return None


INDEXES = {f"i_{c.name}": (c.name, _index_type(c)) for c in schema.STORED_COLUMNS if _index_type(c)}


def table_ddl(db: str, table: str, comment: str) -> str:
    cols = []
    for c in schema.STORED_COLUMNS:
        cols.append(f"{ident(c.name)} {c.ch_type}")
        if c.raw_name:
            cols.append(f"{ident(c.raw_name)} String")
    cols += [f"{schema.ROW_COL} UInt64", f"{schema.BAD_COL} Map(String, String)"]
    settings = ", ".join(f"{k} = {v}" for k, v in TABLE_SETTINGS.items())
    return (f"CREATE TABLE {ident(db)}.{ident(table)} ({', '.join(cols)}) ENGINE = MergeTree "
            f"ORDER BY {ident(schema.KEY)} SETTINGS {settings} COMMENT {comment!r}")


def index_statements(table: str) -> list[str]:
    """Add the indexes, then build them for every part in one mutation (run with mutations_sync)."""
    added = ", ".join(f"ADD INDEX IF NOT EXISTS {name} {ident(col)} TYPE {kind}"
                      for name, (col, kind) in INDEXES.items())
    built = ", ".join(f"MATERIALIZE INDEX {name}" for name in INDEXES)
    return [f"ALTER TABLE {table} {added}", f"ALTER TABLE {table} {built}"]
