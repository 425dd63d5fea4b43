"""The physical design of a version's table (src/gamelens/ingest/physical.py), choice by choice, on
the engine alone (chDB), from the same generated file, in the same run.

    python bench/physical.py 500

1. "load peak RSS": GameLens's loader with physical.INSERT_SETTINGS and merges off, against the
   engine's default insert blocks and parse chunks with merges on; each in a fresh process.
2. Then, from one load, eight tables: as loaded (many parts, no index), finished (one part, the
   name's sort rank and the text indexes, as GameLens serves it), finished without indexes, finished with the default
   granularity (8192), finished without indexes with the engine's default compression blocks
   (64 KB, against 8 KB), finished without indexes with blocks of up to the engine's default 1 MB
   (against 128 KB), and finished without indexes with the descriptions in the engine's default
   codec (LZ4, against none), and finished without indexes with every part in ZSTD(3) (the engine's
   codec for a part of 100 MB or more, against LZ4); each query is timed on them (median of 7,
   condition cache off), and the bytes of their active parts on disk are summed. Also: what LZ4 saves
   on the real sample's descriptions.
3. On the finished table: `rating` stored at load (as GameLens does) against the same formula
   computed by the query from `positive` and `negative`; pages sorted by `name` through its
   stored rank (physical.RANKED, as GameLens sorts a finished version) against the text itself; and
   pages of every field read from the packed column (physical.PACKED, written then, as a finish does)
   against their columns (the pages of item 2 read the columns).
4. "finishing peak RSS": the loaded table finished as GameLens does (versions.finish: one merge, then
   each index written on its own, the allocator's freed pages released between steps) against the
   indexes built in the merge (declared before one OPTIMIZE FINAL), and against GameLens's finish without
   physical.CODEC_SETTING (the engine's ZSTD(3) for the merged part); each in a fresh process, peak RSS
   over that process's RSS before it loaded the same file, and the finished version's bytes on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import SAMPLE, generate  # noqa: E402
from harness import OUT  # noqa: E402

LOAD = r"""
import json, os, sys, threading, time
import psutil
from gamelens.engine import Engine
from gamelens.ingest import load, physical
from gamelens.ingest.download import open_file
from gamelens.settings import Settings
from gamelens.store import Store
mode = sys.argv[3]
if mode == "defaults":  # the engine's own insert blocks and parse chunks, merges on
    for k in physical.INSERT_SETTINGS:
        load.CSV_SETTINGS.pop(k, None)
    for k in ("max_bytes_to_merge_at_max_space_in_pool", "max_bytes_to_merge_at_min_space_in_pool"):
        physical.TABLE_SETTINGS.pop(k, None)
s = Settings(data_dir=sys.argv[1], database="b", max_upload_mb=100000, query_timeout_s=600)
e = Engine(s, pool_size=2)
Store(e).create_database()
proc = psutil.Process(os.getpid())
peak = [proc.memory_info().rss]
def sample():
    while True:
        peak[0] = max(peak[0], proc.memory_info().rss); time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
idle = proc.memory_info().rss
t = time.perf_counter()
with open_file(sys.argv[2], s) as stream:
    r = load.load(e, 1, stream, 0)
took = time.perf_counter() - t
parts = e.select("SELECT count() FROM system.parts WHERE database = 'b' AND active", readonly=False).scalar()
e.execute("RENAME TABLE b.stage_1 TO b.loaded")
print(json.dumps({"seconds": took, "peak_mb": (peak[0] - idle) / 2**20, "parts": parts, "rows": r.rows}),
      flush=True)
os._exit(0)  # chDB's own shutdown can crash once the sampler thread is running (SIGSEGV seen once)
"""

TABLES = r"""
import json, statistics, sys, time
from gamelens.engine import Engine
from gamelens.ingest import physical
from gamelens.query import build, rows, summary
from gamelens.settings import Settings
from gamelens.store import Store
# The condition cache off as the docstring says (a read's own settings cannot turn it off: the server's win).
e = Engine(Settings(data_dir=sys.argv[1], database="b", query_timeout_s=600, query_condition_cache=False), pool_size=1)
ddl = e.select("SELECT create_table_query FROM system.tables WHERE database = 'b' AND name = 'loaded'",
               readonly=False).scalar()
def copy(name, finish, granularity=1024, indexes=True):
    e.execute(ddl.replace("b.loaded", f"b.{name}").replace("index_granularity = 1024",
                                                              f"index_granularity = {granularity}"))
    e.execute(f"ALTER TABLE b.{name} ATTACH PARTITION tuple() FROM b.loaded")
    if finish:
        t = time.perf_counter()
        store = Store(e)
        store.merge(name)
        for column in physical.RANKED if indexes else ():  # as versions.finish does
            store.build_rank(name, column)
        for passes in physical.index_passes(store.stored_bytes(name)) if indexes else ():
            store.build_indexes(name, passes)
        return time.perf_counter() - t
