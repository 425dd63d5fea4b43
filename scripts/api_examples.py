"""Run a sample request against every endpoint of a live server on the sample data, and write each
request with its real response: all of them into docs/api.md, a few into README.md (between the
api-examples markers of each file).

    python scripts/api_examples.py          # starts a server and a file server, rewrites both files

tests/test_readme.py runs the same requests and fails when either file drifts from what the server
returns. Values that change from run to run (times, keys, ports) are shown as placeholders.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
API_DOC = ROOT / "docs" / "api.md"
START, END = "<!-- api-examples:start -->", "<!-- api-examples:end -->"
FILES_URL = "https://files.example/sample_games.csv"

# (method, path, body, note): run in this order on a fresh server. A body {"file": name} is sent as
# multipart/form-data.
REQUESTS = [
    ("GET", "/healthz", None, "alive (no key needed)"),
    ("GET", "/readyz", None, "the database answers (no key needed)"),
    ("POST", "/api/v1/uploads?wait=true", {"url": "{sample}"}, "load a CSV from a link and wait for the result"),
    ("POST", "/api/v1/uploads?wait=true", {"file": "sample_games.csv"}, "upload a file from disk"),
    ("POST", "/api/v1/uploads/sample?wait=true", None, "load the bundled 100-game sample"),
    ("GET", "/api/v1/uploads", None, "upload history, newest first"),
    ("GET", "/api/v1/uploads/1", None, "one upload"),
    ("POST", "/api/v1/uploads/1/activate", None, "re-activate a kept version"),
    ("GET", "/api/v1/games?genres=indie&price__lt=5&sort=-rating&limit=3"
            "&fields=name,price,reviews,rating,est_revenue", None, "filter, sort, page, choose fields"),
    ("GET", "/api/v1/games?name=bowl&fields=app_id,name,developers&facet=genres&facet_size=3", None, "with facets"),
    ("GET", "/api/v1/games?release_date__gte=2020-01-01&release_date__lt=2021-01-01&fields=name,release_date,tags"
            "&sort=release_date&format=csv&limit=3", None, "export as CSV (the source file's own form)"),
    ("GET", "/api/v1/games/20200", None, "one game"),
    ("GET", "/api/v1/games/aggregate?group_by=genres&metrics=count,median:price,share(rating__gte=0.8)&limit=3",
     None, "aggregate, with the share of games rated 80%+"),
    ("GET", "/api/v1/games/aggregate?group_by=release_year&metrics=count&having=count__gte:10&sort=release_year",
     None, "aggregate with having"),
    ("GET", "/api/v1/games/aggregate?group_by=tags,release_year&metrics=count&top=2&release_date__gte=2020-01-01",
     None, "a trend: games per year for the 2 biggest tags since 2020"),
    ("GET", "/api/v1/games/summary?genres=indie", None, "a segment at a glance"),
    ("GET", "/api/v1/schema", None, "the schema (the first two columns and a derived one shown)"),
    ("POST", "/api/v1/keys", {"name": "alice", "role": "reader"}, "create a reader key (shown once)"),
    ("GET", "/api/v1/keys", None, "list keys"),
    ("DELETE", "/api/v1/keys/alice", None, "revoke a key"),
    ("GET", "/metrics", None, "Prometheus metrics (the HELP lines shown)"),
    ("GET", "/api/v1/games?price=abc", None, "an error"),
    ("GET", "/api/v1/games", None, "without a key (sent without the Authorization header)"),
]
# The few the README shows (the rest are in docs/api.md).
IN_README = ["filter, sort, page, choose fields", "aggregate, with the share of games rated 80%+", "an error"]

_VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00"), "2026-01-01T00:00:00+00:00"),
    (re.compile(r"glk_[A-Za-z0-9_-]{43}"), "glk_…"),
    (re.compile(r"glk_[A-Za-z0-9_-]{4}…"), "glk_…"),
]


def _normalise(value, sample_url: str):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("took_ms", "engine_ms"):
                v = 1.0
            elif k == "timings_ms":
                v = {name: 1 for name in v}
            out[k] = _normalise(v, sample_url)
        return out
    if isinstance(value, list):
        return [_normalise(v, sample_url) for v in value]
    if isinstance(value, str):
        value = value.replace(sample_url, FILES_URL)
        for pattern, repl in _VOLATILE:
            value = pattern.sub(repl, value)
    return value


def _send(client: httpx.Client, method: str, path: str, body, headers: dict, sample_url: str, sample: Path):
    if body and "file" in body:
        return client.request(method, path, headers=headers,
                              files={"file": (body["file"], sample.read_bytes(), "text/csv")})
    payload = json.loads(json.dumps(body).replace("{sample}", sample_url)) if body else None
    return client.request(method, path, json=payload, headers=headers)


def _curl(method: str, path: str, body, headers: dict, sample_url: str) -> str:
    request = f"curl -X {method} " if method != "GET" else "curl "
    if headers:
        request += '-H "Authorization: Bearer $KEY" '
    if body and "file" in body:
        request += f"-F 'file=@{body['file']}' "
    elif body:
        request += f"-H 'Content-Type: application/json' -d '{json.dumps(_normalise(body, sample_url))}' "
    return request.replace("{sample}", FILES_URL) + f"'http://127.0.0.1:8000{path}'"


def _shown(path: str, r: httpx.Response, sample_url: str) -> tuple[str, str]:
    """(language, text) of a response as the docs show it."""
    if r.headers.get("content-type", "").startswith("text/csv"):
        return "csv", r.text.strip()
    if path == "/metrics":
        return "text", "\n".join(line for line in r.text.splitlines() if line.startswith("# HELP"))
    doc = _normalise(r.json(), sample_url)
    if path == "/api/v1/schema":
        doc["columns"] = doc["columns"][:2] + [c for c in doc["columns"] if c["name"] == "rating"]
    return "json", compact(doc)


def compact(value, indent: str = "", width: int = 120) -> str:
    """JSON with each value on one line when it fits in `width`, broken into its items otherwise."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + " "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {compact(v, inner, width).lstrip()}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    items = [inner + compact(v, inner, width).lstrip() for v in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def _finished(client: httpx.Client, upload_id: int, headers: dict) -> None:
    while client.get(f"/api/v1/uploads/{upload_id}", headers=headers).json()["indexes"] == "building":
        time.sleep(0.05)


