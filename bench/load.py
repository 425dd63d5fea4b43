"""Load benchmark (not a test): N concurrent clients over loopback for S seconds.

    python bench/load.py 500 --clients 50 --seconds 60

Loads the generated file of that size into `gamelens serve` (own process, response cache on), then:
1. steady: every client draws requests from 200 distinct queries (the mix of bench/query.py with
   varied filters, sorts and pages) with a skewed popularity (Zipf-like: the k-th most popular is
   asked 1/k^1.1 as often), for S seconds;
2. during an upload: the same while the same file is uploaded again (and switched in).
Prints requests/s, p50/p95/p99 latency, errors (target 0), the cache's hit share and the server's
RSS. Loopback only, bounded in time and in count (at most 200 000 requests a phase).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402
from harness import OUT, PeakRss, file_server, gamelens_server, pct, wait_indexes  # noqa: E402
from query import MIX  # noqa: E402

MAX_REQUESTS = 200_000


NEEDLES = ["bowl", "zombie", "space", "puzzle", "war", "farm", "racing", "dungeon", "magic", "city"]
GENRES = ["Indie", "Action", "Adventure", "Casual", "Strategy", "RPG", "Simulation", "Sports", "Racing"]


def distinct_queries(deep: int, cursor: str, n: int = 200) -> list[str]:
    """n distinct GET paths: the mix, then variations of its kinds of request."""
    urls = [u.format(deep=deep, cursor=cursor) for u in MIX.values()]
    k = 0
    while len(urls) < n:
        needle, genre = NEEDLES[k % len(NEEDLES)], GENRES[k % len(GENRES)]
        urls += [f"/api/v1/games?name={needle}&limit=50&offset={50 * (k // 10)}",
                 f"/api/v1/games?about_the_game={needle}&genres__has={genre}",
                 f"/api/v1/games?genres__has={genre}&sort=-rating&price__lt={5 + k}",
                 f"/api/v1/games/aggregate?group_by=release_year&metrics=count,median:price&genres__has={genre}"
                 f"&release_date__gte={2000 + k % 20}-01-01"]
        k += 1
    return list(dict.fromkeys(urls))[:n]


def drive(base: str, urls: list[str], clients: int, seconds: float, stop_when=None) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(urls))]
    hits = []

    def client(offset: int):
        pick = random.Random(offset)
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < deadline and len(latencies) < MAX_REQUESTS:
                if stop_when and stop_when():
                    return
                t = time.perf_counter()
                try:
                    r = http.get(pick.choices(urls, weights)[0])
                    hits.append(r.headers.get("x-cache") == "hit")
                    ok = r.status_code == 200
                    detail = f"{r.status_code} {r.text[:100]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, repr(exc)
                with lock:
                    latencies.append((time.perf_counter() - t) * 1000)
                    if not ok:
                        errors.append(detail)

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50": statistics.median(latencies),
            "p95": pct(latencies, .95), "p99": pct(latencies, .99), "errors": len(errors),
            "first_errors": errors[:3], "seconds": elapsed, "hits": sum(hits) / max(1, len(hits))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mb", type=float, nargs="?", default=500)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    path = OUT / f"games_{args.mb:g}mb.csv"
    if not path.exists():
        generate(args.mb, path)
    with file_server() as files, gamelens_server(GAMELENS_RATE_PER_MINUTE="100000000") as (base, proc):
        link = f"{files}/{path.name}"
        rec = httpx.post(f"{base}/api/v1/uploads?wait=true", json={"url": link}, timeout=3600).json()
        assert rec["state"] == "succeeded", rec
        with httpx.Client(base_url=base, timeout=600) as http:
            wait_indexes(http, rec["id"])
        deep = rec["rows_loaded"] // 2
        cursor = httpx.get(f"{base}/api/v1/games?sort=-positive,name&limit=1&offset={deep}&fields=app_id"
                           ).json()["next_cursor"]
        urls = distinct_queries(deep, cursor)
        print(f"{args.mb:g} MB, {rec['rows_loaded']} rows, {args.clients} clients, {args.seconds:g} s a phase, "
              f"{len(urls)} distinct queries (Zipf 1.1)\n")
        print("| phase | requests | req/s | p50 ms | p95 ms | p99 ms | errors | cache hits | server RSS MB (peak) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for phase in ("steady", "during an upload"):
            if phase == "during an upload":
                up = httpx.post(f"{base}/api/v1/uploads", json={"url": link}).json()
            with PeakRss(proc) as rss:
                r = drive(base, urls, args.clients, args.seconds)
            print(f"| {phase} | {r['requests']} | {r['rps']:.1f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | "
                  f"{r['errors']} | {r['hits']:.0%} | {rss.peak_mb:.0f} |", flush=True)
            if r["first_errors"]:
                print("first errors:", r["first_errors"])
        state = httpx.get(f"{base}/api/v1/uploads/{up['id']}").json()
        print(f"\nupload during load: {state['state']}, {state['rows_loaded']} rows, timings {state['timings_ms']}")


if __name__ == "__main__":
    main()
