"""The physical design of a dataset version's table, in one place: its settings, its indexes, and
how a load writes it (store.py renders them into statements). Each choice names the benchmark line
that justifies it (`python bench/physical.py 500` builds the table both ways from the same file and
prints those lines).

A version's table is written once, by one load, and then only read:
- `index_granularity = 1024` (default 8192): a page reads its rows' granules, and one granule of
  this table holds ~1 KB descriptions, so smaller granules read less for a page
  [bench line "page, all fields" and "page sorted by reviews"].
- `min_compress_block_size = 8192` (default 65536): a page sorted by anything but app_id reads
  its 51 rows from ~50 granules of every column, and each of them decompressed a 64 KB block; a
  column of small numbers holds 4 KB per granule, so 8 KB blocks decompress a granule or two. The
  first page sorted by `-positive,name` at 500 MB: 113.9 -> 92.1 ms on the engine, for +3.6 %
  on disk; scans unchanged [bench lines "sorted page, every field" and "bytes on disk", column
  "64 KB blocks, no indexes" against "finished, no indexes"].
- `max_compress_block_size = 131072` (default 1 MB): a granule of the descriptions holds ~1.3 MB and
  one of the packed fields ~470 KB, so each was cut into blocks of up to 1 MB. A page's row is read
  from its granule's start through its own block, and a scan passes every block through the CPU's
  caches: blocks of 128 KB read less for a row and stay in the caches. At 500 MB, `python bench/
  query.py 500` three times each, interleaved with the code before, p95 ms over HTTP: the deep offset
  page 47.5-49.7 -> 43.8-51.1 (p50 43.3-44.1 -> 40.5-42.5), the deep keyset page 41.3-43.5 -> 37.7-40.5,
  `é` 83.2-92.3 -> 65.2-71.8, `co-op` 88.6-95.5 -> 77.9-80.5 [docs/measured.md, thirty-fourth pass];
  the packed fields take 28.6 MB on disk against 20.2 (LZ4 of smaller blocks); smaller columns hold
  less than 128 KB a granule and are not cut [bench/physical.py column "1 MB blocks at most, no
  indexes" against "finished, no indexes", lines "middle page sorted by -positive,name" and
  "description scan: ..."]. Versions written before keep their blocks.
- every part in LZ4 (CODEC_SETTING): the engine's own default writes a part it expects to reach 100 MB in
  ZSTD(3) (ClickHouse pull request 108786; by hand, one merged part of 100 MB came out in LZ4, one of 200 MB
  in ZSTD(3)), so the finishing merge of a 500 MB version stored every column but the description that way,
  and reads spent up to twice as long decompressing it. At 500 MB, engine alone, two runs: the page sorted by
  reviews 14.1 -> 8.1 and 12.1 -> 9.6 ms, the middle page sorted by `-positive,name` 81.2 -> 71.1 and 90.2 ->
  66.0, the summary's overview 17.8 -> 15.7 and 17.4 -> 15.6, the first page of every field 42.2 -> 26.1 and
  34.5 -> 34.8 [bench/physical.py column "ZSTD(3) parts, no indexes" against "finished, no indexes"]; a
  finished version 523.2 -> 554.0 MB on disk (+5.9 %, most of it the packed column), finished in 7.3 -> 6.4 s
  [its table "finishing peak RSS", last line against the first]. Over HTTP, `python bench/query.py 500`
  interleaved with the code before, p95 ms: the segment summary 63.5 -> 49.1, the deep keyset page 41.1 ->
  34.0, the multi-key sort 38.7 -> 32.3 [docs/measured.md, thirty-eighth pass]. Declared by the merge
  that writes the one large part (Store.merge; the load's parts are small), so also for a table an earlier
  release loaded but did not merge; versions an earlier release finished keep their codec.
- `about_the_game` is stored uncompressed (CODECS): a needle the text index cannot take whole reads
  every description, and decompressing them was a third of its time. At 500 MB, engine alone: the scan
  for `co-op` 114.0 -> 85.9 ms, for `é` 116.6 -> 76.1; pages sorted by another key unchanged within
  their spread [bench column "LZ4 descriptions, no indexes" against "finished, no indexes", lines
  "description scan: ..." and "sorted page, every field"]. LZ4 saves little on real descriptions: the
  real sample's 100 take 130,311 bytes, 85,966 in LZ4 (1.52x) [bench line "the real sample's
  descriptions"]. The generated files repeat the sample's descriptions, which LZ4 shrinks ~8x: there a
  500 MB version without its indexes takes 425 MB on disk against 49 [bench line "bytes on disk"].
- no merges while loading (`max_bytes_to_merge_at_*_space_in_pool = 1`): merges running beside
  the INSERT were where a load's memory went [bench line "load peak RSS"]. A load writes many
  small parts (one per insert block, see INSERT_SETTINGS).
- right after the switch, one `OPTIMIZE ... FINAL` merges them into one part, vertically (a column
  at a time, small blocks). One part answers several times faster than fifty (every statement opens
  every part; a text index's dictionary is scanned per part) [bench lines "one part vs the load's
  parts"]; building indexes at insert doubled a load's time.
- then `name`'s sort rank is stored (`_rank_name`, RANKED; Store.build_rank): equal names share a
  rank and ranks follow the names' byte order, so a page sorted by name sorts numbers. A page deep
  in the order spent a third of its time comparing strings: at 500 MB the middle page sorted by
  `-positive,name` 95.1 -> 62.6 ms, by `name` 77.0 -> 57.2, the first page the same (53.3, 52.1);
  0.2 s more to finish [bench table "sorted by name"]. Readers use it once
  the column is there (Snapshot.ranks); versions without it sort by the text, with the same answers,
  until the next start ranks them (Versions.rank_and_pack: earlier releases' versions, failed builds).
- then every field a page returns but the description is stored once more, as one JSON array per game
  (PACKED; Store.build_packed): a page sorted by another key reads its 51 rows from ~50 granules of
  every column it returns, ~1 ms per column, while this one column costs ~7 ms. At 500 MB, engine
  alone, pages of every field: the first sorted by `-positive,name` 41.1 -> 29.7 ms, the middle one
  54.1 -> 47.0, the first by `-rating` 44.6 -> 31.8, one in the table's order (`price=19.99`) 12.2 ->
  8.7; +20.1 MB on disk (+4.7 %), written in 0.9 s [bench table "every field"]. The description stays
  out: it is most of the table's bytes. Readers use it once it is there
  (Snapshot.packed), from PACK_FROM fields up (query/rows.py); versions without it read the columns,
  with the same answers, until the next start packs them (Versions.rank_and_pack).
- then each element of the lists of few elements (tags, genres, categories, languages) gets the bitmap
  of its games' rows (`_row`), in a table of the version's own (ELEMENT_LISTS, elements_table;
  Store.build_elements): a segment's top tags and genres, and its facets of those lists, AND its rows'
  bitmap with each element's instead of reading every list of the segment [bench/segments.py lines
  "top tags and genres"; 0.12 s and 6.6 MB at 500 MB, its last line]. Readers use it once it is there
  (Snapshot.elements); before that (earlier releases' versions, a failed build), the same answers come
  from the lists, until the next start builds it (Versions.rank_and_pack). The table goes with its
  version (Store.drop_version).
- then each text index is declared and written on that part, one at a time above
  ONE_PASS_INDEXES_BYTES (below it, all of them in two statements: one ADD, one MATERIALIZE), and
  the engine's freed memory is handed back between steps (Engine.release_memory): the merge no
  longer carries the indexes' dictionaries beside its columns. At 500 MB: peak +273 MB over the RSS before the load
  against +391 with the indexes built in the merge, 9.3 s against 11.1 [bench line "finishing peak
  RSS"]; by hand before that line existed, +265-291 against +380-384 MB.
- text indexes: `name` and `about_the_game` split into lower-case words answer `ILIKE '%word%'`
  from the index (a dictionary scan, from 2 letters: engine.READ_TUNING); a needle that is not one
  run of letters and digits is served by its runs and then checked whole (query/filters.word_runs);
  one with no such run (`é`) is scanned, with the same answer; list columns by element answer
  `has`, `hasAny` [bench lines "description substring", "name substring", "tag has"]. Until they
  are built, answers are the same, slower.
"""

