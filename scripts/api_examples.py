"""Run a sample request against every endpoint of a live server on the sample data, and write each
request with its real response into README.md (between the api-examples markers).

    python scripts/api_examples.py          # starts a server and a file server, rewrites README.md

tests/test_readme.py runs the same requests and fails when README.md drifts from what the server
returns. Values that change from run to run (times, keys, ports) are shown as placeholders.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- api-examples:start -->", "<!-- api-examples:end -->"
FILES_URL = "https://files.example/sample_games.csv"

# (method, path, body, note): run in this order on a fresh server.
REQUESTS = [
    ("GET", "/healthz", None, "alive (no key needed)"),
    ("GET", "/readyz", None, "the database answers (no key needed)"),
    ("POST", "/api/v1/uploads?wait=true", {"url": "{sample}"}, "load the sample and wait for the result"),
    ("GET", "/api/v1/uploads", None, "upload history, newest first"),
    ("GET", "/api/v1/uploads/1", None, "one upload"),
    ("POST", "/api/v1/uploads/1/activate", None, "re-activate a kept version (already active here)"),
    ("GET", "/api/v1/games?genres=indie&price__lt=5&sort=-positive&limit=2&fields=app_id,name,price,positive,genres",
     None, "filter, sort, page, choose fields"),
    ("GET", "/api/v1/games?name=bowl&fields=app_id,name&facet=genres&facet_size=3", None, "with facets"),
    ("GET", "/api/v1/games?release_date__gte=2020-01-01&release_date__lt=2021-01-01&fields=name,release_date"
            "&sort=release_date&format=csv&limit=3", None, "export as CSV (every matching row)"),
    ("GET", "/api/v1/games/20200", None, "one game"),
    ("GET", "/api/v1/games/aggregate?group_by=genres&metrics=count,avg:price,sum:positive&limit=3", None,
     "aggregate"),
    ("GET", "/api/v1/games/aggregate?group_by=release_year&metrics=count&having=count__gte:10&sort=release_year",
     None, "aggregate with having"),
    ("GET", "/api/v1/schema", None, "the schema (first two columns shown)"),
    ("POST", "/api/v1/keys", {"name": "alice", "role": "reader"}, "create a reader key (shown once)"),
    ("GET", "/api/v1/keys", None, "list keys"),
    ("DELETE", "/api/v1/keys/alice", None, "revoke a key"),
    ("GET", "/metrics", None, "Prometheus metrics (the HELP lines shown)"),
    ("GET", "/api/v1/games?price=abc", None, "an error"),
    ("GET", "/api/v1/games", None, "without a key (sent without the Authorization header)"),
]

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


def run(base: str, key: str, sample_url: str) -> str:
    """The markdown block: each request and its real response."""
    parts = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for method, path, body, note in REQUESTS:
            headers = {} if note.startswith("without a key") or path in ("/healthz", "/readyz") else {
                "Authorization": f"Bearer {key}"}
            payload = json.loads(json.dumps(body).replace("{sample}", sample_url)) if body else None
            r = client.request(method, path, json=payload, headers=headers)
            shown_path = path
            request = f"curl -X {method} " if method != "GET" else "curl "
            if headers:
                request += '-H "Authorization: Bearer $KEY" '
            if payload:
                request += f"-H 'Content-Type: application/json' -d '{json.dumps(_normalise(body, sample_url))}' "
            request = request.replace("{sample}", FILES_URL) + f"'http://127.0.0.1:8000{shown_path}'"
            if r.headers.get("content-type", "").startswith("text/csv"):
                shown = r.text.strip()
            elif path == "/metrics":
                shown = "\n".join(line for line in r.text.splitlines() if line.startswith("# HELP"))
            else:
                doc = _normalise(r.json(), sample_url)
                if path == "/api/v1/schema":
                    doc["columns"] = doc["columns"][:2]
                shown = json.dumps(doc, indent=1, ensure_ascii=False)
            parts.append(f"**{note}** — HTTP {r.status_code}\n\n```bash\n{request}\n```\n\n```json\n{shown}\n```\n")
    return "\n".join(parts)


def readme_block() -> str:
    text = README.read_text()
    return text[text.index(START) + len(START):text.index(END)].strip()


def write_readme(block: str) -> None:
    text = README.read_text()
    head, tail = text[:text.index(START) + len(START)], text[text.index(END):]
    README.write_text(f"{head}\n{block.strip()}\n{tail}")


def main() -> None:
    import shutil
    import subprocess
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tests.conftest import ADMIN_KEY, ServerProcess
    from tests.fileserver import FileServer

    tmp = Path(tempfile.mkdtemp(prefix="gamelens-examples-"))
    files = FileServer(ROOT / "tests" / "data")
    server = ServerProcess(tmp / "data").start()
    try:
        write_readme(run(server.base, ADMIN_KEY, files.url("sample_games.csv")))
    finally:
        server.stop()
        files.close()
        shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["git", "--no-pager", "diff", "--stat", "README.md"], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
