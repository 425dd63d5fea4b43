"""The `gamelens` command as a user runs it: on the data directory, or through a running server."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import ADMIN_KEY, SAMPLE, sample_named, sample_table, write_csv

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
    shown = run("summary", "genres=indie", "--format", "table", env=env)
    assert "top_genres" in shown.stdout and "Indie: 67" in shown.stdout and "{'" not in shown.stdout, shown.stdout
    trend = json.loads(run("aggregate", "group_by=tags,release_year", "top=2", env=env).stdout)
    assert len(trend["series"]) == 2
    exported = run("games", "fields=name,rating", "sort=-rating", "limit=3", "format=csv", env=env)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["name"] for r in rows][0] == "Oxygen Not Included" and len(rows) == 3
    studios = run("games", "app_id=1557480", "fields=developers", "--format", "csv", env=env).stdout
    # no row matched: the header alone, so that a script reading the CSV still finds its columns
    for args, header in ((["games", "name=zzzz", "fields=name,rating"], ["name", "rating"]),
                         (["aggregate", "group_by=genres", "metrics=count,avg:price", "name=zzzz"],
                          ["genres", "count", "avg_price"])):
        empty = run(*args, "--format", "csv", env=env)
        assert list(csv.reader(io.StringIO(empty.stdout))) == [header], (args, empty.stdout, empty.stderr)
    assert "aNCHOR Inc. · fuzz, Inc." in studios, studios  # apart as on the page: ", " read as three studios
    bad = run("games", "price=abc", env=env)
    assert bad.returncode == 1 and "is not a number" in bad.stderr and "Traceback" not in bad.stderr
    assert "allowed: a number such as 19.99" in bad.stderr  # what to write instead, as the API says it
    # an app_id the CLI's int read as 20200 (20_200) is the API's to judge, as typed: refused, saying what
    for typed in ("20_200", "20200?version=1"):
        refused = run("game", typed, env=env)
        assert refused.returncode == 1 and f"{typed!r} is not a whole number" in refused.stderr, refused.stderr
    # asked for JSON, a script gets the API's error body (it got one line of text, without param or allowed)
    unknown = run("games", "colour=red", "--format", "json", env=env)
    error = json.loads(unknown.stderr)["error"]  # stderr holds only that body (not "Data directory: ...")
    assert unknown.returncode == 1 and unknown.stdout == "" and error["param"] == "colour" and error["allowed"]
    # a question asked where there is no data says so (it created an empty data directory and answered []),
    # also in a directory that exists but holds no GameLens data (the engine's files were written into it)
    (tmp_path / "notes").mkdir()
    for where in ("no-data-here", "notes"):
        for command in (["uploads"], ["activate", "1"], ["keys", "revoke", "bob"]):
            nowhere = run(*command, env=_env(tmp_path / where))
            assert nowhere.returncode == 1 and "no GameLens data" in nowhere.stderr, (command, nowhere.stderr)
    assert not (tmp_path / "no-data-here").exists() and list((tmp_path / "notes").iterdir()) == []
    # a server that is not there is one line, or the JSON body: no traceback
    down = _env(tmp_path / "d", GAMELENS_SERVER="http://127.0.0.1:9", GAMELENS_KEY="x")
    gone = run("games", env=down)
    assert gone.returncode == 1 and "Cannot reach the server" in gone.stderr and "Traceback" not in gone.stderr
    gone = run("summary", "--format", "json", env=down)
    assert json.loads(gone.stderr)["error"]["code"] == "server_unreachable"
    _refuses_a_missing_file(tmp_path, env)
    # loaded to be looked at first: kept, not served, until activated
    kept = run("load", str(SAMPLE), "--no-activate", env=env)
    assert kept.returncode == 0 and "`gamelens activate 2` serves it" in kept.stderr, kept.stderr
    assert json.loads(run("games", "limit=1", env=env).stdout)["version"] == 1
    assert json.loads(run("summary", "version=2", env=env).stdout)["version"] == 2  # read before it is served
    assert json.loads(run("game", "1557480", "version=2", env=env).stdout)["app_id"] == 1557480
    table = run("games", "version=2", "limit=1", "fields=name", "--format", "table", env=env).stdout
    assert "upload 2's data, 100 matching" in table, table  # a table says whose data it shows
    assert run("activate", "2", env=env).returncode == 0
    assert json.loads(run("games", "limit=1", env=env).stdout)["version"] == 2


def _refuses_a_missing_file(tmp_path, env: dict) -> None:
    """A path that is not a readable file is one line, before any upload is sent or recorded."""
    missing = run("load", str(tmp_path / "nowhere.csv"), env=env)
    assert missing.returncode == 1 and "nowhere.csv' cannot be read" in missing.stderr, missing.stderr
    assert "Traceback" not in missing.stderr and "Upload" not in missing.stderr
    for odd in ("~nosuchuser-gamelens/g.csv", str(_symlink_loop(tmp_path))):  # RuntimeError in pathlib
        refused = run("load", odd, env=env)
        assert refused.returncode == 1 and "cannot be read" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def _symlink_loop(tmp_path):
    loop = tmp_path / "loop.csv"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    return loop


# A reader that stops while it still warms its cache (a switch seen at start): chDB crashes the process
# if a statement runs as the engine shuts down.
READER_STOPS = """
from fastapi.testclient import TestClient
from gamelens.api.app import create_app
from gamelens.settings import get_settings
with TestClient(create_app(get_settings().model_copy(update={"auth": "off", "role": "reader"}))) as c:
    assert c.get("/api/v1/games?name=a").status_code == 200
