"""Property tests: any string in any parameter gives 200 or a 4xx with the error body, never a 5xx."""

from __future__ import annotations

import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamelens import schema
from gamelens.errors import GameLensError
from gamelens.query import aggregate, filters, rows

NAMES = sorted(
    {f"{c.name}__{op}" for c in schema.COLUMNS for kind in filters.REGISTRY.values() for op in kind}
    | set(schema.BY_NAME) | rows.PARAMS | aggregate.PARAMS | {"having"})
TEXT = st.text(min_size=0, max_size=60)  # any unicode, control characters included
VALUES = st.one_of(TEXT, st.sampled_from(["", "0", "-1", "1e400", "NaN", "2020-02-30", "true", "a,b,", "-name",
                                          "count__gte:1", "avg:price", "genres", "9" * 30, "'", "\\", "%", "\x00"]))
PARAM = st.one_of(st.sampled_from(NAMES), TEXT)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ok(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        err = response.json()["error"]
        assert err["code"] and err["message"]


@FUZZ
@given(params=st.lists(st.tuples(PARAM, VALUES), min_size=1, max_size=4))
def test_rows_endpoint_never_fails(sample_client, params):
    _ok(sample_client.get("/api/v1/games", params=params))


@FUZZ
@given(params=st.lists(st.tuples(PARAM, VALUES), min_size=1, max_size=4))
def test_aggregate_endpoint_never_fails(sample_client, params):
    _ok(sample_client.get("/api/v1/games/aggregate", params=params))


def _same_runs(value: str) -> str:
    """`value` with each ASCII letter and digit replaced by another of its kind."""
    swap = {**{c: "y" if c == "x" else "x" for c in string.ascii_letters},
            **{c: "8" if c == "7" else "7" for c in string.digits}}
    return "".join(swap.get(c, c) for c in value)


@settings(max_examples=500, deadline=None)
@given(name=PARAM, value=VALUES)
def test_filter_parser_accepts_or_says_why(name, value):
    try:
        cond = filters.parse(name, value, "f0")
    except GameLensError as exc:
        assert exc.status == 400 and exc.param == name
    else:
        # f0_run<n>: the runs of letters of a needle the text index cannot take whole (filters.word_runs);
        # f0_list: the list whose element bitmaps an element test reads (filters.ROWS_SQL), the column's name
        assert cond.params and all(re.fullmatch(r"f0(_like|_run\d|_list)?", k) for k in cond.params)
        assert cond.params.get("f0_list", name.partition("__")[0]) == name.partition("__")[0]
        # The value is bound, never part of the SQL: another valid value gives the very same SQL text. A
        # needle's runs of letters and digits shape its SQL (one condition per run), so the first other
        # value tried has the same runs with other letters and digits.
        for other in (_same_runs(value), "1", "true", "2020-01-01", "a"):
            try:
                assert filters.parse(name, other, "f0").sql == cond.sql
                break
            except GameLensError:
                continue


@FUZZ
@given(cursor=TEXT, sort=st.sampled_from(["", "name", "-price,release_date", "-score_rank"]))
def test_any_cursor_is_a_400_or_a_page(sample_client, cursor, sort):
    _ok(sample_client.get("/api/v1/games", params={"cursor": cursor, "sort": sort}))
