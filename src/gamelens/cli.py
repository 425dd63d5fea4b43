"""The `gamelens` command: serve; load data (a link, a file, the bundled sample); ask questions
(games, game, aggregate, summary, schema); follow uploads (uploads, activate); manage keys.

Every command works on the local data directory (GAMELENS_DATA_DIR, printed on every run), or, with
--server URL (or GAMELENS_SERVER) and GAMELENS_KEY, through a running server. The embedded engine
allows one process per data directory, so while `gamelens serve` runs, send commands through it (a
running server records its address in the data directory, and the refusal names it). Answers print
as a table on a terminal and as JSON when piped (--format table|json|csv).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import signal
import sys
import time
import unicodedata
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from . import schema as dataset_schema
from .errors import GameLensError
from .query import formats
from .settings import get_settings

app = typer.Typer(help="GameLens: store a games CSV and explore it.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
# emoji=False: a message or a value that holds `:x:` is printed as written, not as an emoji (helper-62).
console = Console(stderr=True, emoji=False)
Server = typer.Option(None, "--server", envvar="GAMELENS_SERVER",
                      help="Send the command to a running GameLens (e.g. http://127.0.0.1:8000) with the key in "
                      "GAMELENS_KEY, instead of opening the data directory.")
Params = typer.Argument(None, help="Query parameters as name=value, as in the API: genres=indie sort=-rating "
                        "format=csv ...")
GameParams = typer.Argument(None, help="version=N reads the stored data of upload N rather than the data served.")
SHOWN = ("table", "json", "csv")


def _format_checked(value: str | None) -> str | None:
    if value is not None and value not in SHOWN:  # else a typo printed a table, exit 0
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SHOWN)}.")
    return value


Format = typer.Option(None, "--format", callback=_format_checked,
                      help="table (the default on a terminal), json (the default when piped) or csv (the table "
                      "as CSV; format=csv is the API's export, values as the source file writes them).")
# What `games` shows unless fields= asks for more (descriptions are long).
GAMES_FIELDS = "app_id,name,release_date,price,reviews,rating,est_owners,genres"
SERVER_FILE = "server.json"  # where a running server says where it listens (in its data directory)


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
    address = settings.data_dir / SERVER_FILE
    url = f"http://{host or settings.host}:{port or settings.port}"
    api = create_app(settings)

    class GameLensServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            """A stop signal: the uploads' grace starts now (Uploads.leaving_at)."""
            uploads = getattr(api.state, "uploads", None)  # None before the start-up ran
            if uploads is not None and uploads.leaving_at is None:
                uploads.leaving_at = time.monotonic()
            super().handle_exit(sig, frame)

        async def startup(self, sockets=None) -> None:
            # Said only once this server holds the directory (its start-up ran) and listens: a second
            # `serve` on a directory in use wrote over the first's address, then removed it as it failed.
            await super().startup(sockets)
            if self.started:
                address.write_text(json.dumps({"url": url, "pid": os.getpid()}))

        async def shutdown(self, sockets=None) -> None:
            await super().shutdown(sockets)
            _forget_address(address)  # uvicorn then re-raises SIGTERM: the `finally` below never runs

    config = uvicorn.Config(_failed_start_said_plainly(api), host=host or settings.host, port=port or settings.port,
                            workers=1, log_config=None, access_log=False,
                            timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5)
    server = GameLensServer(config)
    try:
        server.run()
    except KeyboardInterrupt:  # as uvicorn.run does: Ctrl-C is a normal stop
        pass
    finally:
        _forget_address(address)
    if not server.started:  # as uvicorn.run does: a start-up that failed exits 3
        raise SystemExit(3)


def _failed_start_said_plainly(app):
    """The app as uvicorn runs it. uvicorn logs a failed start-up as the traceback the app sends with it (~60
    lines); a start-up refused for a reason we name (a data directory another server holds) is that sentence."""
    async def run(scope, receive, send):
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        failed: dict = {}

        async def held(message):  # the failure is sent once its exception is seen
            if message["type"] == "lifespan.startup.failed":
                failed.update(message)
                return
            await send(message)

        try:
            await app(scope, receive, held)
        except BaseException as exc:
            if failed and isinstance(exc, GameLensError):
                failed["message"] = f"GameLens cannot start: {exc.message}"
            if failed:
                await send(failed)
            raise
    return run