tables = {"as loaded": "loaded"}
finish_s = copy("finished", True)
tables["finished (GameLens)"] = "finished"
copy("noindex", True, indexes=False)
tables["finished, no indexes"] = "noindex"
# A table of the finished rows (without the rank column) whose DDL has `old` replaced by `new`, merged into
# one part as a finish merges (Store.merge: in LZ4), or in `codec`.
def rebuilt(name, old="", new="", rows="SELECT * FROM b.noindex", codec=None):
    assert old in ddl, old
    e.execute(ddl.replace("b.loaded", f"b.{name}").replace(old, new))
    e.execute(f"INSERT INTO b.{name} {rows}")
    if codec is None:
        Store(e).merge(name)
        return name
    e.execute(f"ALTER TABLE b.{name} MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 161061273600, "
              f"default_compression_codec = '{codec}'")
    e.execute(f"OPTIMIZE TABLE b.{name} FINAL")
    return name
tables["granularity 8192"] = rebuilt("g8192b", "index_granularity = 1024", "index_granularity = 8192")
# The engine's default compression blocks (64 KB) against physical.TABLE_SETTINGS' 8 KB.
tables["64 KB blocks, no indexes"] = rebuilt("blocks64", "min_compress_block_size = 8192",
                                             "min_compress_block_size = 65536")
# Blocks of the engine's default size at most (1 MB) against physical.TABLE_SETTINGS' 128 KB.
tables["1 MB blocks at most, no indexes"] = rebuilt("max1mb", "max_compress_block_size = 131072",
                                                    "max_compress_block_size = 1048576")
# The descriptions in the engine's default codec (LZ4) against physical.CODECS' uncompressed.
tables["LZ4 descriptions, no indexes"] = rebuilt("lz4", " CODEC(NONE)", "",
                                                 "SELECT * EXCEPT _rank_name FROM b.finished")
