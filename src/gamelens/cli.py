"""The `gamelens` command: serve, load, settings-doc."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from .settings import get_settings

app = typer.Typer(help="GameLens: store a games CSV from a link and explore it.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)


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


@app.command()
def load(
    source: str = typer.Argument(..., help="An http(s) link or a local file path."),
    max_rejected_rows: int = typer.Option(None, help="Rows allowed to fail parsing (default from settings)."),
):
    """Load a CSV into the local data directory (stop `gamelens serve` first: one process per data dir)."""
    from .engine import Engine
    from .ingest.jobs import Uploads

    settings = get_settings()
    local = not source.startswith(("http://", "https://"))
    if local:
        source = str(Path(source).resolve())
    engine = Engine(settings)
    jobs = Uploads(engine, settings)
    try:
        jobs.start()
        rec = jobs.submit(source, "cli", max_rejected_rows, local_file=local)
        rec = _follow(jobs, rec["id"])
    finally:
        jobs.stop()
        engine.close()
    if rec["state"] != "succeeded":
        console.print(f"[red]Upload {rec['id']} {rec['state']}:[/red] {rec['error']['message']}")
        raise typer.Exit(1)
    console.print(f"[green]Loaded {rec['rows_loaded']} rows[/green] (upload {rec['id']}, sha256 {rec['sha256']})")
    for warning in rec["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _follow(jobs, upload_id: int) -> dict:
    columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("queued", total=None)
        while True:
            rec = jobs.get(upload_id)
            bar.update(task, description=rec["state"], completed=rec["bytes_received"],
                       total=rec["bytes_expected"])
            if rec["state"] not in ("queued", "downloading", "loading"):
                return rec
            time.sleep(0.2)


@app.command("settings-doc")
def settings_doc():
    """Print the configuration table (Markdown) for the README."""
    from .settings import settings_table

    print(settings_table())


keys_app = typer.Typer(help="Manage API keys in the local data directory (stop `gamelens serve` first, "
                       "or use the /api/v1/keys routes with an admin key).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _key_store():
    from .engine import Engine
    from .keys import KeyStore

    store = KeyStore(Engine(get_settings()))
    store.start()
    return store


@keys_app.command("create")
def keys_create(name: str = typer.Option(..., help="A name for the key's holder."),
                role: str = typer.Option("reader", help="reader or admin")):
    """Create a key; it is printed once and never again."""
    created = _key_store().create(name, role)
    console.print(f"Created {created['role']} key [bold]{created['name']}[/bold]; it will not be shown again:")
    print(created["key"])


@keys_app.command("list")
def keys_list():
    """List keys: names, roles, hints and dates (never the keys)."""
    for k in _key_store().list():
        state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
        print(f"{k['name']}\t{k['role']}\t{k['hint']}\tcreated {k['created_at']}\t{state}")


@keys_app.command("revoke")
def keys_revoke(name: str):
    """Revoke the active key with this name."""
    _key_store().revoke(name)
    console.print(f"Revoked {name}.")


def main() -> None:
    """Console entry point: errors a user can cause are one clear line, not a traceback."""
    from .errors import GameLensError

    try:
        app()
    except GameLensError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise SystemExit(1) from None