def _forget_address(address: Path) -> None:
    """Remove the data directory's server address if this process wrote it (never another server's)."""
    try:
        ours = json.loads(address.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError):
        return
    if ours:
        address.unlink(missing_ok=True)


# --- where commands run: the data directory, or a server ----------------------------------------


@contextmanager
def _local():
    """The engine on the local data directory, said out loud; one clear sentence when a server has it."""
    from .engine import Engine
    from .store import Store

    settings = get_settings()
    console.print(f"Data directory: {escape(str(settings.data_dir.resolve()))}")
    logging.getLogger("gamelens").setLevel(logging.ERROR)  # the command's own output says what happened
    try:
        engine = Engine(settings)
    except OSError as exc:  # GAMELENS_DATA_DIR names a file, or a directory it may not write
        raise _unusable_data_dir(exc, settings) from None
    try:
        store = Store(engine, settings.clickhouse_cluster)
        store.create_database()
        store.create_bookkeeping()
    except GameLensError as exc:
        raise _in_use(exc, settings) from None
    try:
        yield engine
    finally:
        engine.close()


def _unusable_data_dir(exc: OSError, settings) -> GameLensError:
    return GameLensError("bad_data_dir", f"GAMELENS_DATA_DIR {settings.data_dir.resolve()} cannot hold the data: "
                         f"{exc.strerror or exc}.", 400)


def _in_use(exc: GameLensError, settings) -> GameLensError:
    """The engine's refusal of a data directory a server holds, as one sentence naming that server."""
    if exc.code != "data_dir_in_use":
        return exc
    try:
        url = json.loads((settings.data_dir / SERVER_FILE).read_text())["url"]
    except (OSError, ValueError, KeyError):
        url = f"http://{settings.host}:{settings.port}"
    return GameLensError("data_dir_in_use", f"A running GameLens server is using {settings.data_dir.resolve()}: "
                         f"send this through it with --server {url} and GAMELENS_KEY set to an API key, or stop "
                         "the server first.", 409)


@contextmanager
def _api(server: str | None, writes: bool = False, creates: bool = False):
    """Where a question goes: a server, or the same API run on this data directory in this process
    (no key needed there: the directory is yours; `writes` runs it as the writer; only a command that
    `creates` data may start a data directory)."""
    if server:
        with _client(server) as http:
            yield http
        return
    from .api.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's note about the httpx its test client uses
        from fastapi.testclient import TestClient
    settings = get_settings()
    # A question asked from the wrong directory: chDB keeps its tables under metadata/.
    if not creates and not (settings.data_dir / "metadata").is_dir():
        raise GameLensError("no_data", f"There is no GameLens data in {settings.data_dir.resolve()}: set "
                            "GAMELENS_DATA_DIR to a server's data directory, or ask a server with --server URL and "
                            "GAMELENS_KEY.", 404)
    console.print(f"Data directory: {escape(str(settings.data_dir.resolve()))}")
    logging.getLogger("gamelens").setLevel(logging.ERROR)  # the command's own output says what happened
    # One question, then the process ends: no answer cache to keep (nor to warm in the background).
    local = settings.model_copy(update={"auth": "off", "role": "all" if writes else "reader", "cache_mb": 0})
    client = TestClient(create_app(local))
    try:
        client.__enter__()
    except GameLensError as exc:
        raise _in_use(exc, settings) from None
    except OSError as exc:
        raise _unusable_data_dir(exc, settings) from None
    try:
        yield client
    finally:
        client.__exit__(None, None, None)


