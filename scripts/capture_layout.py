"""Capture the database that a past release writes, as DDL plus rows, for the upgrade tests.

    python scripts/capture_layout.py 421b14a tests/data/layouts/421b14a

Runs that release's own code (`git archive` of the commit, on this venv's packages) in a subprocess
with a data directory of its own. The release loads two files through its API: 10 rows of the
sample, then 11 others, so its database holds an active version and a kept older one, their upload
records, its API keys and (from the pointer release on) its version pointer. Each table of its
database is then written as `<table>.sql` (SHOW CREATE TABLE, the database spelt `{db}`) and
`<table>.ndjson` (its rows). tests/test_upgrades.py rebuilds the database from these files and starts
today's code on it.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "sample_games.csv"
FIRST, SECOND = range(1, 11), [*range(63, 73), 93]  # data rows: zero reviews, ", Inc." names, a month-only date

# Runs inside the old release: its create_app, its loader, its tables.
DRIVER = r"""
import functools, http.server, json, os, sys, threading, time
from pathlib import Path
import chdb
from fastapi.testclient import TestClient
from gamelens.api.app import create_app

files, out, db = Path(sys.argv[1]), Path(sys.argv[2]), os.environ["GAMELENS_DATABASE"]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(files))
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
auth = {"Authorization": "Bearer " + os.environ["GAMELENS_ADMIN_KEY"]}
with TestClient(create_app(), headers=auth) as client:
    for name in ("first.csv", "second.csv"):
        url = f"http://127.0.0.1:{server.server_port}/{name}"
        rec = client.post("/api/v1/uploads?wait=true", json={"url": url}).json()
        assert rec["state"] == "succeeded", rec
        while rec.get("indexes") == "building":  # later releases build indexes after the switch
            time.sleep(0.1)
            rec = client.get(f"/api/v1/uploads/{rec['id']}").json()
server.shutdown()

conn = chdb.connect(os.environ["GAMELENS_DATA_DIR"])
q = lambda sql: conn.query(sql, "JSONEachRow").bytes().decode()
tables = [json.loads(line)["name"] for line in q(
    f"SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name").splitlines()]
for name in tables:
    ddl = json.loads(q(f"SHOW CREATE TABLE `{db}`.`{name}`").splitlines()[0])["statement"]
    (out / f"{name}.sql").write_text(ddl.replace(f"{db}.", "{db}.") + "\n")
    (out / f"{name}.ndjson").write_text(q(f"SELECT * FROM `{db}`.`{name}` ORDER BY tuple(*)"))
"""


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode()


def capture(commit: str, out: Path) -> None:
    with open(SAMPLE, encoding="utf-8", newline="") as f:
        table = list(csv.reader(f))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        files = tmp / "files"
        files.mkdir()
        (files / "first.csv").write_bytes(_csv([table[0], *(table[i] for i in FIRST)]))
        (files / "second.csv").write_bytes(_csv([table[0], *(table[i] for i in SECOND)]))
        env = {**os.environ, "PYTHONPATH": str(tmp / "src"), "GAMELENS_DATA_DIR": str(tmp / "data"),
               "GAMELENS_DATABASE": "gamelens", "GAMELENS_ALLOW_PRIVATE_URLS": "true",
               "GAMELENS_ADMIN_KEY": "capture-" + os.urandom(8).hex(), "GAMELENS_LOG_FORMAT": "text"}
        subprocess.run([sys.executable, "-c", DRIVER, str(files), str(out)], env=env, check=True, cwd=tmp)
    (out / "README").write_text(f"The database that release {commit} writes after loading two files "
                                f"(`python scripts/capture_layout.py {commit} <this folder>`).\n")


if __name__ == "__main__":
    capture(sys.argv[1], Path(sys.argv[2]).resolve())