"""


def test_processes_on_the_data_directory_exit_cleanly_every_time(tmp_path):
    """Before the fix, about one run in two ended in a segmentation fault (exit -11), answer printed."""
    env = _env(tmp_path / "d")
    assert run("load", str(SAMPLE), env=env).returncode == 0
    for _ in range(4):
        asked = run("games", "name=a", env=env)
        assert asked.returncode == 0, asked.stderr
        reader = subprocess.run([sys.executable, "-c", READER_STOPS], capture_output=True, text=True, env=env,
                                timeout=120)
        assert reader.returncode == 0, reader.stderr


# A server that recorded an upload as loading and died before its end (the record's writer is its lease's).
SERVER_DIES_LOADING = """
from fastapi.testclient import TestClient
from gamelens.api.app import create_app
from gamelens.records import UploadRecord
from gamelens.settings import get_settings
with TestClient(create_app(get_settings().model_copy(update={"auth": "off"}))) as c:
    uploads = c.app.state.uploads
    rec = UploadRecord(id=uploads.store.claim_upload_id(), url="x.csv", state="loading", created_at=uploads.store.now())
    uploads._save(rec)
    print(rec.id)
"""


def test_the_cli_completes_the_records_a_server_left(tmp_path):
    """The CLI does the writer's work under its own lease: its records carry its generation, so the
    start-up it runs can complete a record a server wrote (not be fenced off as an older writer)."""
    env = _env(tmp_path / "d")
    server = subprocess.run([sys.executable, "-c", SERVER_DIES_LOADING], capture_output=True, text=True, env=env,
                            timeout=120)
    assert server.returncode == 0, server.stderr
    upload_id = int(server.stdout.strip().splitlines()[-1])
    assert run("sample", env=env).returncode == 0
    history = {u["id"]: u for u in json.loads(run("uploads", env=env).stdout)["uploads"]}
    assert history[upload_id]["state"] == "interrupted", history[upload_id]


def test_the_sample_command(tmp_path):
    env = _env(tmp_path / "d")
    out = run("sample", env=env)
    assert out.returncode == 0 and "Loaded 100 rows" in out.stderr, out.stderr


def test_while_a_server_holds_the_data_directory(server_process, files, tmp_path):
    server = server_process().start()
    env = _env(server.data_dir)
    refused = run("load", str(SAMPLE), env=env)
    assert refused.returncode == 1
    assert "A running GameLens server is using" in refused.stderr and "--server" in refused.stderr
    assert "Code:" not in refused.stderr and "DB::Exception" not in refused.stderr
    through = {**env, "GAMELENS_SERVER": server.base, "GAMELENS_KEY": ADMIN_KEY}
    sent = run("load", str(SAMPLE), env=through)
    assert sent.returncode == 0 and "Loaded 100 rows" in sent.stderr, sent.stderr
    _refuses_a_missing_file(tmp_path, through)
    linked = run("load", files.url("sample.csv"), "--server", server.base, env={**env, "GAMELENS_KEY": ADMIN_KEY})
    assert linked.returncode == 0, linked.stderr
    asked = run("summary", "price=0", env=through)
    assert json.loads(asked.stdout)["share_free"] == 1
    nokey = run("summary", env={**env, "GAMELENS_SERVER": server.base})
    assert nokey.returncode == 1 and "GAMELENS_KEY" in nokey.stderr
    said = (server.data_dir / "server.json").read_text()
    assert json.loads(said)["url"].endswith(f":{server.port}")
    # a second server on the same directory fails, and leaves the first one's address as it was (it wrote
    # over it, then removed it as it failed)
    second = run("serve", "--port", "9", env=env, timeout=60)
    assert second.returncode == 3, second.stderr
    assert "one GameLens process per data directory" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr, second.stderr  # the sentence alone, not ~60 lines before it
    assert (server.data_dir / "server.json").read_text() == said


def test_the_cli_an_analyst_would_script(server_process, files, tmp_path):
    """Through a server: keys, one game, the schema, the history, activate; a table on request, JSON
    when piped, CSV; `games` shows no descriptions unless asked; the refusal names the server's real
    address (it runs on a port of its own here)."""
    server = server_process().start()
    env = {**_env(server.data_dir), "GAMELENS_SERVER": server.base, "GAMELENS_KEY": ADMIN_KEY}
    assert run("load", str(SAMPLE), env=env).returncode == 0
    assert run("load", str(SAMPLE), env=env).returncode == 0
    refused = run("games", env=_env(server.data_dir))
    assert refused.returncode == 1 and f"--server {server.base}" in refused.stderr, refused.stderr
    made = run("keys", "create", "--name", "carol", env=env)
    assert made.returncode == 0 and made.stdout.strip().startswith("glk_"), made.stderr
    assert "carol" in {k["name"] for k in json.loads(run("keys", "list", env=env).stdout)["keys"]}
    assert run("keys", "revoke", "carol", env=env).returncode == 0
    assert json.loads(run("game", "20200", env=env).stdout)["name"] == "Galactic Bowling"
    table = run("game", "20200", "--format", "table", env=env).stdout
    assert "Galactic Bowling" in table and "field" in table
    listed = json.loads(run("games", "limit=3", env=env).stdout)["rows"]
    assert listed and "about_the_game" not in listed[0] and "rating" in listed[0]
    asked = json.loads(run("games", "limit=1", "fields=name,about_the_game", env=env).stdout)["rows"][0]
    assert len(asked["about_the_game"]) > 100
    as_csv = list(csv.DictReader(io.StringIO(run("aggregate", "group_by=genres", "metrics=count,share(rating__gte=0.8)",
                                                 "--format", "csv", env=env).stdout)))
    assert as_csv and {"genres", "count", "share_rating_gte"} <= set(as_csv[0])
    served = json.loads(run("schema", env=env).stdout)
    assert {"app_id", "rating", "tags"} <= {c["name"] for c in served["columns"]}
    # Without a server, the same document, and no data directory is opened or made for it
    here = run("schema", env=_env(tmp_path / "mistyped"))
    assert here.returncode == 0 and json.loads(here.stdout) == served, here.stderr
    assert not (tmp_path / "mistyped").exists()
    as_table = list(csv.DictReader(io.StringIO(run("schema", "--format", "csv", env=env).stdout)))
    assert {"release_year", "price_band"} <= {c["name"] for c in as_table}  # the buckets filter too
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert [u["id"] for u in history] == [2, 1] and history[0]["active"]
    assert run("activate", "1", env=env).returncode == 0
    assert json.loads(run("uploads", env=env).stdout)["uploads"][1]["active"]


def test_keys_and_uploads_on_the_data_directory(tmp_path):
    env = _env(tmp_path / "d")
    assert run("sample", env=env).returncode == 0
    assert run("sample", env=env).returncode == 0
    assert run("activate", "1", env=env).returncode == 0
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert {u["id"]: u["active"] for u in history} == {1: True, 2: False}
    shown = run("uploads", "--format", "table", env=env)
    assert shown.returncode == 0 and "succeeded" in shown.stdout


@pytest.mark.parametrize("args,extra,says", [
    (["games", "limit=1", "--format", "xml"], {}, "'xml' is not one of table, json, csv"),
    (["load", "x.csv", "--max-rejected-rows", "-1"], {}, "--max-rejected-rows"),
    (["games", "--server", "http://127.0.0.1:9"], {"GAMELENS_KEY": "glk_…"}, "GAMELENS_KEY holds characters"),
    (["games", "--server", "http://[::1"], {"GAMELENS_KEY": "k"}, "is not a URL"),
], ids=["format", "max_rejected_rows", "key_hint_pasted", "server_not_a_url"])
def test_a_mistyped_command_fails_saying_what(tmp_path, args, extra, says):
    """Each of these printed a table and exited 0, stored a limit of -1, or ended in a
    traceback; now one clear message and a failing exit code, before anything is asked or stored."""
    r = run(*args, env=_env(tmp_path / "data", **extra))
    assert r.returncode != 0 and says in " ".join((r.stdout + r.stderr).split()), (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and not (tmp_path / "data").exists()


def test_a_refused_setting_is_one_clear_line_naming_its_variable(tmp_path):
    """A GAMELENS_* value the settings refuse was a pydantic traceback (with GAMELENS_LOAD_VIA=insert and
    no server, every upload failed instead, helper-61); the message's `[a-z]` was read as markup."""
    bad = run("serve", env={**_env(tmp_path / "d", GAMELENS_DATABASE="Bad-Name"), "COLUMNS": "80"})
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert "GAMELENS_DATABASE: String should match pattern '^[a-z][a-z0-9_]{0,62}$'" in bad.stderr, bad.stderr
    insert = run("load", str(SAMPLE), env={**_env(tmp_path / "d", GAMELENS_LOAD_VIA="insert"), "COLUMNS": "80"})
    assert insert.returncode == 1 and "Traceback" not in insert.stderr, insert.stderr
    assert len(insert.stderr.strip().splitlines()) == 1, insert.stderr  # not wrapped at the terminal's width
    assert "GAMELENS_LOAD_VIA=insert" in insert.stderr and "GAMELENS_CLICKHOUSE_URL" in insert.stderr
    loaded = run("load", str(SAMPLE), env=_env(tmp_path / "d", GAMELENS_LOAD_VIA="insert",
                                                GAMELENS_CLICKHOUSE_URL=f"chdb://{tmp_path / 'd'}"))
    assert loaded.returncode == 0, loaded.stderr


