"""A next_cursor stays short whatever the text it sorts by (query/build.CURSOR_TEXT_MAX): a long value
is left out, and the next page reads it from the cursor's row in its own version."""

import pytest

from .conftest import decoded_cursor, encoded_cursor, finished_app, sample_named, walk

# Long names: CJK (3 bytes each in UTF-8, 6 characters each as a JSON escape), emoji (12 as escapes), ASCII.
LONG_NAMES = ["游戏" * 550, "🎮" * 600, "a" * 7000, "游戏" * 550 + "!", "b"]


@pytest.fixture(scope="module")
def long_texts(files):
    """The real sample (its descriptions run to thousands of characters) with long names, finished."""
    with finished_app(files, "long_names.csv", sample_named(LONG_NAMES)) as app:
        yield app


@pytest.mark.parametrize("sort", ["-about_the_game", "about_the_game,name", "name", "-name"])
def test_pages_by_cursor_of_long_text_keep_short_links_and_the_offset_order(long_texts, sort):
    client, _ = long_texts
    cursors: list[str] = []
    params = {"sort": sort, "limit": 3, "fields": "app_id,name"}
    by_cursor = [r["app_id"] for r in walk(client, params, use_cursor=True, cursors=cursors)]
    by_offset = [r["app_id"] for r in walk(client, params, use_cursor=False)]
    assert by_cursor == by_offset and len(by_cursor) == 100
    assert cursors and max(len(c) for c in cursors) < 1000, max(len(c) for c in cursors)
    assert any("o" in decoded_cursor(c) for c in cursors)


def test_a_cursor_that_left_a_text_out_is_refused_on_another_version(long_texts):
    client, _ = long_texts
    params = {"sort": "-about_the_game", "limit": 2, "fields": "app_id"}
    doc = decoded_cursor(client.get("/api/v1/games", params=params).json()["next_cursor"])
    assert doc["k"][0] is None and doc["o"]["i"] == [0]
    assert client.get("/api/v1/games", params={**params, "cursor": encoded_cursor(doc)}).status_code == 200
    other = encoded_cursor({**doc, "o": {**doc["o"], "t": "x"}})
    elsewhere = client.get("/api/v1/games", params={**params, "cursor": other})
    assert elsewhere.status_code == 400 and elsewhere.json()["error"]["code"] == "invalid_cursor"
    assert "another version" in elsewhere.json()["error"]["message"]
    for bad in ({"t": doc["o"]["t"], "i": [1]}, {"t": doc["o"]["t"], "i": [9]}, {"t": doc["o"]["t"], "i": [True]},
                {"t": doc["o"]["t"]}, [0], {"t": 5, "i": [0]}):
        r = client.get("/api/v1/games", params={**params, "cursor": encoded_cursor({**doc, "o": bad})})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor", (bad, r.text)
    nowhere = {**doc, "k": [*doc["k"][:-1], 10**9]}  # a row this version does not hold: no rows after it
    r = client.get("/api/v1/games", params={**params, "cursor": encoded_cursor(nowhere)})
    assert r.status_code == 200 and r.json()["rows"] == [], r.text
    without = {k: v for k, v in doc.items() if k != "o"}  # a left-out value named nowhere
    r = client.get("/api/v1/games", params={**params, "cursor": encoded_cursor(without)})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"
