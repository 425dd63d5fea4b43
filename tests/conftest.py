"""Fixtures: one chDB data directory per test process (chDB allows one), a fresh database per app,
a real local HTTP server serving the sample and its variants, and the app driven through its API."""

from __future__ import annotations

import ast
import base64
import csv
import io
import itertools
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

OWNER = "owner.pid"  # in each test process's data directory: its pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _own_data_dir() -> Path:
    """A data directory for this test process, holding its pid (OWNER). chDB holds it until the process is
    gone, so a process cannot remove its own: it removes those of test processes that have ended
    (each run of the suite left ~1.2 GB behind before, and once filled this machine's disk)."""
    for old in Path(tempfile.gettempdir()).glob("gamelens-test-*"):
        try:
            pid = int((old / OWNER).read_text())
        except (OSError, ValueError):  # being created, or not made by this conftest: left alone
            continue
        if not _alive(pid):
            shutil.rmtree(old, ignore_errors=True)
    made = Path(tempfile.mkdtemp(prefix="gamelens-test-"))
    (made / OWNER).write_text(str(os.getpid()))
    return made


# Set before gamelens is imported anywhere: every engine in this process uses this directory.
DATA_DIR = Path(os.environ["GAMELENS_TEST_DATA_DIR"]) if os.environ.get("GAMELENS_TEST_DATA_DIR") else _own_data_dir()
os.environ["GAMELENS_DATA_DIR"] = str(DATA_DIR)

from fastapi.testclient import TestClient  # noqa: E402

from gamelens.api.app import create_app  # noqa: E402
from gamelens.engine import Engine  # noqa: E402
from gamelens.errors import GameLensError  # noqa: E402
from gamelens.settings import Settings  # noqa: E402
from gamelens.store import Store  # noqa: E402

from .fileserver import FileServer  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "sample_games.csv"
ADMIN_KEY = "test-admin-" + os.urandom(8).hex()  # GAMELENS_ADMIN_KEY of every test app
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
_db_counter = itertools.count(1)


def read_sample(path: Path = SAMPLE) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write_csv(rows: list[list[str]], lineterminator: str = "\r\n") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=lineterminator).writerows(rows)
    return buf.getvalue().encode()