def _client(server: str):
    import httpx

    key = os.environ.get("GAMELENS_KEY", "")
    if not key:
        raise GameLensError("no_key", "Set GAMELENS_KEY to an API key to use --server.", 401)
    if not (key.isascii() and key.isprintable()) or " " in key:  # a pasted "glk_…" hint, or a stray newline
        raise GameLensError("invalid_key", "GAMELENS_KEY holds characters no key has (a key is printable ASCII "
                            "with no space): was its hint pasted, or a newline with it?", 401)
    console.print(f"Server: {escape(server)}")
    try:
        return httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=600)
    except httpx.InvalidURL as exc:
        raise GameLensError("invalid_server", f"--server / GAMELENS_SERVER is not a URL ({exc}).", 400,
                            param="server", value=server) from None


def _checked(response) -> dict:
    try:
        body = response.json()
    except ValueError:  # not a GameLens API at that address (a web page, a proxy's error)
        raise GameLensError("not_gamelens", f"{response.url} answered HTTP {response.status_code} without the "
                            "API's JSON: is GAMELENS_SERVER a GameLens server?", 502) from None
    if response.status_code >= 400:  # the API's error whole: what, where (param, value) and what is allowed
        err = body.get("error", {})
        raise GameLensError(err.get("code", "error"), err.get("message", response.text), response.status_code,
                            param=err.get("param"), value=err.get("value"), allowed=err.get("allowed"))
    return body


# --- loading -------------------------------------------------------------------------------------


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # HTTP://, ftp://: a link (refused or not), not a path


