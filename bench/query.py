"""Query benchmark: p50/p95 over HTTP of a fixed query mix, beside the engine's own time for the same SQL.

    python bench/query.py 50 500      # sizes in MB (files generated under bench/out once)

For each size: `gamelens serve` in its own process loads the generated file (and builds its indexes),
then every query of the mix runs REPEAT times in a row over loopback HTTP (one keep-alive client),
with the response cache off and ClickHouse's query condition cache off, so each run costs what a
first execution of that query costs. Each response carries `engine_ms`, ClickHouse's own elapsed
time for the statements of that request; the table prints both, and HTTP - engine at p50 (the
time spent outside the engine: HTTP, parsing, Python, JSON).

Then the same data directory is served again with the response cache on (the default), and each
query of the mix is repeated: the first run fills the cache, the next REPEAT are what a repeat costs,
and one more with `If-None-Match` shows the 304.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
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
    "deep offset page, table order": "/api/v1/games?limit=50&offset={deep}",
    "aggregate by genre": "/api/v1/games/aggregate?group_by=genres&metrics=count,avg:price,sum:positive",
    "aggregate by year": "/api/v1/games/aggregate?group_by=release_year&metrics=count,avg:price&sort=release_year",
    "facets": "/api/v1/games?facet=genres&facet=required_age&facet=release_year&limit=10",
    "page sorted by rating": "/api/v1/games?sort=-rating&limit=50&fields=name,price,reviews,rating,genres",
    "trend: top 8 tags by year": "/api/v1/games/aggregate?group_by=tags,release_year&metrics=count&top=8",
    "filtered trend: top 8 tags by year, Indie": "/api/v1/games/aggregate?group_by=tags,release_year&metrics=count"
                                                  "&top=8&genres=indie",
    "segment summary": "/api/v1/games/summary?genres=indie",
}
# Needles a text index cannot take whole (not one word of 4+ letters/digits), reported apart: served by
# their runs of letters and digits and checked whole (query/filters.word_runs), or scanned (`é`).
SCANNED = {
    "description: part of a word": "/api/v1/games?about_the_game=open-wor",
    "description: runs of 2 letters": "/api/v1/games?about_the_game=co-op",
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


def run(mb: float, files_base: str, *, cached: bool = True) -> dict[str, float]:
    """Prints the tables; returns each query's HTTP p50 without the cache (for bench/datasette.py)."""
    path = OUT / f"games_{mb:g}mb.csv"
    if not path.exists():
        generate(mb, path)
    data = Path(tempfile.mkdtemp(prefix="gamelens-bench-"))
    try:
        medians, urls = first_runs(mb, path, files_base, data)
        if cached:
            repeats(data, urls)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return medians


def first_runs(mb: float, path: Path, files_base: str, data: Path) -> tuple[dict[str, float], list[str]]:
    medians, urls = {}, []
    with gamelens_server(data, **SERVER) as (base, _), httpx.Client(base_url=base, timeout=120) as client:
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
            urls.append(url.format(deep=deep, cursor=cursor))
            http_ms, engine_ms = measure(client, urls[-1])
            medians[name] = statistics.median(http_ms)
            print(f"| {name} | {statistics.median(http_ms):.1f} | {pct(http_ms, .95):.1f} | "
                  f"{statistics.median(engine_ms):.1f} | {pct(engine_ms, .95):.1f} | "
                  f"{statistics.median(http_ms) - statistics.median(engine_ms):.1f} |", flush=True)
    return medians, urls


def repeats(data: Path, urls: list[str]) -> None:
    """Every query of the mix, repeated with the response cache on: p50/p95 of the repeats, and one 304."""
    hits = []
    with gamelens_server(data) as (base, _), httpx.Client(base_url=base, timeout=120) as client:
        for url in urls:
            etag = client.get(url).headers["etag"]  # the first run fills the cache
            for _ in range(REPEAT):
                t = time.perf_counter()
                r = client.get(url)
                hits.append((time.perf_counter() - t) * 1000)
                assert r.headers["x-cache"] == "hit", r.headers
            assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    print(f"\nrepeats with the response cache on: {len(hits)} requests ({len(urls)} queries x {REPEAT}), "
          f"HTTP p50 {statistics.median(hits):.2f} ms, p95 {pct(hits, .95):.2f} ms, max {max(hits):.2f} ms; "
          "If-None-Match -> 304 for every query", flush=True)


def main(sizes: list[float]) -> None:
    with file_server() as files:
        for mb in sizes:
            run(mb, files)


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [50, 500])
