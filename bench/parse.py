"""What reading the list and date columns costs the load, on the engine alone (chDB), from the same
generated file, in the same run: each column's text read plain, against the same text parsed by the
load's own expression (schema.KINDS): a list into its elements, a day by the first format that reads
it. Median of 5, two rounds.

    python bench/parse.py 500        # size in MB (the file is generated under bench/out once)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import chdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gamelens import schema  # noqa: E402
from generate import generate  # noqa: E402
from harness import OUT  # noqa: E402

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


if __name__ == "__main__":
    for size in sys.argv[1:] or ["50"]:
        main(float(size))
