"""What the benchmarks share: a sendfile file server, a `gamelens serve` process, RSS sampling."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

OUT = Path(__file__).resolve().parent / "out"

# The generated file's columns with their natural types: the engine's own typed insert, the baseline of
# bench/ingest.py and bench/parse.py (read by position; `idx` is the file's unnamed first column).
TYPED_STRUCTURE = (
    "`idx` UInt32, `AppID` UInt32, `Name` String, `Release date` String, `Required age` UInt32, "
    "`Price` Decimal(12, 2), `DLC count` UInt32, `About the game` String, `Supported languages` String, "
    "`Windows` Bool, `Mac` Bool, `Linux` Bool, `Positive` UInt32, `Negative` UInt32, `Score rank` Nullable(UInt32), "
    "`Developers` String, `Publishers` String, `Categories` String, `Genres` String, `Tags` String")

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


@contextmanager
def file_server(directory: Path = OUT):
    """Serve `directory` on loopback; yields its base URL."""
    directory.mkdir(exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", FILE_SERVER, str(port), str(directory)])
    try:
        (directory / "ready.csv").write_text("x")
        wait_http(f"http://127.0.0.1:{port}/ready.csv")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()


@contextmanager
def gamelens_server(data: Path | None = None, **env: str):
    """`gamelens serve`, auth off, on `data` (kept) or a fresh data directory (removed after);
    yields (base URL, psutil.Process)."""
    keep = data is not None
    if data is None:
        data = Path(tempfile.mkdtemp(prefix="gamelens-bench-"))
    port = free_port()
    full = {**os.environ, "GAMELENS_DATA_DIR": str(data), "GAMELENS_PORT": str(port), "GAMELENS_AUTH": "off",
            "GAMELENS_ALLOW_PRIVATE_URLS": "true", "GAMELENS_MAX_UPLOAD_MB": "2000", "GAMELENS_LOG_LEVEL": "WARNING",
            "GAMELENS_RATE_PER_MINUTE": "100000000",
            **env}
    server = subprocess.Popen([sys.executable, "-m", "gamelens", "serve"], env=full,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz")
        yield base, psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(60)
        if not keep:
            shutil.rmtree(data, ignore_errors=True)


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread while the `with` block runs."""

    def __init__(self, proc: psutil.Process):
        self.proc, self.peak, self._stop = proc, proc.memory_info().rss, threading.Event()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.02)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]


def wait_indexes(client: httpx.Client, upload_id: int, timeout: float = 600) -> dict:
    """Until the upload's indexes (built after the switch) are ready; returns the record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = client.get(f"/api/v1/uploads/{upload_id}").json()
        if rec.get("indexes") != "building":
            return rec
        time.sleep(0.2)
    raise RuntimeError(f"indexes of upload {upload_id} not ready after {timeout} s")