# Every part in ZSTD(3), as the engine writes a part of 100 MB or more, against physical.CODEC_SETTING's LZ4.
tables["ZSTD(3) parts, no indexes"] = rebuilt("zstd", codec="ZSTD(3)")
half = str(e.select("SELECT count() FROM b.finished").scalar() // 2)
QUERIES = {
    "description substring": ([("about_the_game", "zombie")], "count"),
    "name substring": ([("name", "bowl")], "count"),
    "tag has": ([("tags__has", "Horror")], "count"),
    "date range": ([("release_date__gte", "2020-01-01"), ("release_date__lt", "2021-01-01")], "count"),
    "page, all fields": ([("price", "19.99")], "page"),
    "page sorted by reviews": ([("sort", "-reviews"), ("fields", "name,price,reviews,rating,genres")], "page"),
    # The same sorted page with every field and with its sort key only: what materialising the other
    # columns of 51 scattered rows costs (lazily, after the sort: see EXPLAIN's JoinLazyColumnsStep).
    "sorted page, every field": ([("sort", "-positive,name")], "page"),
    "sorted page, app_id only": ([("sort", "-positive,name"), ("fields", "app_id")], "page"),
    "middle page sorted by -positive,name": ([("sort", "-positive,name"), ("offset", half)], "page"),
    # Needles that read every description where there is no text index (and, for `co-op` and `é`,
    # where there is: see query/filters.word_runs).
    "description scan: co-op": ([("about_the_game", "co-op")], "count"),
    "description scan: é": ([("about_the_game", "é")], "count"),
    # The segment summary's overview (counts, quantiles, averages and sums of its numbers): a scan of numbers.
    "summary overview, price__lt=5": ([("price__lt", "5")], "overview"),
}
def timed(sql, params):
    xs = []
    for _ in range(7):
        r = e.select(sql, {"review_multiple": 30.0, **params})
        xs.append(r.stats["elapsed_ms"])
    return statistics.median(xs)
out = {"finish_s": finish_s, "parts": {}, "queries": {}, "bytes": {}}
for label, t in tables.items():
    out["parts"][label], out["bytes"][label] = e.select(
        "SELECT count(), sum(data_compressed_bytes) FROM system.parts WHERE database = 'b' "
        f"AND table = '{t}' AND active", readonly=False).rows[0]
for q, (items, what) in QUERIES.items():
    req = rows.parse(items)
    row = {}
    for label, t in tables.items():
        if what == "count":
            sql, params = build.count_sql(req.where, f"b.{t}")
        elif what == "overview":
            sql, params = summary.statements(req.where, f"b.{t}")["overview"]
        else:
            sql, params = rows.rows_sql(req, f"b.{t}")
        row[label] = timed(sql, params)
    out["queries"][q] = row
# rating stored at load, against its formula computed by the query (schema's SQL, inlined).
from gamelens import schema
reviews = f"({schema.BY_NAME['reviews'].stored})"
score = f"({schema.BY_NAME['review_score'].stored.replace('`reviews`', reviews)})"
rating = schema.BY_NAME["rating"].stored.replace("`review_score`", score).replace("`reviews`", reviews)
DERIVED = {
    "page sorted by rating": "SELECT app_id, name, {r} AS r FROM b.finished "
                             "ORDER BY r DESC NULLS LAST, app_id LIMIT 51",
    "count rating >= 0.8": "SELECT count() FROM b.finished WHERE {r} >= 0.8",
    "avg rating per genre": "SELECT arrayJoin(genres) AS g, avg({r}) FROM b.finished GROUP BY g",
}
out["derived"] = {q: {"stored": timed(sql.format(r="`rating`"), {}), "query time": timed(sql.format(r=rating), {})}
                  for q, sql in DERIVED.items()}
# Text sorted by its stored rank (physical.RANKED) against the text itself, on the finished table.
RANKED = {
    "first page sorted by -positive,name": [("sort", "-positive,name")],
    "middle page sorted by -positive,name": [("sort", "-positive,name"), ("offset", half)],
    "middle page sorted by name": [("sort", "name"), ("offset", half)],
}
ranks = frozenset(physical.rank_column(c) for c in physical.RANKED)
out["ranked"] = {}
for q, items in RANKED.items():
    req = rows.parse(items)
    req.limit += 1  # as the page asks
    text = timed(*rows.rows_sql(req, "b.finished"))
    req.ranks = ranks
    out["ranked"][q] = {"rank": timed(*rows.rows_sql(req, "b.finished")), "text": text}
# Pages of every field from the packed column against the columns themselves, on the finished table.
t = time.perf_counter()
Store(e).build_packed("finished")
out["pack_s"] = time.perf_counter() - t
out["pack_bytes"] = e.select(
    "SELECT sum(data_compressed_bytes) FROM system.columns WHERE database = 'b' AND table = 'finished' "
    "AND name = {c:String}", {"c": physical.PACKED}, readonly=False).scalar()
PACKED = {
    "page, all fields (price=19.99)": [("price", "19.99")],
    "first page sorted by -positive,name": [("sort", "-positive,name")],
    "middle page sorted by -positive,name": [("sort", "-positive,name"), ("offset", half)],
    "first page sorted by -rating": [("sort", "-rating")],
    "middle page sorted by -rating": [("sort", "-rating"), ("offset", half)],
}
out["packed"] = {}
for q, items in PACKED.items():
    req = rows.parse(items)
    req.limit += 1  # as the page asks
    req.ranks = ranks
    columns = timed(*rows.rows_sql(req, "b.finished"))
    req.packed = True
    out["packed"][q] = {"packed": timed(*rows.rows_sql(req, "b.finished")), "columns": columns}
# How much LZ4 saves on real descriptions: the published sample's, in a table of their own.
e.execute("CREATE TABLE b.sample (about String) ENGINE = MergeTree ORDER BY tuple() "
          "SETTINGS min_bytes_for_wide_part = 0")
e.execute("INSERT INTO b.sample SELECT `About the game` FROM file({path:String}, 'CSVWithNames')",
          {"path": sys.argv[2]})
out["sample"] = e.select("SELECT sum(data_uncompressed_bytes), sum(data_compressed_bytes) FROM system.parts "
                         "WHERE database = 'b' AND table = 'sample' AND active", readonly=False).rows[0]
print(json.dumps(out))
"""

# GameLens's finish without physical.CODEC_SETTING: the version's part in the engine's default codec (ZSTD(3)).
ZSTD = "GameLens without its LZ4 setting (the engine's ZSTD(3))"

# Load the file, then finish the table one way; peak RSS of the finish over the RSS before the load
# (what bench/ingest.py's "finishing peak - idle" counts in a server).
FINISH = r"""
import json, os, sys, threading, time
import psutil
from gamelens.engine import Engine, ident
from gamelens.ingest import load, physical
from gamelens.ingest.download import open_file
from gamelens.ingest.versions import Versions
from gamelens.settings import Settings
from gamelens.store import SYNC, Store
if "ZSTD" in sys.argv[3]:  # the table declares no codec: the engine's default picks ZSTD(3) for the merged part
    physical.CODEC_SETTING = ("no_such_setting", "''")
s = Settings(data_dir=sys.argv[1], database="gamelens", max_upload_mb=100000, query_timeout_s=600)
e = Engine(s, pool_size=2)
store = Store(e)
store.create_database()
proc = psutil.Process(os.getpid())
before = proc.memory_info().rss
with open_file(sys.argv[2], s) as stream:
    load.load(e, 1, stream, 0)
e.execute("RENAME TABLE gamelens.stage_1 TO gamelens.games_v1")
if sys.argv[3] != "in the merge":
    e.release_memory()  # as the upload worker does after a load
peak = [proc.memory_info().rss]
def sample():
    while True:
        peak[0] = max(peak[0], proc.memory_info().rss); time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
if sys.argv[3] == "in the merge":
    added = ", ".join(f"ADD INDEX {i} {ident(c)} TYPE {k}" for i, (c, k) in physical.INDEXES.items())
    e.execute(f"ALTER TABLE gamelens.games_v1 {added}", settings=SYNC)
    store.merge("games_v1")
else:
    Versions(e).finish(1)
took = time.perf_counter() - t
on_disk = e.select("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'gamelens' AND "
                   "table = 'games_v1' AND active", readonly=False).scalar()
print(json.dumps({"seconds": took, "peak_mb": (peak[0] - before) / 2**20, "mb": on_disk / 1e6}), flush=True)
os._exit(0)  # chDB's own shutdown can crash once the sampler thread is running; the figures are out
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(mb: float) -> None:
    path = OUT / f"games_{mb:g}mb.csv"
    if not path.exists():
        generate(mb, path)
    print(f"\n{mb:g} MB\n\n| load peak RSS | seconds | RSS over idle MB | parts |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as ours, tempfile.TemporaryDirectory() as theirs:
        mine = child(LOAD, ours, str(path), "gamelens")
        default = child(LOAD, theirs, str(path), "defaults")
        for label, r in (("GameLens (physical.INSERT_SETTINGS, no merges)", mine),
                         ("engine defaults, merges on", default)):
            print(f"| {label} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['parts']} |")
        res = child(TABLES, ours, str(SAMPLE))
    labels = list(res["parts"])
    print(f"\nfinishing (one merge, then each index): {res['finish_s']:.1f} s")
    print("\n| one part vs the load's parts, ms | " + " | ".join(f"{k} ({res['parts'][k]} parts)" for k in labels)
          + " | as loaded / finished |")
    print("|---" * (len(labels) + 2) + "|")
    for q, row in res["queries"].items():
        print(f"| {q} | " + " | ".join(f"{row[k]:.1f}" for k in labels)
              + f" | {row['as loaded'] / row['finished (GameLens)']:.2f} |")
    print("| bytes on disk (MB) | " + " | ".join(f"{res['bytes'][k] / 1e6:.1f}" for k in labels) + " | |")
    raw, lz4 = res["sample"]
    print(f"\nthe real sample's descriptions: {raw:,} bytes, {lz4:,} in LZ4 ({raw / lz4:.2f}x); descriptions "
          "stored uncompressed: column \"finished, no indexes\" against \"LZ4 descriptions, no indexes\"")
    print("\n| finishing peak RSS | seconds | peak RSS over the RSS before the load, MB | the version on disk, MB |"
          "\n|---|---|---|---|")
    for way in ("GameLens: one merge, then each index on its own, memory released between steps", "in the merge",
                ZSTD):
        with tempfile.TemporaryDirectory() as d:
            r = child(FINISH, d, str(path), way)
        print(f"| {way} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['mb']:.1f} |")
    print("\n| rating, ms | stored at load | computed by the query | query time / stored |\n|---|---|---|---|")
    for q, row in res["derived"].items():
        print(f"| {q} | {row['stored']:.1f} | {row['query time']:.1f} | {row['query time'] / row['stored']:.2f} |")
    print("\n| sorted by name, ms | by its stored rank | by the text | text / rank |\n|---|---|---|---|")
    for q, row in res["ranked"].items():
        print(f"| {q} | {row['rank']:.1f} | {row['text']:.1f} | {row['text'] / row['rank']:.2f} |")
    print(f"\npacked fields: written in {res['pack_s']:.1f} s, {res['pack_bytes'] / 1e6:.1f} MB on disk "
          f"({res['pack_bytes'] / res['bytes']['finished (GameLens)']:.1%} of the finished table)")
    print("\n| every field, ms | packed column | columns | columns / packed |\n|---|---|---|---|")
    for q, row in res["packed"].items():
        print(f"| {q} | {row['packed']:.1f} | {row['columns']:.1f} | {row['columns'] / row['packed']:.2f} |")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 500)
