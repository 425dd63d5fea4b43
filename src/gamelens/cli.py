"""The `gamelens` command: serve; load data (a link, a file, the bundled sample); ask questions
(games, aggregate, summary); manage keys.

Data commands work on the local data directory (GAMELENS_DATA_DIR, printed on every run), or, with
--server URL (or GAMELENS_SERVER) and GAMELENS_KEY, through a running server. The embedded engine
allows one process per data directory, so while `gamelens serve` runs, send commands through it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import GameLensError
from .settings import get_settings

app = typer.Typer(help="GameLens: store a games CSV and explore it.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)
Server = typer.Option(None, "--server", envvar="GAMELENS_SERVER",
                      help="Send the command to a running GameLens (e.g. http://127.0.0.1:8000) with the key in "
                      "GAMELENS_KEY, instead of opening the data directory.")
Params = typer.Argument(None, help="Query parameters as name=value, as in the API: genres=indie sort=-rating "
                        "format=csv ...")


@app.command()
def serve(
    host: str = typer.Option(None, help="Listen address (default GAMELENS_HOST)."),
    port: int = typer.Option(None, help="Port (default GAMELENS_PORT)."),
):
    """Start the API and web UI (one worker process: the embedded engine allows one per data dir)."""
    import uvicorn

    from .api.app import create_app
    from .observe import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, workers=1,
                log_config=None, access_log=False, timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5)


# --- where commands run: the data directory, or a server ----------------------------------------


@contextmanager
def _local():
    """The engine on the local data directory, said out loud; one clear sentence when a server has it."""
    from .engine import Engine
    from .store import Store

    settings = get_settings()
    console.print(f"Data directory: {settings.data_dir.resolve()}")
    engine = Engine(settings)
    try:
        store = Store(engine, settings.clickhouse_cluster)
        store.create_database()
        store.create_bookkeeping()
    except GameLensError as exc:
        if exc.code == "data_dir_in_use":
            raise GameLensError("data_dir_in_use", f"A running GameLens server is using {settings.data_dir.resolve()}: "
                                f"send this through it with --server http://{settings.host}:{settings.port} and "
                                "GAMELENS_KEY set to an admin key, or stop the server first.", 409) from None
        raise
    try:
        yield engine
    finally:
        engine.close()


def _client(server: str):
    import httpx

    key = os.environ.get("GAMELENS_KEY", "")
    if not key:
        raise GameLensError("no_key", "Set GAMELENS_KEY to an API key to use --server.", 401)
    console.print(f"Server: {server}")
    return httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=600)


def _checked(response) -> dict:
    body = response.json()
    if response.status_code >= 400:
        err = body.get("error", {})
        raise GameLensError(err.get("code", "error"), err.get("message", response.text), response.status_code)
    return body


# --- loading -------------------------------------------------------------------------------------


@app.command()
def load(
    source: str = typer.Argument(..., help="An http(s) link or a local file path."),
    max_rejected_rows: int = typer.Option(None, help="Rows allowed to fail parsing (default from settings)."),
    server: str = Server,
):
    """Load a CSV from a link or a file (the previous dataset stays until the new one is checked)."""
    link = source.startswith(("http://", "https://"))
    if server:
        with _client(server) as http:
            if link:
                body = {"url": source, "max_rejected_rows": max_rejected_rows}
                rec = _checked(http.post("/api/v1/uploads", json=body))
            else:
                with open(source, "rb") as f:
                    form = {} if max_rejected_rows is None else {"max_rejected_rows": str(max_rejected_rows)}
                    rec = _checked(http.post("/api/v1/uploads", files={"file": (Path(source).name, f)}, data=form))
            _report(_follow_on(http, rec))
        return
    with _uploads() as jobs:
        if link:
            rec = jobs.submit(source, "cli", max_rejected_rows)
        else:
            path = Path(source).resolve()
            rec = jobs.submit_file(path, str(path), "path", "cli", max_rejected_rows)
        _report(_follow(lambda: jobs.get(rec["id"]), jobs.states()["running"]))


@app.command()
def sample(server: str = Server):
    """Load the 100-row sample that ships with GameLens (to try it without a file of your own)."""
    if server:
        with _client(server) as http:
            _report(_follow_on(http, _checked(http.post("/api/v1/uploads/sample"))))
        return
    from .api.uploads import SAMPLE

    with _uploads() as jobs:
        rec = jobs.submit_file(Path(str(SAMPLE)), "sample_games.csv", "sample", "cli")
        _report(_follow(lambda: jobs.get(rec["id"]), jobs.states()["running"]))


@contextmanager
def _uploads():
    """The writer's work in this process: it takes the writer lease (refused while a writer runs)."""
    from .ingest.jobs import Uploads
    from .lease import WriterLease
    from .store import Store

    settings = get_settings()
    with _local() as engine:
        lease = WriterLease(Store(engine, settings.clickhouse_cluster), settings)
        lease.acquire()
        jobs = Uploads(engine, settings)
        try:
            jobs.start()
            yield jobs
        finally:
            jobs.stop()
            lease.release()


