"""API keys, roles, rate limits and request hardening."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gamelens.api.app import create_app

from .conftest import ADMIN_KEY, AUTH, make_settings, upload

PUBLIC = {"/healthz", "/readyz"}
ADMIN_ONLY = {("POST", "/api/v1/uploads"), ("POST", "/api/v1/uploads/{upload_id}/activate"),
              ("POST", "/api/v1/uploads/sample"),
              ("POST", "/api/v1/keys"), ("GET", "/api/v1/keys"), ("DELETE", "/api/v1/keys/{name}")}
PATH_VALUES = {"upload_id": "1", "app_id": "20200", "name": "nobody"}
BODIES = {"/api/v1/uploads": {"url": "http://127.0.0.1:9/x.csv"}, "/api/v1/keys": {"name": "matrix", "role": "reader"}}


@pytest.fixture(scope="module")
def secured(files):
    """An app with the sample, a reader key, a revoked key; and every log line it wrote."""
    logs = _Capture()
    logging.getLogger().addHandler(logs)
    with TestClient(create_app(make_settings(uploads_per_hour=10_000)), headers=AUTH) as client:
        assert upload(client, files.url("sample.csv"))["state"] == "succeeded"
        reader = client.post("/api/v1/keys", json={"name": "reader1", "role": "reader"}).json()["key"]
        revoked = client.post("/api/v1/keys", json={"name": "gone", "role": "admin"}).json()["key"]
        assert client.delete("/api/v1/keys/gone").status_code == 200
        yield client, {"reader": reader, "revoked": revoked}, logs
    logging.getLogger().removeHandler(logs)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def _routes(client):
    """Every route the app documents (new routes join the matrix by themselves)."""
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        for method in ops:
            yield method.upper(), path


def _call(client, method, path, headers):
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    if method == "DELETE" and path.startswith("/api/v1/keys"):
        url = "/api/v1/keys/nobody"  # never revoke a real key in the matrix
    return client.request(method, url, headers=headers, json=BODIES.get(path) if method == "POST" else None)


IDENTITIES = ["none", "wrong", "revoked", "reader", "admin"]


def test_every_route_for_every_identity(secured):
    client, keys, _ = secured
    headers = {"none": {"Authorization": ""}, "wrong": {"Authorization": "Bearer glk_wrong"},
               "revoked": {"Authorization": f"Bearer {keys['revoked']}"},
               "reader": {"X-API-Key": keys["reader"], "Authorization": ""}, "admin": AUTH}
    routes = sorted(set(_routes(client)))
    assert ("GET", "/api/v1/games") in routes and ("POST", "/api/v1/uploads") in routes
    for method, path in routes:
        for who in IDENTITIES:
            status = _call(client, method, path, headers[who]).status_code
            if path in PUBLIC or path.startswith(("/docs", "/openapi", "/redoc")) or not (
                    path.startswith("/api/") or path == "/metrics"):
                expected = "open"
            elif who in ("none", "wrong", "revoked"):
                expected = 401
            elif who == "reader" and (method, path) in ADMIN_ONLY:
                expected = 403
            else:
                expected = "open"
            if expected == "open":
                assert status not in (401, 403), (method, path, who, status)
            else:
                assert status == expected, (method, path, who, status)


def _role(method: str, path: str) -> str:
    """The role a route needs, by the rules the matrix above checks against the app."""
    if path in PUBLIC:
        return "none"
    if (method, path) in ADMIN_ONLY:
        return "admin"
    return "reader"


def test_the_api_reference_names_the_role_each_route_needs(secured):
    """docs/api.md's table of routes says what the app does (it once said /metrics needs no key)."""
    client, _, _ = secured
    unnamed = {re.sub(r"\{[^}]*\}", "{}", path): path for _, path in _routes(client)}
    documented = 0
    for line in (Path(__file__).parent.parent / "docs" / "api.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = line.split(" | ")
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`]*)`", cells[0]):
            full = path if path in ("/healthz", "/readyz", "/metrics") else f"/api/v1{path}"
            route = unnamed[re.sub(r"\{[^}]*\}", "{}", full)]
            assert cells[1].strip() == _role(method, route), line
            documented += 1
    assert documented >= 14


def test_401_and_403_bodies(secured):
    client, keys, _ = secured
    r = client.get("/api/v1/games", headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    reader = {"Authorization": f"Bearer {keys['reader']}"}
    r = client.post("/api/v1/uploads", json={"url": "http://x/y.csv"}, headers=reader)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/api/v1/uploads?nope=1", "/api/v1/uploads/sample?nope=1",
                                  "/api/v1/uploads/1/activate?nope=1"])
