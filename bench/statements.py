"""What an app's start and an upload of the sample cost in statements, and how a start grows when the
databases of earlier apps stay in the data directory (the embedded engine stops when its last connection
closes, and its next start loads every table there: the test suite's case before tests/conftest.py
`_drop_databases` and `_EngineHold`). One process, the embedded engine, a fresh data directory per variant.

    python bench/statements.py 60     # rounds per variant: each an app on a new database, one upload
"""

from __future__ import annotations

import collections
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from gamelens.api.app import create_app
from gamelens.engine import Engine
from gamelens.settings import Settings

KEY = "bench-" + secrets.token_hex(8)
REPORTED = (1, 20, 60)
statements: list[tuple[float, str]] = []


def _counted(method):
    def run(self, sql, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(self, sql, *args, **kwargs)
        finally:
            statements.append((time.perf_counter() - t0, sql))
    return run


def _summary(label: str) -> None:
    total = sum(t for t, _ in statements)
    print(f"{label}: {len(statements)} statements, {total:.3f} s in them")
    kinds = collections.defaultdict(lambda: [0, 0.0])
    for t, sql in statements:
        kind = kinds[re.sub(r"\d+", "N", " ".join(sql.split())[:60])]
        kind[0] += 1
        kind[1] += t
    for kind, (n, t) in sorted(kinds.items(), key=lambda item: -item[1][1])[:6]:
        print(f"  {n:3d} × {t:.3f} s  {kind}")


def _round(data_dir: Path, n: int, drop: bool) -> tuple[float, float]:
    settings = Settings(data_dir=data_dir, database=f"b{n}", admin_key=KEY, allow_private_urls=True)
    t0 = time.perf_counter()
    client = TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"})
    client.__enter__()
    started = time.perf_counter() - t0
    statements.clear()
    t0 = time.perf_counter()
    body = client.post("/api/v1/uploads/sample?wait=true").json()
    while client.get(f"/api/v1/uploads/{body['id']}").json()["indexes"] == "building":
        time.sleep(0.05)
    uploaded = time.perf_counter() - t0
    if n == 1:
        _summary("an upload of the sample")
    client.__exit__(None, None, None)
    if drop:
        engine = Engine(Settings(data_dir=data_dir, database="default"))
        engine.execute(f"DROP DATABASE IF EXISTS `b{n}` SYNC")
        engine.close()
    return started, uploaded


def main(rounds: int) -> None:
    Engine.execute, Engine.select = _counted(Engine.execute), _counted(Engine.select)
    for drop in (False, True):
        data_dir = Path(tempfile.mkdtemp(prefix="gamelens-bench-"))
        print(f"--- each app's database {'dropped after it' if drop else 'left in the data directory'}")
        for n in range(1, rounds + 1):
            started, uploaded = _round(data_dir, n, drop)
            if n in REPORTED or n == rounds:
                print(f"app {n}: start {started:.2f} s, upload {uploaded:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
