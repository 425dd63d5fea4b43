"""Where an upload's time goes: every statement the server runs between a link's POST and its answer
(`?wait=true`: the data is served), with its start, its duration and its thread, for uploads in a row.

    python bench/timeline.py 50 2        # size in MB (the file is generated under bench/out once), uploads

The server runs in this process (uvicorn on a thread, auth off) so that the embedded engine's
transport can be timed; the file comes from a loopback HTTP server (bench/harness.py). The first
upload of a process pays one-time costs (the first statements, the download's TLS context); the
next ones are what an upload costs a running server. Statements overlap where threads do (the load
runs on its own thread while the download feeds it; the warm-up runs two at a time).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gamelens import engine  # noqa: E402
from generate import generate  # noqa: E402
from harness import OUT, file_server, free_port  # noqa: E402

SHOWN = 100  # characters of each statement


def timed_transport() -> list[tuple[float, float, str, str]]:
    """(start, seconds, thread, statement) for every statement the embedded transport runs from now on."""
    seen: list[tuple[float, float, str, str]] = []
    for method in ("run", "command", "spool"):
        original = getattr(engine.ChdbTransport, method)

        def timed(self, sql, params, *args, _original=original, **kwargs):
            t0 = time.monotonic()
            try:
                return _original(self, sql, params, *args, **kwargs)
            finally:
                seen.append((t0, time.monotonic() - t0, threading.current_thread().name, " ".join(sql.split())))

        setattr(engine.ChdbTransport, method, timed)
    return seen


def main(megabytes: float, uploads: int) -> None:
    import uvicorn

    from gamelens.api.app import create_app
    from gamelens.settings import Settings

    path = OUT / f"games_{megabytes:g}mb.csv"
    if not path.exists():
        generate(megabytes, path)
    seen = timed_transport()
    data = tempfile.mkdtemp(prefix="gamelens-timeline-")
    settings = Settings(data_dir=data, auth="off", allow_private_urls=True, max_upload_mb=2000,
                        log_level="WARNING")
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=free_port(), log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.config.port}"
    with file_server() as files, httpx.Client(base_url=base, timeout=3600) as client:
        for i in range(uploads):
            time.sleep(2)  # the previous upload's finish (its indexes) runs after its answer
            seen.clear()
            t0 = time.monotonic()
            record = client.post("/api/v1/uploads?wait=true", json={"url": f"{files}/{path.name}"}).json()
            t1 = time.monotonic()
            print(f"\nupload {i + 1} of {path.name}: served in {(t1 - t0) * 1000:.0f} ms; its record's phases "
                  f"{record['timings_ms']}\n| start ms | took ms | thread | statement |\n|---|---|---|---|")
            for start, seconds, thread, sql in sorted(s for s in seen if t0 <= s[0] <= t1):
                print(f"| {(start - t0) * 1000:.1f} | {seconds * 1000:.1f} | {thread} | {sql[:SHOWN]} |")
    server.should_exit = True
    time.sleep(1)
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 50, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