def run(base: str, key: str, sample_url: str, sample: Path) -> dict[str, str]:
    """note -> its markdown: the request and its real response."""
    parts = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for method, path, body, note in REQUESTS:
            headers = {} if note.startswith("without a key") or path in ("/healthz", "/readyz") else {
                "Authorization": f"Bearer {key}"}
            r = _send(client, method, path, body, headers, sample_url, sample)
            if "wait=true" in path and r.status_code == 200:  # the next request sees a finished version
                _finished(client, r.json()["id"], headers)
            lang, shown = _shown(path, r, sample_url)
            curl = _curl(method, path, body, headers, sample_url)
            parts[note] = f"**{note}** — HTTP {r.status_code}\n\n```bash\n{curl}\n```\n\n```{lang}\n{shown}\n```\n"
    return parts


def blocks(parts: dict[str, str]) -> tuple[str, str]:
    """(README's block, docs/api.md's block)."""
    return "\n".join(parts[n] for n in IN_README), "\n".join(parts.values())


def block_of(path: Path) -> str:
    text = path.read_text()
    return text[text.index(START) + len(START):text.index(END)].strip()


def write_block(path: Path, block: str) -> None:
    text = path.read_text()
    head, tail = text[:text.index(START) + len(START)], text[text.index(END):]
    path.write_text(f"{head}\n{block.strip()}\n{tail}")


def main() -> None:
    import shutil
    import subprocess
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tests.conftest import ADMIN_KEY, ServerProcess
    from tests.fileserver import FileServer

    tmp = Path(tempfile.mkdtemp(prefix="gamelens-examples-"))
    sample = ROOT / "tests" / "data" / "sample_games.csv"
    files = FileServer(sample.parent)
    server = ServerProcess(tmp / "data").start()
    try:
        readme, api = blocks(run(server.base, ADMIN_KEY, files.url("sample_games.csv"), sample))
        write_block(README, readme)
        write_block(API_DOC, api)
    finally:
        server.stop()
        files.close()
        shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["git", "--no-pager", "diff", "--stat", "README.md", "docs/api.md"], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