def _follow(poll, running: list[str]) -> dict:
    """Show an upload's progress until it leaves the `running` states (published by the server)."""
    columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("queued", total=None)
        while True:
            rec = poll()
            bar.update(task, description=rec["state"], completed=rec["bytes_received"], total=rec["bytes_expected"])
            if rec["state"] not in running:
                return rec
            time.sleep(0.2)


def _follow_on(http, rec: dict) -> dict:
    """_follow an upload the server is running."""
    running = _checked(http.get("/api/v1/uploads"))["states"]["running"]
    return _follow(lambda: _checked(http.get(f"/api/v1/uploads/{rec['id']}")), running)


def _report(rec: dict) -> None:
    if rec["state"] != "succeeded":
        console.print(f"[red]Upload {rec['id']} {rec['state']}:[/red] {rec['error']['message']}")
        raise typer.Exit(1)
    console.print(f"[green]Loaded {rec['rows_loaded']} rows[/green] (upload {rec['id']}, sha256 {rec['sha256']})")
    for warning in rec["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")


# --- questions -----------------------------------------------------------------------------------


def _items(params: list[str] | None) -> list[tuple[str, str]]:
    items = []
    for p in params or []:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise GameLensError("invalid_parameter", f"{p!r} is not name=value.", 400)
        items.append((name, value))
    return items


def _ask(path: str, params: list[str] | None, server: str | None) -> None:
    """Print the answer of GET /api/v1/games<path> for these parameters: JSON, or the export."""
    items = _items(params)
    export = any(name == "format" and value in ("csv", "ndjson") for name, value in items)
    if server:
        with _client(server) as http:
            response = http.get(f"/api/v1/games{path}", params=items)
            if response.status_code >= 400 or not export:
                print(json.dumps(_checked(response), indent=1, ensure_ascii=False))
            else:
                sys.stdout.buffer.write(response.content)
        return
    from .ingest.versions import Versions
    from .query.run import Explorer

    with _local() as engine:
        versions = Versions(engine)
        explorer = Explorer(engine, versions, get_settings())
        try:
            if export:
                spool, _, _ = explorer.export(items, None, path == "/aggregate", "cli")
                try:
                    for block in spool.blocks():
                        sys.stdout.buffer.write(block)
                finally:
                    spool.close()
            else:
                kind = path.lstrip("/") or "rows"
                body = json.loads(explorer.answer(kind, items, f"/api/v1/games{path}").body)
                print(json.dumps(body, indent=1, ensure_ascii=False))
        finally:
            explorer.close()


@app.command()
def games(params: list[str] = Params, server: str = Server):
    """Rows matching filters, sorted and paged (as GET /api/v1/games); format=csv|ndjson exports."""
    _ask("", params, server)


@app.command()
def aggregate(params: list[str] = Params, server: str = Server):
    """Groups and metrics (as GET /api/v1/games/aggregate): group_by=genres metrics=count,median:price ..."""
    _ask("/aggregate", params, server)


@app.command()
def summary(params: list[str] = Params, server: str = Server):
    """The matching games at a glance (as GET /api/v1/games/summary)."""
    _ask("/summary", params, server)


@app.command("settings-doc")
def settings_doc():
    """Print the configuration table (Markdown) of docs/configuration.md."""
    from .settings import settings_table

    print(settings_table())


# --- keys ----------------------------------------------------------------------------------------

keys_app = typer.Typer(help="Manage API keys in the local data directory (while a server runs, use the "
                       "/api/v1/keys routes with an admin key instead).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@contextmanager
def _key_store():
    from .keys import KeyStore

    with _local() as engine:
        store = KeyStore(engine)
        store.start()
        yield store


@keys_app.command("create")
def keys_create(name: str = typer.Option(..., help="A name for the key's holder."),
                role: str = typer.Option("reader", help="reader or admin")):
    """Create a key; it is printed once and never again."""
    with _key_store() as store:
        created = store.create(name, role)
    console.print(f"Created {created['role']} key [bold]{created['name']}[/bold]; it will not be shown again:")
    print(created["key"])


@keys_app.command("list")
def keys_list():
    """List keys: names, roles, hints and dates (never the keys)."""
    with _key_store() as store:
        for k in store.list():
            state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
            print(f"{k['name']}\t{k['role']}\t{k['hint']}\tcreated {k['created_at']}\t{state}")


@keys_app.command("revoke")
def keys_revoke(name: str):
    """Revoke the active key with this name."""
    with _key_store() as store:
        store.revoke(name)
    console.print(f"Revoked {name}.")


def main() -> None:
    """Console entry point: errors a user can cause are one clear line, not a traceback."""
    try:
        app()
    except GameLensError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise SystemExit(1) from None