from __future__ import annotations

import hashlib

from .. import schema
from ..engine import ident

TABLE_SETTINGS = {
    "index_granularity": 1024,
    "min_compress_block_size": 8192,
    "max_compress_block_size": 131072,
    "max_bytes_to_merge_at_max_space_in_pool": 1,
    "max_bytes_to_merge_at_min_space_in_pool": 1,
    "vertical_merge_algorithm_min_rows_to_activate": 1,
    "vertical_merge_algorithm_min_columns_to_activate": 1,
    "merge_max_block_size": 2048,
}
# Every part in LZ4 (see the docstring), named only on a server that has the setting (ClickHouse 25.4 on):
# the releases before it wrote every part in LZ4 anyway, and refuse a setting they do not know.
CODEC_SETTING = ("default_compression_codec", "'LZ4'")
# Columns stored with a codec other than the table's LZ4 (CODEC_SETTING); see the docstring.
CODECS = {"about_the_game": "NONE"}

# Merges allowed again for the one OPTIMIZE after the switch (ClickHouse's defaults).
MERGE_SETTINGS = {
    "max_bytes_to_merge_at_max_space_in_pool": 161061273600,
    "max_bytes_to_merge_at_min_space_in_pool": 1048576,
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


# Text columns sorted by a stored rank (Store.build_rank): `_rank_<column>`, hidden like `_row`.
RANKED = ("name",)


def rank_column(column: str) -> str:
    return f"_rank_{column}"


# The fields of PACKED, in the order of its arrays: what a page returns but the description (too big to
# hold twice) and the computed fields (their expressions take a setting, GAMELENS_REVIEW_MULTIPLE).
UNPACKED = ("about_the_game",)
PACKED_FIELDS = tuple(name for name in schema.output_names()
                      if name not in UNPACKED and not (name in schema.BY_NAME and schema.BY_NAME[name].virtual))


def packed_value(name: str) -> str:
    """A packed field as the packing formats it. A mutation formats with the server's own settings, not
    the statement's (engine.JSON_SETTINGS do not reach it), and some ClickHouse releases quote 64-bit
    integers in JSON by default: those go in as Float64, which prints a whole number as a page's
    statement prints the integer (`reviews` stays far under 2^53). Store.build_packed checks the rest."""
    col = schema.BY_NAME.get(name)
    if col is not None and col.ch_type in ("UInt64", "Int64"):
        return f"toFloat64({ident(name)})"
    return ident(name)


PACKED_VALUES = tuple(packed_value(name) for name in PACKED_FIELDS)
# The column is named for what it packs and how: a release that packs other fields (or packs them
# otherwise) adds a column of its own name, so no reader ever takes one column's arrays for another's.
PACKED = "_packed_" + hashlib.sha1(",".join(("JSONCompactEachRow", *PACKED_VALUES)).encode()).hexdigest()[:8]
# Rows of a new packed column compared with the same arrays formatted by a read (Store.build_packed):
# a setting that formats them otherwise does so in every row.
PACK_CHECK_ROWS = 1000

# The lists whose elements' games are stored as bitmaps of their rows (Store.build_elements), in a table of
# the version's own (elements_table): a segment's top elements of these lists (the summary's top tags and
# genres, a facet under filters, the series of top=N) are then one statement that reads the segment's rows,
# not its lists [`python bench/segments.py 500`, lines "top tags and genres"]. Every list whose elements are
# few (LowCardinality, as query/filters.by_elements): studios are many, and no summary lists them.
ELEMENT_LISTS = ("tags", "genres", "categories", "supported_languages")
# Its mark among a version's derived parts (Store.derived): the table is there, and its comment names every
# list of ELEMENT_LISTS. Releases 031593a to 010e1e4 stored tags and genres only, and none wrote a comment: a
# start completes such a table (Store.build_elements); until then its version's lists are read.
ELEMENTS = "_elements"
ELEMENTS_COMMENT = "lists:" + ",".join(ELEMENT_LISTS)


def elements_table(version: str) -> str:
    """The table of a version's element bitmaps: named apart from every `games_v…`, `stage_…` and
    `upgrade_…` table (the catalogue's holdings are those)."""
    return f"elements_{version}"


# What a finish adds after the merge (Versions.finish), each used once it is there: columns of the
# version's table, and its table of element bitmaps.
DERIVED = (*(rank_column(c) for c in RANKED), PACKED, ELEMENTS)


INDEXES = {f"i_{c.name}": (c.name, _index_type(c)) for c in schema.STORED_COLUMNS if _index_type(c)}

# A part this small (compressed) has all its text indexes written together (one ADD, one MATERIALIZE):
# each statement has a fixed cost (20-40 ms even for 10 rows, waited for in turn), while a small part's indexes need
# little memory. At 10 rows the finish took 0.15-0.18 s against 0.22-0.45 (by hand, three uploads
# each way); at 50 MB the index phase and its peak did not change (`python bench/ingest.py 50`, two
# runs each way: 722, 844 -> 728, 691 ms; +77, +77 -> +76, +81 MB). A larger part has them written one
# at a time, which bounds the finishing peak (above). The brief's 50 MB CSV is stored in 42-43 MB, so
# the line sits ~1.5x above the largest part measured in one pass: not measured between 43 and 64 MB.
ONE_PASS_INDEXES_BYTES = 64 << 20


def index_passes(stored_bytes: int) -> list[list[str]]:
    """The text indexes of a part of `stored_bytes`, grouped into the passes that write them."""
    if stored_bytes <= ONE_PASS_INDEXES_BYTES:
        return [list(INDEXES)]
    return [[index] for index in INDEXES]