def test_a_reader_is_refused_before_the_query_is_read(secured, path):
    """A reader's key gets 403 for an admin route whatever the query says, not a 400 about it."""
    client, keys, _ = secured
    r = client.post(path, json={"url": "http://x/y.csv"}, headers={"Authorization": f"Bearer {keys['reader']}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text


def test_keys_never_shown_again_nor_logged(secured):
    client, keys, logs = secured
    listing = client.get("/api/v1/keys").text
    uploads = client.get("/api/v1/uploads").text
    for key in (*keys.values(), ADMIN_KEY):
        assert key not in listing and key not in uploads
        assert not any(key in line for line in logs.lines)
    names = {k["name"]: k for k in client.get("/api/v1/keys").json()["keys"]}
    assert names["reader1"]["role"] == "reader" and names["reader1"]["hint"].endswith("…")
    assert names["gone"]["revoked_at"]


def test_created_keys_are_random_and_prefixed(secured):
    client, _, _ = secured
    made = [client.post("/api/v1/keys", json={"name": f"k{i}"}).json()["key"] for i in range(3)]
    assert all(re.fullmatch(r"glk_[A-Za-z0-9_-]{43}", k) for k in made)
    assert len(set(made)) == 3
    assert client.post("/api/v1/keys", json={"name": "k0"}).status_code == 409
    assert client.post("/api/v1/keys", json={"name": "bad name!"}).status_code == 400


def test_upload_records_the_key_name(secured, files):
    client, _, _ = secured
    rec = upload(client, files.url("sample.csv"))
    assert rec["created_by"] == "env-admin"
    ops = client.post("/api/v1/keys", json={"name": "ops", "role": "admin"}).json()["key"]
    r = client.post("/api/v1/uploads/sample?wait=true&activate=false", headers={"Authorization": f"Bearer {ops}"})
    assert (r.status_code, r.json()["created_by"]) == (200, "ops"), r.text


def test_rate_limit_triggers_and_recovers(make_client):
    client = make_client(rate_per_minute=120)  # bursts of 24, then 2 per second
    statuses = [client.get("/api/v1/schema").status_code for _ in range(30)]
    assert statuses[:24] == [200] * 24 and 429 in statuses[24:]
    r = client.get("/api/v1/schema")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    time.sleep(1.1)
    assert client.get("/api/v1/schema").status_code == 200
    assert client.get("/healthz").status_code == 200  # health checks are never limited


def test_uploads_are_limited_per_hour(make_client, files):
    """Two an hour; a body or link refused as malformed is its own 400 and costs none of them (an ftp://
    link once took one, and then answered 429 instead of saying what was wrong)."""
    client = make_client(uploads_per_hour=2)
    for _ in range(3):
        r = client.post("/api/v1/uploads", json={"url": "ftp://example.com/games.csv"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_scheme", r.text
        r = client.post("/api/v1/uploads", json={"url": "https://exa mple.com/games.csv"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_url", r.text
    assert client.post("/api/v1/uploads", content=b"not json").json()["error"]["code"] == "invalid_parameter"
    for _ in range(2):
        assert client.post("/api/v1/uploads", json={"url": files.url("sample.csv")}).status_code == 202
    r = client.post("/api/v1/uploads", json={"url": files.url("sample.csv")})
    assert r.status_code == 429 and "retry-after" in r.headers
    # nor does a host refused at submit (a private address here): a typo in a host name used one up
    strict = make_client(uploads_per_hour=2, allow_private_urls=False)
    for _ in range(3):
        r = strict.post("/api/v1/uploads", json={"url": "http://10.0.0.1/games.csv"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "private_address", r.text
    assert [strict.post("/api/v1/uploads/sample").status_code for _ in range(3)] == [202, 202, 429]


def test_the_sample_takes_no_body(client):
    """{"activate": false} sent as a body was ignored, and the sample served in place of the data."""
    r = client.post("/api/v1/uploads/sample", json={"activate": False})
    assert r.status_code == 400 and r.json()["error"]["param"] == "body", r.text
    assert client.get("/api/v1/uploads").json()["uploads"] == []


def test_request_size_caps(make_client):
    client = make_client(max_query_string=1000, max_body_kb=1)
    r = client.get("/api/v1/games?name=" + "x" * 2000)
    assert r.status_code == 414 and r.json()["error"]["code"] == "query_too_long"
    r = client.post("/api/v1/uploads", json={"url": "http://example.com/" + "x" * 2000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    # a file sent as another type of body: the 413 names the two a file may come as
    for body in (b"AppID,Name\n" * 200, iter([b"AppID,Name\n" * 200])):  # with and without Content-Length
        r = client.post("/api/v1/uploads", content=body, headers={"Content-Type": "text/plain"})
        message = r.json()["error"]["message"]
        assert r.status_code == 413 and "multipart/form-data" in message and "text/csv" in message, message
    # two Content-Types: the cap is the one of the first, which the route reads (a large JSON body was parsed)
    r = client.post("/api/v1/uploads", content=b"{" * 2000,
                    headers=[("Content-Type", "application/json"), ("Content-Type", "text/csv")])
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large", r.text
    r = client.post("/api/v1/keys", content=b"{" * 2000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "text/csv" not in r.json()["error"]["message"]


def test_cors_off_unless_configured(make_client):
    plain = make_client()
    r = plain.get("/api/v1/schema", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    cors = make_client(cors_origins="https://ok.example")
    r = cors.get("/api/v1/schema", headers={"Origin": "https://ok.example"})
    assert r.headers["access-control-allow-origin"] == "https://ok.example"


def test_security_headers(client):
    r = client.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"


def test_auth_off_is_explicit_and_warned(caplog):
    with caplog.at_level(logging.WARNING), TestClient(create_app(make_settings(auth="off", admin_key=None))) as c:
        assert c.get("/api/v1/schema").status_code == 200
    assert "GAMELENS_AUTH=off" in caplog.text


def test_first_start_creates_an_admin_key_once(server_process):
    """Started the way compose starts it, with GAMELENS_ADMIN_KEY set to an empty string: that means
    "no key", so the first start creates one and prints it once."""
    server = server_process(admin_key="")
    assert server.env["GAMELENS_ADMIN_KEY"] == ""
    server.start()
    printed = re.findall(r"glk_[A-Za-z0-9_-]{43}", server.log.read_text())
    assert len(printed) == 1
    import httpx

    ok = httpx.get(f"{server.base}/api/v1/schema", headers={"Authorization": f"Bearer {printed[0]}"})
    assert ok.status_code == 200
    assert httpx.get(f"{server.base}/api/v1/schema").status_code == 401
    server.stop()
    server.start()
    assert re.findall(r"glk_[A-Za-z0-9_-]{43}", server.log.read_text()) == printed  # not re-created
    assert httpx.get(f"{server.base}/api/v1/keys", headers={"X-API-Key": printed[0]}).status_code == 200


def test_an_empty_admin_key_is_never_a_key():
    from gamelens.settings import Settings

    assert Settings(admin_key="").admin_key is None
    assert Settings(admin_key="  ").admin_key is None


def test_the_first_start_key_is_logged_once_and_never_again(files):
    """The one path that logs a key (the first start) logs it in exactly one line; using the key,
    creating and revoking keys, failing with keys, never writes a key to the log again."""
    logs, root = _Capture(), logging.getLogger()
    level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)  # access lines too
    try:
        with TestClient(create_app(make_settings(admin_key=None))) as client:
            [key] = {k for line in logs.lines for k in re.findall(r"glk_[A-Za-z0-9_-]{43}", line)}
            admin = {"Authorization": f"Bearer {key}"}
            assert upload_with(client, admin, files.url("sample.csv"))
            assert client.get("/api/v1/uploads/1", headers=admin).json()["created_by"] == "admin"
            made = client.post("/api/v1/keys", json={"name": "logged", "role": "reader"}, headers=admin).json()["key"]
            client.get("/api/v1/games?price=abc", headers={"X-API-Key": made})
            client.get("/api/v1/games", headers={"Authorization": f"Bearer {made}x"})
            client.delete("/api/v1/keys/logged", headers=admin)
            client.get("/api/v1/games", headers={"X-API-Key": made})
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
    assert sum(key in line for line in logs.lines) == 1
    assert not any(made in line for line in logs.lines)
    assert len(logs.lines) > 5  # the requests above were logged, without their keys


def upload_with(client, headers, url) -> bool:
    r = client.post("/api/v1/uploads?wait=true", json={"url": url}, headers=headers)
    return r.json().get("state") == "succeeded"


def test_a_revoked_key_stops_at_once_even_during_a_reload(make_client):
    """A cache reload that read the keys before a revoke must not bring the revoked key back."""
    client = make_client()
    store = client.app.state.guard.keys
    key = client.post("/api/v1/keys", json={"name": "racer", "role": "reader"}).json()["key"]
    assert store.match(key) is not None
    read, resume = threading.Event(), threading.Event()
    real = store._records

    def slow_records():
        records = real()  # the keys as they are now: racer still active
        if threading.current_thread().name == "stale-reload":
            read.set()
            resume.wait(10)
        return records

    store._records = slow_records
    stale = threading.Thread(target=store._reload, name="stale-reload")
    stale.start()
    assert read.wait(10)
    assert client.delete("/api/v1/keys/racer").status_code == 200
    resume.set()
    stale.join()
    assert store.match(key) is None
    assert client.get("/api/v1/schema", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_docs_are_served_from_the_package_under_the_strict_csp(client):
    from gamelens.api.ui import CSP

    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sources and all(s.startswith("/") for s in sources), sources  # nothing from another origin
    assert "<script>" not in r.text  # no inline script
    for path in sources:
        asset = client.get(path)
        assert asset.status_code == 200 and len(asset.content) > 100, path
    assert client.get("/").headers["content-security-policy"] == CSP
    assert client.get("/redoc").status_code == 404


@pytest.mark.above_the_engine  # the CLI on a data directory runs the embedded engine in both passes
def test_cli_manages_keys(tmp_path):
    env_cmd = [sys.executable, "-m", "gamelens", "keys"]
    env = {"GAMELENS_DATA_DIR": str(tmp_path / "d"), "PATH": "/usr/bin:/bin"}

    def run(*args):
        return subprocess.run([*env_cmd, *args], capture_output=True, text=True, env=env, timeout=120)

    made = run("create", "--role", "reader", "--name", "alice")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("glk_")
    listed = run("list")  # piped: JSON
    keys = {k["name"]: k for k in json.loads(listed.stdout)["keys"]}
    assert keys["alice"]["role"] == "reader" and key not in listed.stdout
    assert run("revoke", "alice").returncode == 0
    assert json.loads(run("list").stdout)["keys"][0]["revoked_at"]
    missing = run("revoke", "bob")
    assert missing.returncode == 1 and "no active key" in missing.stdout + missing.stderr


def test_openapi_declares_both_ways_to_send_a_key(client):
    """/docs' Authorize button works: the document declares Bearer and X-API-Key, on every keyed route."""
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["HTTPBearer"].items()
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= schemes["APIKeyHeader"].items()
    for path, method in (("/api/v1/games", "get"), ("/api/v1/uploads", "post"), ("/api/v1/keys", "get")):
        assert {"HTTPBearer": []} in doc["paths"][path][method]["security"], path
        assert {"APIKeyHeader": []} in doc["paths"][path][method]["security"], path
    r = client.get("/api/v1/schema", headers={"Authorization": "", "X-API-Key": ADMIN_KEY})
    assert r.status_code == 200


def test_keys_created_or_revoked_at_once_under_one_name_are_one_change(make_client, monkeypatch):
    """helper-66: three creates of `bob` at once all answered 201 with three keys, of which one was
    stored (the others never worked); three revokes all answered 200. Of the requests that read the
    same record, exactly one changes it (a claim in the database: replicas race the same way); the
    others are told, 409 and 404 as when they come one after another."""
    from concurrent.futures import ThreadPoolExecutor

    client = make_client()
    store = client.app.state.guard.keys
    real = store.store.key_doc
    barrier = threading.Barrier(4)

    def read_together(name):  # every request reads the record before any of them claims the change
        doc = real(name)
        barrier.wait(10)
        return doc

    monkeypatch.setattr(store.store, "key_doc", read_together)
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: client.post("/api/v1/keys", json={"name": "bob", "role": "reader"}), range(4)))
    assert sorted(r.status_code for r in made) == [201, 409, 409, 409], [r.text for r in made]
    [key] = [r.json()["key"] for r in made if r.status_code == 201]
    assert client.get("/api/v1/schema", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with ThreadPoolExecutor(4) as pool:
        revoked = list(pool.map(lambda _: client.delete("/api/v1/keys/bob"), range(4)))
    assert sorted(r.status_code for r in revoked) == [200, 404, 404, 404], [r.text for r in revoked]
    [when] = [r.json()["revoked_at"] for r in revoked if r.status_code == 200]
    assert [k["revoked_at"] for k in client.get("/api/v1/keys").json()["keys"] if k["name"] == "bob"] == [when]


def test_a_claim_on_a_keys_change_whose_claimer_stopped_is_void_in_time(make_client, monkeypatch):
    """A claimer that stopped between its claim and its record would block the name for ever: its claim
    is void after keys.CLAIM_VOID_S (0 here), and the next claim of the same change is taken."""
    from gamelens import keys as keys_module

    client = make_client()
    store = client.app.state.guard.keys
    assert store._claim_change("carol", None)  # a claimer that stops here
    assert client.post("/api/v1/keys", json={"name": "carol"}).status_code == 409
    monkeypatch.setattr(keys_module, "CLAIM_VOID_S", -1)
    r = client.post("/api/v1/keys", json={"name": "carol"})
    assert r.status_code == 201, r.text


def test_a_keys_change_that_could_not_be_written_leaves_the_name_free(make_client, monkeypatch):
    """helper-67: a create whose write failed (a full disk) kept its claim: the name was refused as
    `key_exists` for 30 s with no key; so would be a start's first admin key."""
    from gamelens.errors import GameLensError

    client = make_client()
    store = client.app.state.guard.keys

    def full_disk(name, doc):
        raise GameLensError("insufficient_storage", "no room", 507)

    with monkeypatch.context() as m:
        m.setattr(store.store, "save_key", full_disk)
        assert client.post("/api/v1/keys", json={"name": "gina"}).status_code == 507
    r = client.post("/api/v1/keys", json={"name": "gina"})
    assert r.status_code == 201, r.text


def test_a_first_start_while_the_admin_key_is_claimed_starts_all_the_same(caplog):
    """A start whose first admin key another process is creating (or stopped creating) logs it and starts;
    it raised `key_exists` and the server did not start."""
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        assert client.app.state.guard.keys._claim_change("admin", None)
    with TestClient(create_app(settings.model_copy(update={"admin_key": None}))) as client:
        assert client.get("/readyz").status_code == 200
        assert client.app.state.guard.keys.count_active() == 0
    assert "another process is creating the first admin key" in caplog.text