def _readable(source: str) -> Path:
    """A local file to load, checked before anything is sent or recorded: a wrong path is one line."""
    try:
        path = Path(source).expanduser().resolve()  # RuntimeError: an unknown ~user, a symlink loop
        with open(path, "rb"):
            pass
    except (OSError, RuntimeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise GameLensError("unreadable_file", f"The file {source!r} cannot be read: {why}.", 400) from None
    return path


@app.command()
def load(
    source: str = typer.Argument(..., help="An http(s) link or a local file path."),
    max_rejected_rows: int = typer.Option(None, min=0, max=1_000_000,  # as the API checks it
                                          help="Rows allowed to fail parsing (default from settings)."),
    activate: bool = typer.Option(True, help="Serve the data once loaded; --no-activate keeps it beside the data "
                                  "served, for `gamelens activate ID` once its record looks right."),
    server: str = Server,
):
    """Load a CSV from a link or a file (the previous dataset stays until the new one is checked). Here, not
    through a server, it ends once the new data is finished (its indexes); Ctrl-C leaves those to the next start."""
    link = _URL.match(source) is not None  # any scheme: the upload says which ones it takes
    if server:
        query = {} if activate else {"activate": "false"}
        with _client(server) as http:
            if link:
                body = {"url": source, "max_rejected_rows": max_rejected_rows}
                rec = _checked(http.post("/api/v1/uploads", json=body, params=query))
            else:
                with open(_readable(source), "rb") as f:
                    form = {} if max_rejected_rows is None else {"max_rejected_rows": str(max_rejected_rows)}
                    rec = _checked(http.post("/api/v1/uploads", files={"file": (Path(source).name, f)}, data=form,
                                             params=query))
            _report(_follow_on(http, rec))
        return
    path = None if link else _readable(source)  # before the data directory is opened
    with _uploads() as jobs:
        if link:
            rec = jobs.submit(source, "cli", max_rejected_rows, activate)
        else:
            rec = jobs.submit_file(path, str(path), "path", "cli", max_rejected_rows, activate)
        _report(_follow_here(jobs, rec))


@app.command()
def sample(server: str = Server, activate: bool = typer.Option(True, help="As for load: --no-activate keeps it.")):
    """Load the 100-row sample that ships with GameLens (to try it without a file of your own)."""
    if server:
        with _client(server) as http:
            query = {} if activate else {"activate": "false"}
            _report(_follow_on(http, _checked(http.post("/api/v1/uploads/sample", params=query))))
        return
    from .api.uploads import SAMPLE

    with _uploads() as jobs:
        rec = jobs.submit_file(Path(str(SAMPLE)), "sample_games.csv", "sample", "cli", None, activate)
        _report(_follow_here(jobs, rec))


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
        jobs.hold(lease)
        try:
            jobs.start()
            # SIGTERM (`timeout`, a service manager) stops an upload as Ctrl-C does: its record says so now.
            # It ended the process at once, the record `downloading` until the next writer's start.
            _stop_signals_to(signal.default_int_handler)
            yield jobs
        except KeyboardInterrupt:  # after the load was followed (e.g. at "Loaded …"): the finishing stops too
            _end_grace(jobs)
            raise
        finally:
            # Ctrl-C from here on ends the work's grace instead of raising: the stop must run whole, or the
            # engine closes under the worker's statement in flight (chDB then crashes the process, exit -11;
            # after "Loaded …" that statement is the version's finishing).
            _stop_signals_to(lambda *_: _end_grace(jobs))
            _say_if_finishing(jobs)
            jobs.stop(grace=False)  # a load ends once its version is finished; Ctrl-C leaves that to the next start
            # Then ignored: what is left (the lease, the engine's close) is short, and a handler of Python's
            # own is reset to the default as the interpreter ends, where a late Ctrl-C killed it (exit -2).
            _stop_signals_to(signal.SIG_IGN)
            lease.release()


def _say_if_finishing(jobs) -> None:
    """A load ends once its version is finished (one part, its ranks and text indexes): say so while it is,
    unless a Ctrl-C already ended that wait."""
    if jobs.leaving_at is not None:
        return
    for upload_id in jobs.finishing():
        console.print(f"Finishing upload {upload_id} (its indexes; Ctrl-C leaves them to the next start)…")


def _stop_signals_to(handler) -> None:
    """Ctrl-C and SIGTERM go to `handler`, but for one that is ignored: as the command started (nohup, a
    script's background job), or since a stop began (_follow_here)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, handler)


def _end_grace(jobs) -> None:
    """Ctrl-C (or SIGTERM) while the writer's work runs or stops: its grace (GAMELENS_SHUTDOWN_GRACE_S, in
    which an upload could still be switched in) is over now; the statement in flight still ends first."""
    if jobs.leaving_at is None:
        console.print("Interrupted: stopping (the statement in flight ends first).")
    jobs.leaving_at = time.monotonic() - jobs.settings.shutdown_grace_s


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


def _follow_here(jobs, rec: dict) -> dict:
    """_follow an upload this process runs. Ctrl-C cancels it: it stops now, not after the server's grace
    (GAMELENS_SHUTDOWN_GRACE_S, in which it could still be switched in), and its record says how it ended."""
    try:
        return _follow(lambda: jobs.get(rec["id"]), jobs.states()["running"])
    except KeyboardInterrupt:
        # A second Ctrl-C must not cut the stop short (_uploads), nor does it say so twice.
        _stop_signals_to(signal.SIG_IGN)
        _end_grace(jobs)
        jobs.stop()
        return jobs.get(rec["id"])


def _follow_on(http, rec: dict) -> dict:
    """_follow an upload the server is running; Ctrl-C stops following it, not the upload: say so."""
    running = _checked(http.get("/api/v1/uploads"))["states"]["running"]
    try:
        return _follow(lambda: _checked(http.get(f"/api/v1/uploads/{rec['id']}")), running)
    except KeyboardInterrupt:
        console.print(f"Stopped following upload {rec['id']}: the server goes on with it (`gamelens uploads` "
                      "says how it ends).", soft_wrap=True)
        raise typer.Exit(130) from None


def _report(rec: dict) -> None:
    """How an upload ended, a line each (not wrapped at the terminal's width: a sha256 stays whole)."""
    if rec["state"] != "succeeded":
        console.print(f"[red]Upload {rec['id']} {rec['state']}:[/red] {_said(rec['error']['message'])}",
                      soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"[green]Loaded {rec['rows_loaded']} rows[/green] (upload {rec['id']}, sha256 {rec['sha256']})",
                  soft_wrap=True)
    for warning in rec["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {_said(warning)}", soft_wrap=True)
    if rec["stored"] and not rec["active"]:  # loaded with --no-activate (or another one was switched in since)
        console.print(f"Kept, not served: `gamelens games version={rec['id']}` reads it, "
                      f"`gamelens activate {rec['id']}` serves it.")


# --- questions -----------------------------------------------------------------------------------


def _items(params: list[str] | None) -> list[tuple[str, str]]:
    items = []
    for p in params or []:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise GameLensError("invalid_parameter", f"{p!r} is not name=value.", 400)
        items.append((name, value))
    return items


def _ask(path: str, params: list[str] | None, server: str | None, fmt: str | None) -> None:
    """Print the answer of GET /api/v1/games<path> for these parameters, or the export (format=<export>)."""
    items = _items(params)
    export = any(name == "format" and value in formats.EXPORTS for name, value in items)
    with _api(server) as http:
        response = http.get(f"/api/v1/games{path}", params=items)
        if export and response.status_code < 400:
            sys.stdout.buffer.write(response.content)
            return
        _show(_checked(response), fmt, _asked_fields(items))


def _asked_fields(items: list[tuple[str, str]]) -> list[str]:
    """The columns a page was asked for (fields=), which head its table even when no row matched."""
    asked = [value for name, value in items if name == "fields"]
    return [f.strip() for f in asked[-1].split(",") if f.strip()] if asked else []


def _show(body: dict, fmt: str | None, fields: list[str] | None = None) -> None:
    """An answer as a table (on a terminal), JSON (piped), or CSV: its rows, or its fields."""
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        print(json.dumps(body, indent=1, ensure_ascii=False))
        return
    rows = _rows_of(body)
    names = list(dict.fromkeys(k for row in rows for k in row)) or _columns_without_rows(body, fields or [])
    if fmt == "csv":  # the table as CSV; safe in a spreadsheet, as the API's export (format=csv) is
        writer = csv.DictWriter(sys.stdout, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: _neutralised(_text(v)) for k, v in row.items()} for row in rows)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(*names, show_lines=False)
    for row in rows:  # each cell as Text: a name such as `[beta] Quest` is data, not markup (helper-62)
        table.add_row(*(Text(_printable(_text(row.get(n), 60))) for n in names))
    Console(emoji=False).print(table)
    for name, counts in (body.get("facets") or {}).items():  # asked with facet=: under the rows, as on the page
        shown = " · ".join(f"{_printable(_text(c['value']))} {c['count']:,}" for c in counts)
        Console(emoji=False).print(Text(f"{name}: {shown}"))
    if "version" in body:
        Console(emoji=False).print(Text(_which_data(body), style="dim"))


