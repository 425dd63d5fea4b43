"""The image installs chDB without pandas, what pandas brings, and pyarrow (Dockerfile, requirements.txt:
chDB declares them, GameLens never uses them; the engine itself writes Parquet). The service must load,
answer and export in every format without them: a child process, where importing any of them fails,
loads the sample and asks every read route."""

import json
import subprocess
import sys
import textwrap

from .conftest import ADMIN_KEY
from .conftest import test_clickhouse_url as engine_url

ABSENT = ("pandas", "numpy", "dateutil", "pytz", "six", "pyarrow")

CHILD = textwrap.dedent("""
    import importlib.abc, json, sys

    class Absent(importlib.abc.MetaPathFinder):  # as if they were not installed
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {absent}:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
            return None

    sys.meta_path.insert(0, Absent())
    from fastapi.testclient import TestClient
    from gamelens.api.app import create_app
    from gamelens.settings import Settings

    settings = Settings(data_dir={data_dir!r}, clickhouse_url={url!r}, database="deps",
                        admin_key={key!r}, load_via="insert" if {url!r} else "auto")
    status = {{}}
    with TestClient(create_app(settings), headers={{"Authorization": "Bearer {key}"}}) as client:
        status["upload"] = client.post("/api/v1/uploads/sample?wait=true").json()["state"]
        for path in {paths!r}:
            r = client.get(path)
            status[path] = [r.status_code, len(r.content)]
    status["imported"] = [m for m in {absent} if m in sys.modules]
    print(json.dumps(status))
""")

PATHS = ["/api/v1/games", "/api/v1/games?format=csv", "/api/v1/games?format=ndjson", "/api/v1/games?format=parquet",
         "/api/v1/games/aggregate?group_by=genres&metrics=count,avg:price&format=parquet",
         "/api/v1/games/aggregate?group_by=release_year", "/api/v1/games/summary", "/api/v1/games/20200",
         "/api/v1/games/aggregate?group_by=tags,release_year&top=3", "/api/v1/schema", "/"]


def _engine_url(data_dir: str) -> str | None:
    """The suite's engine; clickhouse-connect's chdb:// on the child's own data directory (this process
    holds its own: conftest._EngineHold, and chDB opens one per process)."""
    url = engine_url()
    if url is not None and url.startswith("chdb://"):
        return f"chdb://{data_dir}"
    return url


def test_the_service_runs_without_pandas_and_pyarrow(tmp_path):
    data_dir = str(tmp_path.resolve())
    child = CHILD.format(absent=ABSENT, url=_engine_url(data_dir), data_dir=data_dir, key=ADMIN_KEY, paths=PATHS)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads(done.stdout.strip().splitlines()[-1])
    assert status.pop("upload") == "succeeded" and status.pop("imported") == []
    assert {path: code for path, (code, size) in status.items() if code != 200 or not size} == {}
