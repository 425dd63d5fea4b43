"""A segment's top tags and genres (GET /games/summary over a filter): read from the lists, as versions
without element bitmaps are read, against the version's element bitmaps (physical.ELEMENT_LISTS), on the
engine alone, in the same run.

    python bench/segments.py 500

The generated file is loaded by `gamelens load` into a data directory of its own (the load ends once the
version is finished, its bitmaps written). Then, for each segment, median of REPEAT, the two sides of each
comparison taken in turn (condition cache off):
- "top tags and genres": the two statements of a version without bitmaps (top tags, top genres; the
  engine's elapsed time of each, summed) against the one statement that reads them from the bitmaps;
- "whole summary": the summary's statements side by side on two threads, as a request runs them (wall
  time): five without bitmaps, four with them.
Each line's ratio is the first figure over the second (above 1: the bitmaps are faster). Then, for the
segments whose every filter is an element test, "rows of the segment": the bitmaps' statement with the
segment's rows read from the games (as before the fortieth pass) against taken from the bitmaps
(filters.ROWS_SQL), engine elapsed, and the whole summary side by side both ways. Then the summary's
overview on one thread (engine elapsed, median of REPEAT): as sent before the thirty-seventh pass (its price
bands by a `sumMap` of every row, `est_revenue` summed as whole parts and fractions) against as sent (a
`countIf` per band, the revenue in whole cents). Then what the bitmaps cost: the time to write them again
(Store.build_elements, as a finish does, median of 3) and the table's bytes on disk.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gamelens import schema  # noqa: E402
from gamelens.engine import Engine  # noqa: E402
from gamelens.ingest import physical  # noqa: E402
from gamelens.ingest.versions import Versions  # noqa: E402
from gamelens.query import filters, summary  # noqa: E402
from gamelens.query.build import element_counts_sql, where  # noqa: E402
from gamelens.query.run import Explorer  # noqa: E402
from gamelens.settings import Settings  # noqa: E402
from gamelens.store import Store  # noqa: E402
from generate import generate  # noqa: E402
from harness import OUT  # noqa: E402

REPEAT = 15
SEGMENTS = {"genres=indie": [("genres", "indie")], "tags=horror": [("tags", "horror")],
            "price__lt=5": [("price__lt", "5")],
            "genres=action&windows=true": [("genres", "action"), ("windows", "true")],
            "genres=indie&tags=2d": [("genres", "indie"), ("tags", "2d")]}


def load(path: Path, data: Path) -> None:
    env = {**os.environ, "GAMELENS_DATA_DIR": str(data), "GAMELENS_MAX_UPLOAD_MB": "100000"}
    subprocess.run([sys.executable, "-m", "gamelens", "load", str(path)], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def medians(*runs) -> list[float]:
    """Each run's median of REPEAT, the runs taken in turn (this machine's speed drifts within a minute)."""
    for run in runs:
        run()  # once before: the first read of a column maps its file
    times = [[run() for run in runs] for _ in range(REPEAT)]
    return [statistics.median(column) for column in zip(*times, strict=True)]


def segment(explorer: Explorer, pool: ThreadPoolExecutor, snap, items) -> tuple[float, float, float, float]:
    cond = where(items, set())
    with_lists = summary.statements(cond, snap.table)
    lists = [with_lists[part] for part in summary.RANKED]
    bitmaps = element_counts_sql(cond, snap.table, snap.elements, list(summary.RANKED.values()), summary.TOP)
    others = [sql for part, sql in with_lists.items() if part not in summary.RANKED]

    def engine_ms(*statements):
        return lambda: sum(explorer.select(snap, *s).stats["elapsed_ms"] for s in statements)

    return (*medians(engine_ms(*lists), engine_ms(bitmaps)),
            *medians(side_by_side(explorer, pool, snap, [*lists, *others]),
                     side_by_side(explorer, pool, snap, [bitmaps, *others])))


def side_by_side(explorer: Explorer, pool: ThreadPoolExecutor, snap, statements):
    """Wall time (ms) of `statements` run on the pool together, as a request runs them."""
    def run():
        t = time.perf_counter()
        for f in [pool.submit(explorer.select, snap, *s) for s in statements]:
            f.result()
        return (time.perf_counter() - t) * 1000
    return run


def segment_rows(explorer: Explorer, pool: ThreadPoolExecutor, snap, items) -> tuple[float, ...] | None:
    """The bitmaps' statement and the whole summary, with the segment's rows read from the games against
    taken from the bitmaps; None for a segment that some game must be read to know (Where.rows_sql)."""
    cond = where(items, set())
    if not cond.rows_sql:
        return None
    read = dataclasses.replace(cond, rows_sql="")
    names = list(summary.RANKED.values())
    counts = [element_counts_sql(c, snap.table, snap.elements, names, summary.TOP) for c in (read, cond)]
    others = [s for part, s in summary.statements(cond, snap.table).items() if part not in summary.RANKED]
    engine = [lambda s=s: explorer.select(snap, *s).stats["elapsed_ms"] for s in counts]
    whole = [side_by_side(explorer, pool, snap, [s, *others]) for s in counts]
    return (*medians(*engine), *medians(*whole))


def overview_before(cond, table: str) -> tuple[str, dict]:
    """The summary's overview as sent before the thirty-seventh pass: today's statement with its band counts
    and its revenue sum in their earlier forms."""
    sql, params = summary.statements(cond, table)["overview"]
    col = schema.BY_NAME["est_revenue"]
    c, total = filters.column_sql(col), schema.METRICS["sum"]
    sql = sql.replace(total.over(col, c), total.over(dataclasses.replace(col, cents=False), c))
    bands = f"sumMap([toUInt8({schema.BUCKETS['price_band'].order})], [toUInt64(1)]) AS __band_games"
    return sql.replace(summary.band_counts_sql(), bands), params


def overview(explorer: Explorer, snap) -> None:
    print("\n| segment | overview before ms | as sent ms | ratio |\n|---|---|---|---|")
    one_thread = {"max_threads": 1}
    for name, items in SEGMENTS.items():
        cond = where(items, set())
        sent = summary.statements(cond, snap.table)["overview"]
        before, now = medians(*(lambda s=s: explorer.select(snap, *s, one_thread).stats["elapsed_ms"]
                                for s in (overview_before(cond, snap.table), sent)))
        print(f"| {name} | {before:.1f} | {now:.1f} | {before / now:.2f} |", flush=True)


def cost(engine: Engine, snap) -> None:
    store, name = Store(engine), snap.table.split(".")[-1].strip("`")
    on_disk = engine.select("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db:String} AND "
                            "table = {t:String} AND active", {"db": store.db, "t": physical.elements_table(name)})
    took = []
    for _ in range(3):
        store.drop(physical.elements_table(name))
        t = time.perf_counter()
        store.build_elements(name)
        took.append(time.perf_counter() - t)
    print(f"\nwriting the bitmaps of {', '.join(physical.ELEMENT_LISTS)}: {statistics.median(took):.2f} s; "
          f"{on_disk.scalar() / 1e6:.1f} MB on disk")


def main(mb: float) -> None:
    path = OUT / f"games_{mb:g}mb.csv"
    if not path.exists():
        generate(mb, path)
    data = Path(tempfile.mkdtemp(prefix="gamelens-segments-"))
    try:
        load(path, data)
        settings = Settings(data_dir=data, query_condition_cache=False)
        engine = Engine(settings)
        versions = Versions(engine)
        explorer = Explorer(engine, versions, settings)
        pool = ThreadPoolExecutor(2)
        try:
            snap = versions.current()
            assert snap.elements, "the load's finish wrote no element bitmaps"
            print(f"\n{mb:g} MB, median of {REPEAT}, engine alone, condition cache off\n")
            print("| segment | top tags and genres: lists ms | bitmaps ms | ratio | "
                  "whole summary: lists ms | bitmaps ms | ratio |")
            print("|---|---|---|---|---|---|---|")
            for name, items in SEGMENTS.items():
                a, b, c, d = segment(explorer, pool, snap, items)
                print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f} | {c:.1f} | {d:.1f} | {c / d:.2f} |", flush=True)
            print("\n| segment | rows of the segment: read from the games ms | from the bitmaps ms | ratio | "
                  "whole summary: read ms | from the bitmaps ms | ratio |\n|---|---|---|---|---|---|---|")
            for name, items in SEGMENTS.items():
                found = segment_rows(explorer, pool, snap, items)
                if found is not None:
                    a, b, c, d = found
                    print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f} | {c:.1f} | {d:.1f} | {c / d:.2f} |", flush=True)
            overview(explorer, snap)
            cost(engine, snap)
        finally:
            pool.shutdown()
            explorer.close()
            engine.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["50"]:
        main(float(arg))