def _columns_without_rows(body: dict, fields: list[str]) -> list[str]:
    """The header of an answer with no rows, so that a script reading the CSV finds its columns: an
    aggregate's groups and metrics, or the page's fields."""
    if isinstance(body.get("group_by"), list) and isinstance(body.get("metrics"), list):
        return [*body["group_by"], *body["metrics"]]
    if isinstance(body.get("rows"), list):
        return fields
    return []


def _which_data(body: dict) -> str:
    """Under a table of games or groups: whose data they are, and how many matched."""
    matched = f", {body['total']:,} matching" if isinstance(body.get("total"), int) else ""
    return f"upload {body['version']}'s data{matched}"


def _rows_of(body: dict) -> list[dict]:
    for key in ("rows", "uploads", "keys", "columns"):
        if isinstance(body.get(key), list):
            return body[key]
    return [{"field": k, "value": v} for k, v in body.items() if not isinstance(v, dict)]


# What a terminal would act on rather than show: control characters (ESC starts a sequence that can
# clear the screen or set the title) and the bidirectional overrides that reorder what follows.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _printable(text: str) -> str:
    """Text from the data as a terminal should show it: each control character (but a newline) and each
    bidirectional control written as its escape (ESC as backslash, x1b), not sent to the terminal."""
    return "".join(_shown(c) for c in text)


def _shown(c: str) -> str:
    """One character of _printable."""
    if c == "\n":
        return c
    if unicodedata.category(c) == "Cc":
        return repr(c)[1:-1]
    if c in _BIDI_CONTROLS:
        return f"\\u{ord(c):04x}"
    return c


def _said(message: str) -> str:
    """A message (an error, a warning) quoting values from a request or the data, for the console."""
    return escape(_printable(message))


_RUNNABLE = re.compile(dataset_schema.RUNNABLE)


