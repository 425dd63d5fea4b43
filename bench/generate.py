"""Make a realistic N-MB games CSV from the sample: distinct AppIDs, varied names, numbers and dates.

    python bench/generate.py 50 bench/out/games_50mb.csv

Rows are drawn from the 100 sample rows (their texts, languages, genres, tags) with a new AppID,
a suffixed name, random review counts, prices, ages and release dates, in the sample's own format
(index column, CRLF, "Oct 21, 2008", a few month-only dates, Python-list languages).
"""

from __future__ import annotations

import calendar
import csv
import random
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "sample_games.csv"
WORDS = ["Legends", "Chronicles", "Remastered", "Deluxe", "II", "III", "Origins", "Online", "VR", "Tactics",
         "Saga", "Arena", "Quest", "Simulator", "Tycoon", "Escape", "Rising", "Zero", "Infinity", "Nights"]


def rows(seed: int = 7):
    with open(SAMPLE, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        sample = list(reader)
    prices = sorted({r[5] for r in sample})
    rnd = random.Random(seed)
    yield header
    i = 0
    while True:
        base = list(rnd.choice(sample))
        year, month = rnd.randint(1997, 2025), rnd.randint(1, 12)
        day = rnd.randint(1, calendar.monthrange(year, month)[1])
        month_name = calendar.month_abbr[month]
        base[0] = str(i)
        base[1] = str(10 + i * 10)
        base[2] = f"{base[2]} {rnd.choice(WORDS)} {rnd.randint(1, 999)}"
        base[3] = f"{month_name} {year}" if rnd.random() < 0.01 else f"{month_name} {day}, {year}"
        base[4] = rnd.choice(["0", "0", "0", "0", "12", "16", "17", "18"])
        base[5] = rnd.choice(prices)
        base[6] = str(rnd.choice([0, 0, 0, 1, 2, 5, 12]))
        base[9:12] = [rnd.choice(["TRUE", "TRUE", "FALSE"]) for _ in range(3)]
        base[12] = str(int(rnd.paretovariate(1.2) * 10) - 10)
        base[13] = str(int(rnd.paretovariate(1.4) * 3) - 3)
        yield base
        i += 1


def generate(megabytes: float, out: Path) -> int:
    """Write about `megabytes` MB to `out`; returns the number of data rows."""
    limit = int(megabytes * 1024 * 1024)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        for row in rows():
            writer.writerow(row)
            n += 1
            if n % 1000 == 0 and f.tell() >= limit:
                break
    return n - 1


if __name__ == "__main__":
    count = generate(float(sys.argv[1]), Path(sys.argv[2]))
    print(f"{sys.argv[2]}: {count} rows")
