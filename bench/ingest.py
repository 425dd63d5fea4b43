"""Upload benchmark: a link -> stored and swapped, against the engine's own INSERT ... SELECT FROM file().

    python bench/ingest.py 50 500        # sizes in MB (files are generated under bench/out once)

For each size, in the same run:
- baseline: a fresh chDB process runs `INSERT INTO t SELECT * FROM file(path, CSVWithNames, <typed
  structure>)` into a MergeTree table with the natural types: the engine parsing the file, no checks;
- gamelens: `gamelens serve` in its own process; POST /api/v1/uploads?wait=true with a link to the
  file on a loopback HTTP server (download, sha256, UTF-8 check, typed load with row checks, swap).
Prints seconds, the ratio gamelens / baseline, and the server's RSS: idle and peak during the upload.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402

BASELINE = r"""
import sys, time, json
from gamelens.engine import Engine
from gamelens.settings import Settings
e = Engine(Settings(data_dir=sys.argv[1], database="bench"))
e.ensure_database()
structure = ("`idx` UInt32, `AppID` UInt32, `Name` String, `Release date` String, `Required age` UInt32, "
  "`Price` Decimal(12, 2), `DLC count` UInt32, `About the game` String, `Supported languages` String, "
  "`Windows` Bool, `Mac` Bool, `Linux` Bool, `Positive` UInt32, `Negative` UInt32, `Score rank` Nullable(UInt32), "
  "`Developers` String, `Publishers` String, `Categories` String, `Genres` String, `Tags` String")
e.execute("CREATE TABLE bench.t (" + structure.replace("`idx` UInt32, ", "") + ") ENGINE = MergeTree ORDER BY AppID")
t = time.perf_counter()
e.execute("INSERT INTO bench.t SELECT * EXCEPT idx FROM file({p:String}, 'CSVWithNames', {s:String})",
          {"p": sys.argv[2], "s": structure}, {"input_format_with_names_use_header": 0})
print(json.dumps({"seconds": time.perf_counter() - t, "rows": e.select("SELECT count() FROM bench.t").scalar()}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def peak_rss(proc: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], proc.memory_info().rss)
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)


def baseline(path: Path) -> dict:
    with tempfile.TemporaryDirectory() as d:
        child = subprocess.Popen([sys.executable, "-c", BASELINE, d, str(path)], stdout=subprocess.PIPE, text=True)
        peak, stop = [0], threading.Event()
        sampler = threading.Thread(target=peak_rss, args=(psutil.Process(child.pid), stop, peak))
        sampler.start()
        out, _ = child.communicate()
        stop.set()
        sampler.join()
    if child.returncode:
        raise RuntimeError("baseline failed")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mb": peak[0] / 2**20}


def gamelens_upload(url: str) -> dict:
    data = Path(tempfile.mkdtemp(prefix="gamelens-bench-"))
    port = free_port()
    env = {**os.environ, "GAMELENS_DATA_DIR": str(data), "GAMELENS_PORT": str(port),
           "GAMELENS_ALLOW_PRIVATE_URLS": "true", "GAMELENS_MAX_UPLOAD_MB": "2000", "GAMELENS_AUTH": "off"}
    server = subprocess.Popen([sys.executable, "-m", "gamelens", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz")
        proc = psutil.Process(server.pid)
        time.sleep(1)
        idle = proc.memory_info().rss
        peak, stop = [idle], threading.Event()
        sampler = threading.Thread(target=peak_rss, args=(proc, stop, peak))
        sampler.start()
        t = time.perf_counter()
        rec = httpx.post(f"{base}/api/v1/uploads?wait=true", json={"url": url}, timeout=3600).json()
        seconds = time.perf_counter() - t
        stop.set()
        sampler.join()
        if rec.get("state") != "succeeded":
            raise RuntimeError(f"upload failed: {rec}")
        return {"seconds": seconds, "rows": rec["rows_loaded"], "stored_mb": rec["stored_bytes"] / 2**20,
                "idle_rss_mb": idle / 2**20,
                "peak_rss_mb": peak[0] / 2**20, "timings_ms": rec["timings_ms"]}
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(data, ignore_errors=True)


# A static file server that sends with sendfile(): the remote host's CPU is not ours to measure,
# and python -m http.server copies every byte through Python on the same two cores.
FILE_SERVER = r"""
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        path = os.path.join(sys.argv[2], os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_error(404); return
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            self.connection.sendfile(f)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def main(sizes: list[float]) -> None:
    OUT.mkdir(exist_ok=True)
    port = free_port()
    files = subprocess.Popen([sys.executable, "-c", FILE_SERVER, str(port), str(OUT)])
    try:
        (OUT / "ready.csv").write_text("x")
        wait_http(f"http://127.0.0.1:{port}/ready.csv")
        print("| size | rows | engine INSERT…SELECT FROM file() s | gamelens upload s | ratio | idle RSS MB "
              "| peak RSS MB | peak − idle MB | engine-only process peak RSS MB | stored (compressed) MB "
              "| phases ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for mb in sizes:
            path = OUT / f"games_{mb:g}mb.csv"
            if not path.exists():
                generate(mb, path)
            base = baseline(path)
            ours = gamelens_upload(f"http://127.0.0.1:{port}/{path.name}")
            assert ours["rows"] == base["rows"], (ours, base)
            print(f"| {mb:g} MB | {ours['rows']} | {base['seconds']:.2f} | {ours['seconds']:.2f} | "
                  f"{ours['seconds'] / base['seconds']:.2f} | {ours['idle_rss_mb']:.0f} | {ours['peak_rss_mb']:.0f} | "
                  f"{ours['peak_rss_mb'] - ours['idle_rss_mb']:.0f} | {base['peak_rss_mb']:.0f} | "
                  f"{ours['stored_mb']:.0f} | {ours['timings_ms']} |", flush=True)
    finally:
        files.terminate()


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [50, 500])