def _neutralised(text: str) -> str:
    """A CSV cell a spreadsheet could run as a formula, with a leading ' (schema.NEUTRALISE's rule)."""
    if _RUNNABLE.match(unicodedata.normalize("NFKC", text[:256])):
        return "'" + text
    return text


def _text(value, width: int | None = None) -> str:
    if isinstance(value, bool):  # as JSON and the API's CSV write it
        return "true" if value else "false"
    if isinstance(value, list):  # apart by " · ", as on the page: studio names hold commas
        value = " · ".join(_text(v) for v in value)
    if isinstance(value, dict):  # an item of a summary's list: {"value": "Indie", "games": 67} -> "Indie: 67"
        first, *rest = [_text(v) for v in value.values()] or [""]
        value = f"{first}: {' '.join(rest)}" if rest else first
    text = "" if value is None else str(value)
    if width and len(text) > width:  # a description: the whole of it with --format json or csv
        return text[:width - 1] + "…"
    return text


EXPORT_HELP = f"format={'|'.join(formats.EXPORTS)} exports (written to stdout as the API sends it)"


@app.command(help="Rows matching filters, sorted and paged (as GET /api/v1/games); " + EXPORT_HELP + ". Without "
             "fields=, the columns of the page's table (descriptions only when asked for).")
def games(params: list[str] = Params, server: str = Server, fmt: str = Format):
    params = list(params or [])
    if not any(p.startswith("fields=") for p in params):
        params.append(f"fields={GAMES_FIELDS}")
    _ask("", params, server, fmt)


@app.command()
def game(app_id: str = typer.Argument(..., help="The game's app_id"),
         params: list[str] = GameParams,
         server: str = Server, fmt: str = Format):
    """One game, every field (as GET /api/v1/games/{app_id})."""
    # As typed, one path segment: the API judges it (an int here read 20_200 as 20200 before the API could)
    with _api(server) as http:
        _show(_checked(http.get(f"/api/v1/games/{quote(app_id, safe='')}", params=_items(params))), fmt)


@app.command(help="Groups and metrics (as GET /api/v1/games/aggregate): group_by=genres metrics=count,median:price "
             "... A share is a metric too; quote it for the shell: 'metrics=count,share(rating__gte=0.8)'. "
             + EXPORT_HELP + ".")
def aggregate(params: list[str] = Params, server: str = Server, fmt: str = Format):
    _ask("/aggregate", params, server, fmt)


@app.command()
def summary(params: list[str] = Params, server: str = Server, fmt: str = Format):
    """The matching games at a glance (as GET /api/v1/games/summary)."""
    _ask("/summary", params, server, fmt)


def _schema_here() -> dict:
    """GET /api/v1/schema's body as the API sends it (its response model, unset fields left out), from the
    settings alone: the schema needs no data, so no data directory is opened (nor made, where a name was
    mistyped)."""
    from .query.answers import SchemaDoc
    from .query.run import schema_doc

    return SchemaDoc.model_validate(schema_doc(get_settings())).model_dump(mode="json", exclude_unset=True)


@app.command()
def schema(server: str = Server, fmt: str = Format):
    """Every column and bucket: type, unit, operators (as GET /api/v1/schema)."""
    if server:
        with _api(server) as http:
            body = _checked(http.get("/api/v1/schema"))
    else:
        body = _schema_here()
    if (fmt or ("table" if sys.stdout.isatty() else "json")) != "json":
        named = body["columns"] + body["buckets"]  # a bucket (release_year, price_band) filters as a column does
        body = {"columns": [{k: c.get(k) for k in ("name", "type", "unit", "operators", "doc")} for c in named]}
    _show(body, fmt)


@app.command()
def uploads(server: str = Server, fmt: str = Format):
    """The upload history, newest first: state, rows, whether it is kept and active."""
    with _api(server) as http:
        body = _checked(http.get("/api/v1/uploads"))
    if (fmt or ("table" if sys.stdout.isatty() else "json")) != "json":
        columns = ("id", "state", "active", "stored", "rows_loaded", "finished_at", "url", "indexes", "error",
                   "upgrade_error")
        body = {"uploads": [{k: u.get(k) for k in columns} for u in body["uploads"]]}
    _show(body, fmt)


