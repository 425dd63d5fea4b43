"""The `gamelens` command as a user runs it: on the data directory, or through a running server."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

from .conftest import ADMIN_KEY, SAMPLE

CMD = [sys.executable, "-m", "gamelens"]


def run(*args, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, *args], capture_output=True, text=True, env=env, timeout=timeout)


def _env(data_dir, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMELENS_")}
    return {**env, "GAMELENS_DATA_DIR": str(data_dir), "COLUMNS": "200", **extra}


def test_load_and_ask_on_the_data_directory(tmp_path):
    env = _env(tmp_path / "d")
    loaded = run("load", str(SAMPLE), env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert f"Data directory: {(tmp_path / 'd').resolve()}" in loaded.stderr and "Loaded 100 rows" in loaded.stderr
    summary = run("summary", "genres=indie", env=env)
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["games"] == 67
    trend = json.loads(run("aggregate", "group_by=tags,release_year", "top=2", env=env).stdout)
    assert len(trend["series"]) == 2
    exported = run("games", "fields=name,rating", "sort=-rating", "limit=3", "format=csv", env=env)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["name"] for r in rows][0] == "Oxygen Not Included" and len(rows) == 3
    bad = run("games", "price=abc", env=env)
    assert bad.returncode == 1 and "is not a number" in bad.stderr and "Traceback" not in bad.stderr


def test_the_sample_command(tmp_path):
    env = _env(tmp_path / "d")
    out = run("sample", env=env)
    assert out.returncode == 0 and "Loaded 100 rows" in out.stderr, out.stderr


def test_while_a_server_holds_the_data_directory(server_process, files):
    server = server_process().start()
    env = _env(server.data_dir)
    refused = run("load", str(SAMPLE), env=env)
    assert refused.returncode == 1
    assert "A running GameLens server is using" in refused.stderr and "--server" in refused.stderr
    assert "Code:" not in refused.stderr and "DB::Exception" not in refused.stderr
    through = {**env, "GAMELENS_SERVER": server.base, "GAMELENS_KEY": ADMIN_KEY}
    sent = run("load", str(SAMPLE), env=through)
    assert sent.returncode == 0 and "Loaded 100 rows" in sent.stderr, sent.stderr
    linked = run("load", files.url("sample.csv"), "--server", server.base, env={**env, "GAMELENS_KEY": ADMIN_KEY})
    assert linked.returncode == 0, linked.stderr
    asked = run("summary", "price=0", env=through)
    assert json.loads(asked.stdout)["share_free"] == 1
    nokey = run("summary", env={**env, "GAMELENS_SERVER": server.base})
    assert nokey.returncode == 1 and "GAMELENS_KEY" in nokey.stderr
