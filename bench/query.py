"""Query benchmark: p50/p95 over HTTP of a fixed query mix, beside the engine's own time for the same SQL.

    python bench/query.py 50 500      # sizes in MB (files generated under bench/out once)

For each size: `gamelens serve` in its own process loads the generated file (and builds its indexes),
then every query of the mix runs REPEAT times in a row over loopback HTTP (one keep-alive client),
with the response cache off and ClickHouse's query condition cache off, so each run costs what a
first execution of that query costs. Each response carries `engine_ms`, ClickHouse's own elapsed
time for the statements of that request; the table prints both, and HTTP - engine at p50 (the
time spent outside the engine: HTTP, parsing, Python, JSON).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402
from harness import OUT, file_server, gamelens_server, pct, wait_indexes  # noqa: E402

REPEAT, WARMUP = 40, 3
MIX = {
    "substring on name": "/api/v1/games?name=bowl",
    "substring on about_the_game": "/api/v1/games?about_the_game=zombie",
    "exact price": "/api/v1/games?price=19.99",
    "date range": "/api/v1/games?release_date__gte=2020-01-01&release_date__lt=2021-01-01",
    "list-column match": "/api/v1/games?genres=indie&tags__has=Horror",
    "multi-sort page": "/api/v1/games?sort=-positive,name&limit=50",
    "deep offset page": "/api/v1/games?sort=-positive,name&limit=50&offset={deep}",
    "deep keyset page": "/api/v1/games?sort=-positive,name&limit=50&cursor={cursor}",
    "aggregate by genre": "/api/v1/games/aggregate?group_by=genres&metrics=count,avg:price,sum:positive",
    "aggregate by year": "/api/v1/games/aggregate?group_by=release_year&metrics=count,avg:price&sort=release_year",
    "facets": "/api/v1/games?facet=genres&facet=required_age&facet=release_year&limit=10",
    "page sorted by rating": "/api/v1/games?sort=-rating&limit=50&fields=name,price,reviews,rating,genres",
    "trend: top 8 tags by year": "/api/v1/games/aggregate?group_by=tags,release_year&metrics=count&top=8",
    "segment summary": "/api/v1/games/summary?genres=indie",
}
# Needles a text index cannot serve (not one word of letters/digits), reported apart: exact, scanned.
SCANNED = {
    "description: part of a word": "/api/v1/games?about_the_game=open-wor",
    "description: with a space": "/api/v1/games?about_the_game=open%20world",
    "description: 2 letters": "/api/v1/games?about_the_game=vr",
    "description: non-ASCII": "/api/v1/games?about_the_game=%C3%A9",
}
SERVER = {"GAMELENS_CACHE_MB": "0", "GAMELENS_QUERY_CONDITION_CACHE": "false"}


def measure(client: httpx.Client, url: str) -> tuple[list[float], list[float]]:
    http_ms, engine_ms = [], []
    for i in range(WARMUP + REPEAT):
        t = time.perf_counter()
        r = client.get(url)
        elapsed = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, r.text
        if i >= WARMUP:
            http_ms.append(elapsed)
            engine_ms.append(r.json()["engine_ms"])
    return http_ms, engine_ms


def run(mb: float, files_base: str) -> dict[str, float]:
    """Prints the table; returns each query's HTTP p50 (for bench/datasette.py)."""
    path = OUT / f"games_{mb:g}mb.csv"
    if not path.exists():
        generate(mb, path)
    medians = {}
    with gamelens_server(**SERVER) as (base, _), httpx.Client(base_url=base, timeout=120) as client:
        rec = client.post("/api/v1/uploads?wait=true", json={"url": f"{files_base}/{path.name}"}).json()
        assert rec["state"] == "succeeded", rec
        wait_indexes(client, rec["id"])
        rows = rec["rows_loaded"]
        deep = rows // 2
        cursor = client.get(f"/api/v1/games?sort=-positive,name&limit=1&offset={deep - 1}&fields=app_id"
                            ).json()["next_cursor"]
        print(f"\n{mb:g} MB, {rows} rows, {REPEAT} runs each, response cache and condition cache off\n")
        print("| query | HTTP p50 ms | HTTP p95 ms | engine p50 ms | engine p95 ms | HTTP − engine p50 ms |")
        print("|---|---|---|---|---|---|")
        for name, url in {**MIX, **SCANNED}.items():
            http_ms, engine_ms = measure(client, url.format(deep=deep, cursor=cursor))
            medians[name] = statistics.median(http_ms)
            print(f"| {name} | {statistics.median(http_ms):.1f} | {pct(http_ms, .95):.1f} | "
                  f"{statistics.median(engine_ms):.1f} | {pct(engine_ms, .95):.1f} | "
                  f"{statistics.median(http_ms) - statistics.median(engine_ms):.1f} |", flush=True)
    return medians


def main(sizes: list[float]) -> None:
    with file_server() as files:
        for mb in sizes:
            run(mb, files)


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [50, 500])