@app.command()
def activate(upload_id: int = typer.Argument(..., help="The upload whose data to serve"),
             server: str = Server):
    """Serve a kept upload's data: an earlier one again, or one loaded with --no-activate (as POST
    /api/v1/uploads/{id}/activate)."""
    with _api(server, writes=True) as http:
        rec = _checked(http.post(f"/api/v1/uploads/{upload_id}/activate"))
    console.print(f"Upload {rec['id']} is active ({rec['rows_loaded']} rows).")


@app.command("settings-doc")
def settings_doc():
    """Print the configuration table (Markdown) of docs/configuration.md."""
    from .settings import settings_table

    print(settings_table())


# --- keys ----------------------------------------------------------------------------------------

keys_app = typer.Typer(help="Manage API keys (an admin key in GAMELENS_KEY with --server).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(name: str = typer.Option(..., help="A name for the key's holder."),
                role: str = typer.Option("reader", help="reader or admin"), server: str = Server):
    """Create a key; it is printed once and never again."""
    with _api(server, writes=True, creates=True) as http:
        created = _checked(http.post("/api/v1/keys", json={"name": name, "role": role}))
    console.print(f"Created {created['role']} key [bold]{created['name']}[/bold]; it will not be shown again:")
    print(created["key"])


@keys_app.command("list")
def keys_list(server: str = Server, fmt: str = Format):
    """List keys: names, roles, hints and dates (never the keys)."""
    with _api(server) as http:
        _show(_checked(http.get("/api/v1/keys")), fmt)


@keys_app.command("revoke")
def keys_revoke(name: str, server: str = Server):
    """Revoke the active key with this name."""
    with _api(server, writes=True) as http:
        _checked(http.delete(f"/api/v1/keys/{quote(name, safe='')}"))
    console.print(f"Revoked {name}.")


def main() -> None:
    """Console entry point: errors a user can cause are one clear line (and what is allowed), not a
    traceback; with --format json, the API's error body (on stderr: stdout holds only answers)."""
    as_json = _wants_json(sys.argv[1:])
    console.quiet = as_json  # stderr then holds only the error's JSON body, if any
    try:
        _run()
    except GameLensError as exc:
        if as_json:
            print(json.dumps(exc.body()), file=sys.stderr)
        else:
            # escaped: a message quotes values, and `[a-z]` or `['English']` would read as markup
            console.print(f"[red]error:[/red] {_said(exc.message)}", soft_wrap=True)  # one line, however long
            if exc.allowed:
                console.print(f"allowed: {_said(_listed(exc.allowed))}", soft_wrap=True)
        raise SystemExit(1) from None


def _run() -> None:
    """The command; a server it cannot reach is one of our errors."""
    import httpx
    import pydantic

    try:
        app()
    except httpx.TransportError as exc:  # GAMELENS_SERVER down, or no such host
        raise GameLensError("server_unreachable", f"Cannot reach the server ({type(exc).__name__}): is "
                            "GAMELENS_SERVER right, and is the server running?", 503) from None
    except pydantic.ValidationError as exc:  # a GAMELENS_* variable the settings refuse
        raise GameLensError("bad_settings", _refused_settings(exc), 400) from None


def _refused_settings(exc) -> str:
    """Each refused variable by its GAMELENS_ name (one that refuses a combination is named in its message)."""
    lines = []
    for err in exc.errors():
        if err["loc"]:
            lines.append(f"GAMELENS_{str(err['loc'][0]).upper()}: {err['msg']}")
        else:
            lines.append(err["msg"].removeprefix("Value error, "))
    return "; ".join(lines)


def _listed(allowed) -> str:
    if isinstance(allowed, str):
        return allowed
    return ", ".join(map(str, allowed))


def _wants_json(args: list[str]) -> bool:
    """Whether the command was asked for JSON (--format json): its error is then the API's body."""
    pairs = zip(args, args[1:], strict=False)  # each argument and the one after it
    return "--format=json" in args or ("--format", "json") in pairs
