"""Upload benchmark: a link -> stored and served, against the engine's own INSERT ... SELECT FROM file().

    python bench/ingest.py 50 500        # sizes in MB (files are generated under bench/out once)

For each size, in the same run:
- baseline: a fresh chDB process runs `INSERT INTO t SELECT * FROM file(path, CSVWithNames, <typed
  structure>)` into a MergeTree table with the natural types: the engine parsing the file, no checks;
- gamelens: `gamelens serve` in its own process; POST /api/v1/uploads?wait=true with a link to the
  file on a loopback HTTP server (download, sha256, UTF-8 check, typed load with row checks, derived
  columns, answers of the default views, switch): "served" is when that call returns. Then the
  version is finished while served (one part, text indexes): "finished" is when the record says so.
Prints seconds, the ratio served / baseline, and the server's RSS: idle, and peak while loading and
while finishing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402
from harness import OUT, TYPED_STRUCTURE, PeakRss, file_server, gamelens_server, wait_indexes  # noqa: E402

BASELINE = r"""
import sys, time, json
from gamelens.engine import Engine
from gamelens.settings import Settings
from gamelens.store import Store
e = Engine(Settings(data_dir=sys.argv[1], database="bench"))
Store(e).create_database()
structure = sys.argv[3]
e.execute("CREATE TABLE bench.t (" + structure.replace("`idx` UInt32, ", "") + ") ENGINE = MergeTree ORDER BY AppID")
t = time.perf_counter()
e.execute("INSERT INTO bench.t SELECT * EXCEPT idx FROM file({p:String}, 'CSVWithNames', {s:String})",
          {"p": sys.argv[2], "s": structure}, {"input_format_with_names_use_header": 0})
print(json.dumps({"seconds": time.perf_counter() - t, "rows": e.select("SELECT count() FROM bench.t").scalar()}))
"""


def baseline(path: Path) -> dict:
    with tempfile.TemporaryDirectory() as d:
        child = subprocess.Popen([sys.executable, "-c", BASELINE, d, str(path), TYPED_STRUCTURE],
                                 stdout=subprocess.PIPE, text=True)
        with PeakRss(psutil.Process(child.pid)) as rss:
            out, _ = child.communicate()
    if child.returncode:
        raise RuntimeError("baseline failed")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mb": rss.peak_mb}


def gamelens_upload(url: str) -> dict:
    with gamelens_server() as (base, proc), httpx.Client(base_url=base, timeout=3600) as client:
        time.sleep(1)
        idle = proc.memory_info().rss / 2**20
        with PeakRss(proc) as rss:
            t = time.perf_counter()
            rec = client.post("/api/v1/uploads?wait=true", json={"url": url}).json()
            seconds = time.perf_counter() - t
        with PeakRss(proc) as finishing:
            done = wait_indexes(client, rec["id"])
            finished = time.perf_counter() - t
    if rec.get("state") != "succeeded" or done.get("indexes") != "ready":
        raise RuntimeError(f"upload failed: {done}")
    return {"seconds": seconds, "finished": finished, "rows": rec["rows_loaded"],
            "stored_mb": rec["stored_bytes"] / 2**20, "idle_rss_mb": idle, "peak_rss_mb": rss.peak_mb,
            "finish_rss_mb": finishing.peak_mb, "timings_ms": done["timings_ms"]}


def main(sizes: list[float]) -> None:
    with file_server() as files:
        print("| size | rows | engine INSERT…SELECT FROM file() s | gamelens served s | ratio | finished s "
              "| idle RSS MB | loading peak − idle MB | finishing peak − idle MB | engine-only process peak RSS MB "
              "| stored MB | phases ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for mb in sizes:
            path = OUT / f"games_{mb:g}mb.csv"
            if not path.exists():
                generate(mb, path)
            base = baseline(path)
            ours = gamelens_upload(f"{files}/{path.name}")
            assert ours["rows"] == base["rows"], (ours, base)
            print(f"| {mb:g} MB | {ours['rows']} | {base['seconds']:.2f} | {ours['seconds']:.2f} | "
                  f"{ours['seconds'] / base['seconds']:.2f} | {ours['finished']:.2f} | {ours['idle_rss_mb']:.0f} | "
                  f"{ours['peak_rss_mb'] - ours['idle_rss_mb']:.0f} | "
                  f"{ours['finish_rss_mb'] - ours['idle_rss_mb']:.0f} | {base['peak_rss_mb']:.0f} | "
                  f"{ours['stored_mb']:.0f} | {ours['timings_ms']} |", flush=True)


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [50, 500])
