"""Load benchmark (not a test): N concurrent clients over loopback for S seconds on the query mix.

    python bench/load.py 500 --clients 50 --seconds 60

Loads the generated file of that size into `gamelens serve` (own process), then:
1. steady: every client loops over the query mix of bench/query.py for S seconds;
2. during an upload: the same while the same file is uploaded again (and swapped in).
Prints requests/s, p50/p95/p99 latency, errors (target 0) and the server's RSS. Loopback only,
bounded in time and in count (at most 200 000 requests a phase).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402
from ingest import FILE_SERVER, OUT, free_port, wait_http  # noqa: E402
from query import MIX, pct  # noqa: E402

MAX_REQUESTS = 200_000


def drive(base: str, urls: list[str], clients: int, seconds: float, stop_when=None) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(offset: int):
        with httpx.Client(base_url=base, timeout=30) as http:
            i = offset
            while time.monotonic() < deadline and len(latencies) < MAX_REQUESTS:
                if stop_when and stop_when():
                    return
                t = time.perf_counter()
                try:
                    r = http.get(urls[i % len(urls)])
                    ok = r.status_code == 200
                    detail = f"{r.status_code} {r.text[:100]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, repr(exc)
                with lock:
                    latencies.append((time.perf_counter() - t) * 1000)
                    if not ok:
                        errors.append(detail)
                i += 1

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50": statistics.median(latencies),
            "p95": pct(latencies, .95), "p99": pct(latencies, .99), "errors": len(errors),
            "first_errors": errors[:3], "seconds": elapsed}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mb", type=float, nargs="?", default=500)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"games_{args.mb:g}mb.csv"
    if not path.exists():
        generate(args.mb, path)
    files_port, port = free_port(), free_port()
    files = subprocess.Popen([sys.executable, "-c", FILE_SERVER, str(files_port), str(OUT)])
    data = Path(tempfile.mkdtemp(prefix="gamelens-load-"))
    env = {**os.environ, "GAMELENS_DATA_DIR": str(data), "GAMELENS_PORT": str(port), "GAMELENS_AUTH": "off",
           "GAMELENS_ALLOW_PRIVATE_URLS": "true", "GAMELENS_MAX_UPLOAD_MB": "2000", "GAMELENS_LOG_LEVEL": "WARNING",
           "GAMELENS_RATE_PER_MINUTE": "100000000"}
    server = subprocess.Popen([sys.executable, "-m", "gamelens", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        (OUT / "ready.csv").write_text("x")
        wait_http(f"http://127.0.0.1:{files_port}/ready.csv")
        wait_http(f"{base}/readyz")
        link = f"http://127.0.0.1:{files_port}/{path.name}"
        rec = httpx.post(f"{base}/api/v1/uploads?wait=true", json={"url": link}, timeout=3600).json()
        assert rec["state"] == "succeeded", rec
        cursor = httpx.get(f"{base}/api/v1/games?sort=-positive,name&limit=1&offset={rec['rows_loaded'] // 2}"
                           "&fields=app_id").json()["next_cursor"]
        urls = [u.format(deep=rec["rows_loaded"] // 2, cursor=cursor) for u in MIX.values()]
        proc = psutil.Process(server.pid)
        print(f"{args.mb:g} MB, {rec['rows_loaded']} rows, {args.clients} clients, {args.seconds:g} s a phase\n")
        print("| phase | requests | req/s | p50 ms | p95 ms | p99 ms | errors | server RSS MB (peak) |")
        print("|---|---|---|---|---|---|---|---|")
        for phase in ("steady", "during an upload"):
            peak, stop = [proc.memory_info().rss], threading.Event()

            def sample(peak=peak, stop=stop):
                while not stop.is_set():
                    peak[0] = max(peak[0], proc.memory_info().rss)
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            if phase == "during an upload":
                up = httpx.post(f"{base}/api/v1/uploads", json={"url": link}).json()
            r = drive(base, urls, args.clients, args.seconds)
            stop.set()
            sampler.join()
            print(f"| {phase} | {r['requests']} | {r['rps']:.1f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | "
                  f"{r['errors']} | {peak[0] / 2**20:.0f} |", flush=True)
            if r["first_errors"]:
                print("first errors:", r["first_errors"])
        state = httpx.get(f"{base}/api/v1/uploads/{up['id']}").json()
        print(f"\nupload during load: {state['state']}, {state['rows_loaded']} rows, timings {state['timings_ms']}")
    finally:
        server.terminate()
        server.wait(60)
        files.terminate()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
