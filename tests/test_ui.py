"""The web UI in a real browser: Playwright for Python driving Debian's chromium (never a downloaded one)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

from .conftest import ADMIN_KEY, read_sample

CHROMIUM = os.environ.get("GAMELENS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]



@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, files):
    """A server with the sample loaded through the API, so that every test can run alone."""
    import httpx

    from .conftest import AUTH, ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("ui") / "data").start()
    rec = httpx.post(f"{proc.base}/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")},
                     headers=AUTH, timeout=60).json()
    assert rec["state"] == "succeeded", rec
    yield proc
    proc.stop()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def enter_key(page, server, key=ADMIN_KEY):
    page.goto(f"{server.base}/?view=upload")
    page.fill("#api-key", key)
    page.click("#key-form button")
    page.wait_for_selector("#key-state:has-text('saved')")


def test_1_key_upload_and_progress(page, server, files):
    page.goto(f"{server.base}/?view=upload")
    page.wait_for_selector("#message.error")  # no key yet: the page says so
    assert "API key" in page.text_content("#message")
    enter_key(page, server)
    page.fill("#upload-url", files.url("sample.csv"))
    page.click("#upload-button")
    page.wait_for_selector("#upload-state[data-state=succeeded]")
    assert page.eval_on_selector("#upload-bar", "b => b.value") == 100
    assert "100 rows stored" in page.text_content("#upload-result")
    page.wait_for_selector("#upload-history tbody tr:nth-child(2)")  # this upload above the fixture's
    shot(page, "upload")


def test_2_bad_link_shows_its_error(page, server, files):
    enter_key(page, server)
    page.fill("#upload-url", f"{files.base}/html")
    page.click("#upload-button")
    page.wait_for_selector("#upload-state[data-state=failed]")
    assert "web page (HTML)" in page.text_content("#upload-result")


def test_3_filter_sort_page(page, server):
    enter_key(page, server)
    page.goto(f"{server.base}/?view=explore")
    page.wait_for_selector("#results tbody tr")
    assert page.get_attribute("#total", "data-total") == "100"
    page.fill("#f-name", "bowl")
    page.click("#apply")
    page.wait_for_selector("#total:not([data-total='100'])")
    names = page.eval_on_selector_all("#results tbody tr", "rows => rows.map(r => r.dataset.appId)")
    want = [r for r in read_sample() if "bowl" in r["Name"].lower()]
    assert len(names) == len(want) and "name=bowl" in page.url
    shot(page, "explore")

    page.goto(f"{server.base}/?view=explore")
    page.fill("#f-release_date-from", "2020-01-01")
    page.fill("#f-release_date-to", "2020-12-31")
    page.click("#apply")
    in_2020 = [r for r in read_sample() if r["Release date"].endswith("2020")]
    page.wait_for_selector(f"#total[data-total='{len(in_2020)}']")

    page.goto(f"{server.base}/?view=explore&fields=app_id,name,positive")
    page.click("th[data-field=positive]")
    page.wait_for_url("**sort=positive**")
    page.click("th[data-field=positive]")
    page.wait_for_url("**sort=-positive**")
    page.wait_for_selector("th[data-field=positive]:has-text('▼')")
    values = page.eval_on_selector_all("#results tbody tr td:nth-child(3)", "c => c.map(x => Number(x.textContent))")
    assert values == sorted(values, reverse=True) and len(values) == 50
    page.click("#next")
    page.wait_for_url("**offset=50**")
    page.wait_for_selector("#page:has-text('51–100')")
    page.go_back()
    page.wait_for_selector("#page:has-text('1–50')")  # the back button restores the previous view
    assert "curl" not in page.text_content("#api-url") and "/api/v1/games?" in page.text_content("#api-url")


def test_4_row_detail(page, server):
    enter_key(page, server)
    page.goto(f"{server.base}/?view=explore&name=Galactic")
    page.click("#results tbody tr >> nth=0")
    page.wait_for_selector("#detail:not([hidden])")
    assert "Galactic Bowling" in page.text_content("#detail-title")


def test_5_aggregate_chart(page, server):
    enter_key(page, server)
    page.goto(f"{server.base}/?view=aggregate&group_by=genres&metrics=count&limit=50")
    page.wait_for_selector("#agg-chart rect")
    genres = {g for r in read_sample() for g in r["Genres"].split(",") if g}
    assert page.eval_on_selector_all("#agg-chart rect", "r => r.length") == len(genres)
    assert page.eval_on_selector_all("#agg-table tbody tr", "r => r.length") == len(genres)
    years = {r["Release date"][-4:] for r in read_sample()}
    page.wait_for_selector("#year-chart rect")
    assert page.eval_on_selector_all("#year-chart rect", "r => r.length") == len(years)
    shot(page, "aggregate")


def test_6_export_downloads_the_filtered_rows(page, server):
    enter_key(page, server)
    page.goto(f"{server.base}/?view=explore&name=bowl&fields=app_id,name")
    page.wait_for_selector("#results tbody tr")
    with page.expect_download() as download:
        page.click("#export-csv")
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    want = sorted(int(r["AppID"]) for r in read_sample() if "bowl" in r["Name"].lower())
    assert sorted(int(r["app_id"]) for r in rows) == want


def test_7_reader_key_is_told_it_cannot_upload(page, server):
    import httpx

    reader = httpx.post(f"{server.base}/api/v1/keys", json={"name": "ui-reader", "role": "reader"},
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["key"]
    enter_key(page, server, reader)
    page.fill("#upload-url", "http://example.com/x.csv")
    page.click("#upload-button")
    page.wait_for_selector("#message.error")
    assert "admin key" in page.text_content("#message")


def test_8_api_docs_render_from_local_files_under_the_csp(page, server):
    """Swagger UI loads from the package (no other origin is contacted) and renders the operations
    with the strict CSP in force (a violation would be a console error)."""
    problems, origins = [], set()
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: origins.add(r.url.split("/")[2]))
    page.goto(f"{server.base}/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/games']")
    assert problems == []
    assert origins == {f"127.0.0.1:{server.port}"}
