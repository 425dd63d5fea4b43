"""What reading the list and date columns costs the load, on the engine alone (chDB), from the same
generated file, in the same run: each column's text read plain, against the same text parsed by the
load's own expression (schema.KINDS): a list into its elements, a day by the first format that reads
it. Median of 5, two rounds.

Then the load's whole statement (load.select_exprs: every column's parse, the checks, the row numbers)
from the file into a version's table (Store.create_version_table), against the engine's own typed insert
of the same file (bench/ingest.py's baseline), each in turn, three times, in a process of its own: wall
and CPU seconds, and their ratio.

    python bench/parse.py 500        # size in MB (the file is generated under bench/out once)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import chdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gamelens import schema  # noqa: E402
from generate import generate  # noqa: E402
from harness import OUT, TYPED_STRUCTURE  # noqa: E402

REPEAT, ROUNDS = 5, 2
# What each kind's parsed value is folded into, so the engine computes every row's parse.
MEASURES = {"list": "sum(length({x}))", "date": "count({x})"}


def _timed(sql: str) -> float:
    t0 = time.perf_counter()
    chdb.query(sql, "CSV")
    return time.perf_counter() - t0


def main(megabytes: float) -> None:
    path = OUT / f"games_{megabytes:g}mb.csv"
    if not path.exists():
        generate(megabytes, path)
    with open(path, encoding="utf-8") as f:
        headers = f.readline().rstrip("\r\n").split(",")  # the generated file's header has no quotes
    structure = ", ".join(f"`{h or 'idx'}` String" for h in headers)
    source = f"file('{path}', CSVWithNames, '{structure}')"
    parsed_columns = [c for c in schema.SOURCE_COLUMNS if c.kind.filter in MEASURES]
    print(f"| column ({path.name}) | text read s | parsed s | parsed / read |\n|---|---|---|---|")
    for _ in range(ROUNDS):
        for col in parsed_columns:
            raw = f"`{col.header}`"
            measure = MEASURES[col.kind.filter]
            plain = statistics.median(_timed(f"SELECT sum(length({raw})) FROM {source}") for _ in range(REPEAT))
            parsed_sql = f"SELECT {measure.format(x=col.kind.parse.format(r=raw))} FROM {source}"
            parsed = statistics.median(_timed(parsed_sql) for _ in range(REPEAT))
            print(f"| {col.name} ({col.kind.name}) | {plain:.3f} | {parsed:.3f} | {parsed / plain:.2f} |")


STATEMENTS = r"""
import resource, sys, tempfile, time
from gamelens.engine import Engine
from gamelens.ingest import load, migrations
from gamelens.settings import Settings
from gamelens.store import Store

path = sys.argv[1]
engine = Engine(Settings(data_dir=tempfile.mkdtemp(prefix="gamelens-parse-"), database="bench"))
store = Store(engine)
store.create_database()
with open(path, "rb") as f:
    header, _ = load.read_header(iter([f.read(1 << 16)]), "file")
columns, exprs = load.select_exprs(load.check_header(header)[0])
text = ", ".join(f"c{i} String" for i in range(len(header)))
typed = sys.argv[2]
source = "FROM file({p:String}, 'CSVWithNames', {s:String})"
headless = {"input_format_with_names_use_header": 0}


def timed(sql, params, settings):
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    engine.execute(sql, params, settings)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter() - t0, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime


for i in range(3):
    engine.execute(f"CREATE TABLE bench.typed{i} ({typed.replace('`idx` UInt32, ', '')}) ENGINE = MergeTree "
                   "ORDER BY AppID")
    floor = timed(f"INSERT INTO bench.typed{i} SELECT * EXCEPT idx {source}", {"p": path, "s": typed}, headless)
    store.create_version_table(f"stage{i}", migrations.comment_for(1))
    target = f"bench.stage{i} ({', '.join(f'`{c}`' for c in columns)})"
    ours = timed(f"INSERT INTO {target} SELECT {', '.join(exprs)} {source}", {"p": path, "s": text},
                 {**load.CSV_SETTINGS, **headless})
    print(f"| {i + 1} | {floor[0]:.2f} / {floor[1]:.2f} | {ours[0]:.2f} / {ours[1]:.2f} | "
          f"{ours[0] / floor[0]:.2f} / {ours[1] / floor[1]:.2f} |", flush=True)
    engine.execute(f"DROP TABLE bench.typed{i} SYNC")
    engine.execute(f"DROP TABLE bench.stage{i} SYNC")
"""


def statements(megabytes: float) -> None:
    path = OUT / f"games_{megabytes:g}mb.csv"
    print(f"\n| run ({path.name}) | engine's typed insert: wall / CPU s | the load's statement: wall / CPU s "
          "| ratio: wall / CPU |\n|---|---|---|---|", flush=True)
    subprocess.run([sys.executable, "-c", STATEMENTS, str(path), TYPED_STRUCTURE], check=True)


if __name__ == "__main__":
    for size in sys.argv[1:] or ["50"]:
        main(float(size))
        statements(float(size))