def sample_table() -> list[list[str]]:
    with open(SAMPLE, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def sample_named(names: list[str]) -> list[list[str]]:
    """The sample as a table, its first data rows renamed `names`, in order."""
    table = sample_table()
    for row, name in zip(table[1:], names, strict=False):
        row[table[0].index("Name")] = name
    return table


def variants() -> dict[str, bytes]:
    """The sample, and the same data as other producers write it."""
    table = sample_table()
    no_index = [row[1:] for row in table]
    reordered = [list(reversed(row)) for row in no_index]
    return {
        "sample.csv": SAMPLE.read_bytes(),
        "no_index.csv": write_csv(no_index),
        "lf.csv": write_csv(table, "\n"),
        "bom.csv": b"\xef\xbb\xbf" + SAMPLE.read_bytes(),
        "reordered.csv": write_csv(reordered, "\n"),
    }


REVIEW_MULTIPLE = 30.0  # GAMELENS_REVIEW_MULTIPLE's default, which the test apps use


def studios(text: str) -> list[str]:
    """Names joined by a comma with no space after it; ", " belongs to a name."""
    names, current = [], ""
    for i, ch in enumerate(text):
        if ch == "," and text[i + 1:i + 2] != " ":
            names.append(current)
            current = ""
        else:
            current += ch
    return [n.strip() for n in [*names, current] if n.strip()]


def derived(positive: int, negative: int, price: Decimal) -> dict:
    """The derived columns, computed in Python from their published formulas."""
    reviews = positive + negative
    score = positive / reviews if reviews else None
    rating = score - (score - 0.5) * 2 ** (-math.log10(reviews + 1)) if reviews else None
    owners = round(reviews * REVIEW_MULTIPLE)
    return {"reviews": reviews, "review_score": score, "rating": rating, "est_owners": owners,
            "est_revenue": round(owners * float(price), 2)}


def python_row(row: dict[str, str]) -> dict:
    """What the CSV says, interpreted in plain Python (independent of the engine's parse rules)."""

    def date(text):
        for fmt in ("%b %d, %Y", "%b %Y"):
            try:
                return datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                pass
        return None

    def split(text):  # elements trimmed, empty ones dropped, as the loader does
        return [x.strip() for x in text.split(",") if x.strip()]

    positive, negative, price = int(row["Positive"]), int(row["Negative"]), Decimal(row["Price"])
    return {
        "app_id": int(row["AppID"]), "name": row["Name"], "release_date": date(row["Release date"]),
        "release_date_raw": row["Release date"], "required_age": int(row["Required age"]),
        "price": price, "dlc_count": int(row["DLC count"]),
        "about_the_game": row["About the game"],
        "supported_languages": ast.literal_eval(row["Supported languages"]),
        "windows": row["Windows"] == "TRUE", "mac": row["Mac"] == "TRUE", "linux": row["Linux"] == "TRUE",
        "positive": positive, "negative": negative, **derived(positive, negative, price),
        "score_rank": int(row["Score rank"]) if row["Score rank"] else None,
        "developers": studios(row["Developers"]), "publishers": studios(row["Publishers"]),
        "categories": split(row["Categories"]), "genres": split(row["Genres"]), "tags": split(row["Tags"]),
    }



def test_clickhouse_url() -> str | None:
    """The suite's engine path: the embedded chDB driver by default; with GAMELENS_TEST_ENGINE=connect the
    same engine through clickhouse-connect (chdb://), loading CSVs the server way (streamed INSERT
    bodies); with GAMELENS_TEST_CLICKHOUSE_URL a real server."""
    if os.environ.get("GAMELENS_TEST_CLICKHOUSE_URL"):
        return os.environ["GAMELENS_TEST_CLICKHOUSE_URL"]
    if os.environ.get("GAMELENS_TEST_ENGINE") == "connect":
        return f"chdb://{DATA_DIR.resolve()}"
    return None


# Timeouts that make a replaced version's grace (Settings.version_grace_s) 2.5 s, for tests that watch
# versions go (the default is several minutes: the longest export).
SHORT_GRACE = {"queue_timeout_s": 0.25, "query_timeout_s": 1, "export_timeout_s": 1, "version_drop_margin_s": 0}


_made_databases: list[str] = []  # every database a test's settings named, in order (see _drop_databases)


def make_settings(**overrides) -> Settings:
    base = dict(clickhouse_url=test_clickhouse_url(), load_via="insert" if test_clickhouse_url() else "auto",
                data_dir=DATA_DIR, database=f"t{os.getpid()}_{next(_db_counter)}", allow_private_urls=True,
                read_timeout_s=2, connect_timeout_s=2, download_timeout_s=30, admin_key=ADMIN_KEY,
                rate_per_minute=100_000, uploads_per_hour=10_000, max_query_string=1 << 20)
    settings = Settings(**{**base, **overrides})
    _made_databases.append(settings.database)
    return settings


def _default_engine() -> Engine:
    """An Engine on `default`, a database that exists on any server (not one of the test's own)."""
    engine = Engine(make_settings(database="default"))
    _made_databases.pop()
    return engine


class _EngineHold:
    """The test process's embedded engine kept running from its first test to its last, by an Engine
    left open (an open in-process Engine holds an idle connection: engine.py). chDB stops the engine when
    its last connection closes and starts it again at the next connection (the data directory's tables
    loaded again): without this, each test's apps and its database's drop did that once or twice, about
    0.1 s each time. A server process opens its engine once and holds it, as this does; tests of what
    happens when the engine stops take `engine_unheld`."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def hold(self) -> None:
        if self.engine is not None:
            return
        engine = _default_engine()
        if not engine.in_process:  # a ClickHouse server: nothing of it stops with this process's connections
            return
        engine.select("SELECT 1")  # its first statement opens its idle connection
        self.engine = engine

    def release(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()


_hold = _EngineHold()


@pytest.fixture(scope="session", autouse=True)
def _engine_held():
    _hold.hold()
    yield
    _hold.release()


@pytest.fixture
def engine_unheld():
    """The test process's engine without the suite's idle connection (_EngineHold): it stops when the
    test's last connection closes, as it would in a process of the product's."""
    _hold.release()
    yield
    _hold.hold()


@pytest.fixture(autouse=True)
def _drop_databases():
    """Drop the databases a test made once it is done (autouse: torn down after its apps have stopped).
    A start of the embedded engine loads every table in the data directory (engine_unheld's tests):
    kept, the tables of earlier tests made each start slower (`python bench/statements.py 60`: 0.49,
    0.37 and 0.80 s at apps 1, 20 and 60, against 0.19-0.21 s dropped), and the suite with them.
    Databases made before the test (a module's shared app) are left to their owner."""
    before = len(_made_databases)
    yield
    made = dict.fromkeys(_made_databases[before:])  # once each, in order
    made.pop("default", None)  # the engine's own (named by the engine below): dropped, nothing would open
    del _made_databases[before:]
    if not made:
        return
    engine = _default_engine()
    try:
        for name in made:
            engine.execute(f"DROP DATABASE IF EXISTS `{name}` SYNC")
    finally:
        engine.close()


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    for name, data in variants().items():
        (root / name).write_bytes(data)
    server = FileServer(root)
    yield server
    server.close()


@pytest.fixture
def make_client():
    """Start apps (each on its own fresh database); closed at the end of the test."""
    opened = []

    def make(**overrides) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), headers=AUTH)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def upload(client: TestClient, url: str, **body) -> dict:
    """Submit and wait, also for its indexes (built after the switch), so that the next step of a
    test starts on an idle worker; returns the final upload record."""
    r = client.post("/api/v1/uploads?wait=true", json={"url": url, **body})
    assert r.status_code in (200, 422, 413, 400), r.text
    rec = r.json().get("upload", r.json())
    if rec.get("indexes") == "building":
        rec = wait_indexes(client, rec["id"])
    return rec


def wait_indexes(client: TestClient, upload_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        rec = client.get(f"/api/v1/uploads/{upload_id}").json()
        if rec.get("indexes") != "building" or time.monotonic() > deadline:
            return rec
        time.sleep(0.05)


def wait_state(client: TestClient, upload_id: int, states: tuple[str, ...], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = client.get(f"/api/v1/uploads/{upload_id}").json()
        if rec["state"] in states:
            return rec
        time.sleep(0.05)
    raise AssertionError(f"upload {upload_id} never reached {states}: {rec}")


def engine_of(client: TestClient) -> Engine:
    return client.app.state.engine


def table_names(engine: Engine) -> list[str]:
    """Every table and view of the engine's database."""
    return [row[0] for row in Store(engine).tables()]


def active_table(client: TestClient) -> str:
    """The quoted table of the active dataset version."""
    versions = client.app.state.uploads.versions
    return versions.table(versions.active(fresh=True))


def dataset_rows(client: TestClient) -> list[list]:
    """Every stored row of the active dataset, in file order (for byte-identical comparisons)."""
    return engine_of(client).select(f"SELECT COLUMNS('^[^_]'), _row FROM {active_table(client)} ORDER BY _row").rows


class ServerProcess:
    """`gamelens serve` in its own process and data directory (for restarts and kills)."""

    def __init__(self, data_dir: Path, **env):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data_dir = data_dir
        self.env = {**os.environ, "GAMELENS_DATA_DIR": str(data_dir), "GAMELENS_ALLOW_PRIVATE_URLS": "true",
                    "GAMELENS_ADMIN_KEY": ADMIN_KEY,
                    "GAMELENS_PORT": str(self.port), **{f"GAMELENS_{k.upper()}": str(v) for k, v in env.items()}}
        if os.environ.get("GAMELENS_TEST_ENGINE") == "connect":  # the server takes the same engine path
            self.env["GAMELENS_CLICKHOUSE_URL"] = f"chdb://{data_dir.resolve()}"
            self.env["GAMELENS_LOAD_VIA"] = "insert"
        self.proc = None
        self.log = data_dir / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw):
        import httpx

        return httpx.Client(base_url=self.base, headers=AUTH, **{"timeout": 60, **kw})

    def start(self, timeout: float = 60) -> ServerProcess:
        import subprocess
        import sys

        import httpx

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gamelens", "serve"], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except Exception:
                self.kill()


@pytest.fixture
def server_process(tmp_path):
    started = []

    def make(**env) -> ServerProcess:
        proc = ServerProcess(tmp_path / "server-data", **env)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def sample_client(files):
    """An app with the sample loaded, shared by a module's read-only tests."""
    with TestClient(create_app(make_settings()), headers=AUTH) as client:
        rec = upload(client, files.url("sample.csv"))
        assert rec["state"] == "succeeded", rec
        yield client


@pytest.fixture(scope="session")
def sample_rows() -> list[dict]:
    return [python_row(r) for r in read_sample()]


@contextmanager
def finished_app(files, name: str, table: list[list[str]]) -> Iterator[tuple[TestClient, int]]:
    """An app that runs every request (no answer cache) serving `table`, uploaded as file `name` and
    finished (its ranks, packed fields and indexes built); yields the client and the upload's id."""
    (files.root / name).write_bytes(write_csv(table))
    with TestClient(create_app(make_settings(cache_mb=0)), headers=AUTH) as client:
        rec = upload(client, files.url(name))
        assert rec["state"] == "succeeded" and rec["indexes"] == "ready", rec
        yield client, rec["id"]


def fresh_snapshot(client: TestClient):
    """The version the app serves, as a read of the pointer made now sees it."""
    versions = client.app.state.uploads.versions
    versions.active(fresh=True)
    return versions.current()


def walk(client: TestClient, first_params: dict, use_cursor: bool, cursors: list[str] | None = None) -> list[dict]:
    """Every row of GET /games, page by page: by offset or by the next cursor (each one handed out is
    appended to `cursors`, if given)."""
    rows, params = [], dict(first_params)
    for _ in range(200):
        r = client.get("/api/v1/games", params=params)
        assert r.status_code == 200, r.json()
        body = r.json()
        rows += body["rows"]
        if not body["next"]:
            return rows
        if cursors is not None:
            cursors.append(body["next_cursor"])
        if use_cursor:
            params["cursor"] = body["next_cursor"]
        else:
            params["offset"] = body["offset"] + body["limit"]
    raise AssertionError("pagination did not end")


def statements_of(explorer, monkeypatch) -> list[str]:
    """The statements `explorer` runs from now on, on the real engine."""
    statements = []
    real_select = explorer.select

    def counted(*args, **kwargs):
        statements.append(args[1])
        return real_select(*args, **kwargs)

    monkeypatch.setattr(explorer, "select", counted)
    return statements


def decoded_cursor(cursor: str) -> dict:
    """A next_cursor's JSON (query/build.encode_cursor)."""
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def encoded_cursor(doc: dict) -> str:
    """A cursor made by hand from its JSON."""
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def long_statement(engine: Engine, ended: list[BaseException]) -> threading.Thread:
    """A statement of `engine` that runs for minutes unless cancelled, started on a thread (and running
    once this returns); what it raised goes to `ended`."""
    def long():
        try:
            engine.select("SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 1", readonly=False)
        except GameLensError as exc:
            ended.append(exc)

    statement = threading.Thread(target=long, daemon=True)
    statement.start()
    time.sleep(0.5)
    return statement