def test_text_the_cli_did_not_write_is_printed_as_written(tmp_path):
    """rich read `[beta]` in a name as markup and `:x:` as an emoji code, in a table's cells and in an error's
    value (helper-62)."""
    names = ["[beta] Quest", "[bold]Loud[/bold] Game", "Wizard :x: Edition"]
    table = sample_named(names)
    (tmp_path / "m.csv").write_bytes(write_csv(table[:4]))
    env = _env(tmp_path / "d")
    assert run("load", str(tmp_path / "m.csv"), env=env).returncode == 0
    out = run("games", "fields=name", "--format", "table", env=env).stdout
    for name in names:
        assert name in out, out
    refused = run("game", ":x:", env=env)
    assert refused.returncode == 1 and "':x:' is not" in refused.stderr, refused.stderr


def test_what_the_data_holds_never_acts_on_the_terminal_or_the_spreadsheet(tmp_path):
    """helper-68: a name's ESC sequences (colours, the window's title, a cleared screen) and bidirectional
    overrides reached the terminal raw in a table; the CSV of --format csv wrote `=cmd|evil` as is (the
    API's export neutralises it) and booleans as True."""
    names = ["Red \x1b[31mAlert", "Title \x1b]0;owned\x07 Game", "Evil \u202eGame", "=cmd|' /C calc'!A0"]
    table = sample_named(names)
    (tmp_path / "m.csv").write_bytes(write_csv(table[:5]))
    env = _env(tmp_path / "d")
    assert run("load", str(tmp_path / "m.csv"), env=env).returncode == 0
    shown = run("games", "fields=name,windows", "sort=app_id", "--format", "table", env=env).stdout
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown, shown
    assert "Red \\x1b[31mAlert" in shown and "Evil \\u202eGame" in shown, shown
    rows = list(csv.DictReader(io.StringIO(run("games", "fields=name,windows", "--format", "csv", env=env).stdout)))
    by_name = {r["name"]: r for r in rows}
    assert "'=cmd|' /C calc'!A0" in by_name, by_name
    assert {r["windows"] for r in rows} <= {"true", "false"}, rows


