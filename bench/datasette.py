"""GameLens against Datasette on SQLite, serving the same generated file, in the same run.

    python bench/datasette.py 50

Builds the SQLite database with `sqlite-utils insert --csv` (types detected) (in a venv of its own
under bench/out, so the project's dependencies stay as they are), serves it with `datasette`, and
runs the query mix of bench/query.py against both over loopback HTTP: GameLens with its response
cache and ClickHouse's condition cache off, Datasette as it comes (no result cache either). Each
query is written for Datasette as its table API allows, else as SQL with the same meaning (notes
below the table say where the meaning differs). Prints each query's median, the ratio, and the
median of the ratios.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402
from harness import OUT, file_server, free_port, gamelens_server, wait_http, wait_indexes  # noqa: E402
from query import MIX, SCANNED, SERVER  # noqa: E402

REPEAT, WARMUP = 25, 3
VENV = OUT / "datasette-venv"
RATING = ("(CAST(Positive AS REAL) / (Positive + Negative) - (CAST(Positive AS REAL) / (Positive + Negative) - 0.5) "
          "* pow(2, -log10(Positive + Negative + 1)))")
SPLIT = "json_each('[\"' || replace({col}, ',', '\",\"') || '\"]')"


def sql_url(db: str, query: str) -> str:
    """Datasette's SQL API on database `db` (Datasette names a database after its file)."""
    return f"/{db}.json?sql={quote(query)}&_shape=objects"


def datasette_mix(db: str, deep: int, keyset: str) -> dict[str, str]:
    t = f"/{db}/games.json?_size=50&"

    def sql(query: str) -> str:
        return sql_url(db, query)

    return {
        "substring on name": t + "Name__contains=bowl",
        "substring on about_the_game": t + "About+the+game__contains=zombie",
        "exact price": t + "Price__exact=19.99",
        "date range": t + "_where=" + quote("substr([Release date], -4) = '2020'"),
        "list-column match": t + "Genres__contains=indie&_where=" + quote("',' || Tags || ',' like '%,Horror,%'"),
        "multi-sort page": t + "_sort_desc=Positive",
        "deep offset page": sql(f"select * from games order by Positive desc, Name limit 50 offset {deep}"),
        "deep keyset page": t + f"_sort_desc=Positive&_next={quote(keyset)}",
        "aggregate by genre": sql("select g.value as genre, count(*) as count, avg(Price), sum(Positive) from games, "
                                  + SPLIT.format(col="Genres") + " g group by genre order by count desc limit 50"),
        "aggregate by year": sql("select substr([Release date], -4) as year, count(*), avg(Price) from games "
                                 "group by year order by year limit 50"),
        "facets": t.replace("_size=50", "_size=10") + "_facet=Genres&_facet=Required+age",
        "page sorted by rating": sql(f"select Name, Price, Positive + Negative as reviews, {RATING} as rating, Genres "
                                     "from games where Positive + Negative > 0 order by rating desc limit 50"),
        "trend: top 8 tags by year": sql(
            "with t as (select g.value as tag, substr([Release date], -4) as year from games, "
            + SPLIT.format(col="Tags") + " g), top as (select tag from t group by tag order by count(*) desc limit 8) "
            "select tag, year, count(*) from t where tag in top group by tag, year order by tag, year"),
        "description: part of a word": t + "About+the+game__contains=open-wor",
        "description: with a space": t + "About+the+game__contains=" + quote("open world"),
        "description: 2 letters": t + "About+the+game__contains=vr",
        "description: non-ASCII": t + "About+the+game__contains=%C3%A9",
    }


NOTES = [
    "multi-sort page: Datasette's table API sorts by one column (Positive), not Positive then Name.",
    "facets: Datasette counts whole Genres strings (not genres) and cannot facet by release year.",
    "substring matches: SQLite's LIKE folds only ASCII letters; GameLens folds any case.",
    "segment summary is left out: SQLite has no median.",
]


def build_sqlite(csv_path: Path, db: Path) -> None:
    if not (VENV / "bin" / "datasette").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "datasette", "sqlite-utils"], check=True)
    if not db.exists():
        # sqlite-utils 4 detects column types by default (numbers as INTEGER / REAL)
        subprocess.run([str(VENV / "bin" / "sqlite-utils"), "insert", str(db), "games", str(csv_path), "--csv"],
                       check=True)


def timed(client: httpx.Client, url: str) -> float:
    times = []
    for i in range(WARMUP + REPEAT):
        t = time.perf_counter()
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        if i >= WARMUP:
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(mb: float) -> None:
    csv_path = OUT / f"games_{mb:g}mb.csv"
    if not csv_path.exists():
        generate(mb, csv_path)
    db = OUT / f"games_{mb:g}mb.db"
    build_sqlite(csv_path, db)
    port = free_port()
    datasette = subprocess.Popen([str(VENV / "bin" / "datasette"), "serve", str(db), "--port", str(port),
                                  "--setting", "sql_time_limit_ms", "60000", "--setting", "num_sql_threads", "2",
                                  # an API client wants the rows, not suggestions of facets (up to 50 ms
                                  # a column, on every table request)
                                  "--setting", "suggest_facets", "off"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ds_base = f"http://127.0.0.1:{port}"
        wait_http(f"{ds_base}/-/versions.json")
        with file_server() as files, gamelens_server(**SERVER) as (gl_base, _), \
                httpx.Client(base_url=gl_base, timeout=300) as gl, httpx.Client(base_url=ds_base, timeout=300) as ds:
            rec = gl.post("/api/v1/uploads?wait=true", json={"url": f"{files}/{csv_path.name}"}).json()
            assert rec["state"] == "succeeded", rec
            wait_indexes(gl, rec["id"])
            deep = rec["rows_loaded"] // 2
            cursor = gl.get(f"/api/v1/games?sort=-positive,name&limit=1&offset={deep - 1}&fields=app_id"
                            ).json()["next_cursor"]
            mark = ds.get(sql_url(db.stem, "select Positive, rowid from games order by Positive desc, rowid desc "
                                  f"limit 1 offset {deep - 1}")).json()["rows"][0]
            theirs = datasette_mix(db.stem, deep, f"{mark['Positive']},{mark['rowid']}")
            ours = {**MIX, **SCANNED}
            print(f"\n{mb:g} MB, {rec['rows_loaded']} rows, median of {REPEAT} runs, ms\n")
            print("| query | GameLens | Datasette | Datasette / GameLens |")
            print("|---|---|---|---|")
            ratios = []
            for name, url in theirs.items():
                a = timed(gl, ours[name].format(deep=deep, cursor=cursor))
                b = timed(ds, url)
                ratios.append(b / a)
                print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.2f} |", flush=True)
            print(f"\nmedian of the ratios: {statistics.median(ratios):.2f} (min {min(ratios):.2f}, "
                  f"max {max(ratios):.2f}) over {len(ratios)} queries")
            for note in NOTES:
                print(f"- {note}")
    finally:
        datasette.terminate()
        datasette.wait(30)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 50)