def test_a_data_directory_that_is_a_file_is_one_clear_line(tmp_path):
    (tmp_path / "v2.csv").write_text("not a directory")
    for args in (["sample"], ["keys", "create", "--name", "a"]):
        r = run(*args, env=_env(tmp_path / "v2.csv"))
        assert r.returncode == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "GAMELENS_DATA_DIR" in r.stderr and "cannot hold the data" in r.stderr, (args, r.stderr)


def test_any_scheme_is_a_link_the_upload_judges(tmp_path):
    """`HTTP://…` and `ftp://…` were read as file paths ("No such file or directory")."""
    env = _env(tmp_path / "d")
    ftp = run("load", "ftp://example.com/games.csv", env=env)
    assert ftp.returncode == 1 and "Only http and https links" in ftp.stderr, ftp.stderr
    upper = run("load", "HTTP://127.0.0.1:9/games.csv", env=env)
    assert upper.returncode == 1 and "No such file" not in upper.stderr, upper.stderr


def test_ctrl_c_cancels_a_load_at_once_and_says_so(tmp_path, files):
    """helper-68: Ctrl-C during a load on the data directory waited the server's whole grace (20 s), in
    which the upload could still be switched in; a second Ctrl-C crashed the engine (exit -11). Now the
    upload stops at once, its record says interrupted, the data served is unchanged, and a second
    Ctrl-C changes nothing."""
    import signal

    env = _env(tmp_path / "d", GAMELENS_ALLOW_PRIVATE_URLS="true")
    assert run("sample", env=env).returncode == 0
    asked = len(files.requests)
    proc = subprocess.Popen([*CMD, "load", files.url("sample.csv", "slow")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _downloading(files, asked, proc)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and time.monotonic() - started < 12, (proc.returncode, err)
    assert "Interrupted" in err and "interrupted" in err and "Traceback" not in err, err
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert [(u["id"], u["state"], u["active"]) for u in history] == [(2, "interrupted", False), (1, "succeeded", True)]


def test_sigterm_stops_a_load_as_ctrl_c_does(tmp_path, files):
    """helper-71: SIGTERM (`timeout`, a service manager) ended a load at once, and its record said
    `downloading` until the next writer's start. Now it stops as Ctrl-C does: the record says interrupted."""
    import signal

    env = _env(tmp_path / "d", GAMELENS_ALLOW_PRIVATE_URLS="true")
    asked = len(files.requests)
    proc = subprocess.Popen([*CMD, "load", files.url("sample.csv", "slow")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _downloading(files, asked, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Interrupted" in err and "Traceback" not in err, (proc.returncode, err)
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert [(u["id"], u["state"]) for u in history] == [(1, "interrupted")], history


def _downloading(files, asked: int, proc: subprocess.Popen) -> None:
    """Once the CLI's download of /slow/sample.csv has begun (the file server's requests after the first
    `asked`) and its first 5,000 bytes came (the rest would not for 5 s, then it fails as truncated). Not a
    fixed sleep: on a busy machine (helper-73) a signal came before the upload began, and the CLI ended as
    an interrupted command (130), not as an interrupted load (1)."""
    for _ in range(300):
        if any(path.startswith("/slow/sample.csv") for path in files.requests[asked:]):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1)


def _write_3000_games(path) -> None:
    """The sample 30 times over, each copy with its own app_ids: a finishing that takes a moment."""
    table = sample_table()
    app_id = table[0].index("AppID")
    rows = [[*row[:app_id], str(int(row[app_id]) + k * 10_000_000), *row[app_id + 1:]]
            for k in range(30) for row in table[1:]]
    path.write_bytes(write_csv([table[0], *rows]))


def test_a_load_ends_once_its_version_is_finished(tmp_path):
    """Without a signal, a load waits for its version's finishing (one part, ranks, text indexes), however
    long: it was given GAMELENS_SHUTDOWN_GRACE_S, a stop's grace, and then cut (with a grace of 0, always)."""
    _write_3000_games(tmp_path / "g.csv")
    env = _env(tmp_path / "d", GAMELENS_SHUTDOWN_GRACE_S="0")
    loaded = run("load", str(tmp_path / "g.csv"), env=env)
    assert loaded.returncode == 0 and "Finishing upload 1 (its indexes" in loaded.stderr, loaded.stderr
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert [(u["state"], u["indexes"]) for u in history] == [("succeeded", "ready")], history


def _sigint_at_loaded(tmp_path, ignored: bool = False, **settings: str) -> tuple[int, str, dict]:
    """Load 3,000 games (a finishing that takes a moment) with the CLI and send SIGINT when it says
    "Loaded"; `ignored`: the command starts with SIGINT ignored (nohup, a script's background job), and
    gets one every 50 ms until it ends. `settings`: GAMELENS_* variables of its environment.
    Returns its exit code, its stderr, and its environment."""
    import signal

    _write_3000_games(tmp_path / "g.csv")
    env = _env(tmp_path / "d", **settings)
    start = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignored else None
    proc = subprocess.Popen([*CMD, "load", str(tmp_path / "g.csv")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=start)
    said = []
    for line in proc.stderr:
        said.append(line)
        if "Loaded" in line:
            proc.send_signal(signal.SIGINT)
            break
    while ignored and proc.poll() is None:  # again until it ends: one lands in its stop, whatever the timing
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    return proc.returncode, "".join(said) + rest, env


def test_ctrl_c_after_a_load_ends_it_cleanly(tmp_path):
    """After "Loaded …" the version is finished (one part, its indexes) before the command ends; Ctrl-C
    there raised out of the stop, and the engine closed under the finishing's statement: exit -11, or 130
    with the engine's shutdown errors. Now the stop runs whole, and the data is served: exit 0, or 130
    where the signal came before the stop began (the command still ran), without an error."""
    code, err, env = _sigint_at_loaded(tmp_path)
    assert code in (0, 130) and "Traceback" not in err and "Exception" not in err, (code, err)
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert [(u["id"], u["state"], u["active"]) for u in history] == [(1, "succeeded", True)], history
    assert json.loads(run("games", "limit=1", env=env).stdout)["total"] == 3000


def test_a_stop_cancels_a_finishing_statement_that_outlives_it(tmp_path):
    """helper-71: a finishing statement still running when the stop's grace and its wait for the worker
    (GAMELENS_READ_TIMEOUT_S) were over was left running, and the engine closed under it: the process
    crashed (-11), 3 times in 4 here. Now the stop cancels it first: the load ends as after any Ctrl-C
    (test_ctrl_c_after_a_load_ends_it_cleanly), and the next start builds what the stop cut."""
    code, err, env = _sigint_at_loaded(tmp_path, GAMELENS_SHUTDOWN_GRACE_S="0", GAMELENS_READ_TIMEOUT_S="0")
    assert code in (0, 130) and "Traceback" not in err and "Exception" not in err, (code, err)
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert [(u["state"], u["active"]) for u in history] == [("succeeded", True)], history
    assert history[0]["indexes"] in ("building", "ready"), history  # cut by a stop, not failed
    assert json.loads(run("games", "limit=1", "about_the_game=zombie", env=env).stdout)["total"] > 0


def test_a_load_started_with_sigint_ignored_keeps_ignoring_it(tmp_path):
    """helper-71: the stop's Ctrl-C handler was installed even where the command started with SIGINT
    ignored, so a stray SIGINT ended the finishing's grace there. Now it stays ignored: the load ends as
    if none came, its indexes built."""
    code, err, env = _sigint_at_loaded(tmp_path, ignored=True)
    assert code == 0 and "Interrupted" not in err, (code, err)
    history = json.loads(run("uploads", env=env).stdout)["uploads"]
    assert [(u["state"], u["indexes"]) for u in history] == [("succeeded", "ready")], history


def test_a_tables_facets_and_a_failed_uploads_error_are_shown(tmp_path):
    """helper-68: facets were printed only as JSON, and the history's table and CSV left out why an upload
    failed."""
    env = _env(tmp_path / "d")
    assert run("sample", env=env).returncode == 0
    shown = run("games", "facet=genres", "facet_size=2", "limit=1", "--format", "table", env=env).stdout
    assert "genres: Indie 67 · Adventure 46" in shown, shown
    (tmp_path / "bad.csv").write_text("not,a,games,file\n1,2,3,4\n")
    assert run("load", str(tmp_path / "bad.csv"), env=env).returncode == 1
    failed = json.loads(run("uploads", env=env).stdout)["uploads"][0]
    rows = list(csv.DictReader(io.StringIO(run("uploads", "--format", "csv", env=env).stdout)))
    assert rows[0]["error"].startswith(f"{failed['error']['code']}: "), rows[0]
