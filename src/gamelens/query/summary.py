"""GET /api/v1/games/summary: one segment (the games matching the filters) at a glance: counts,
prices, reviews, ratings, estimated revenue, price bands, top tags and genres, top games."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import schema
from . import answers, filters, openapi
from .build import MAX_LIMIT, Where, value_counts, where
from .endpoint import Endpoint, Items

if TYPE_CHECKING:
    from ..ingest.versions import Snapshot
    from .run import Explorer

TOP = 10


# The summary's lists of a list column's values by games: for the whole version they are its ranking,
# which query/run.py reads once per version: then these statements do not run.
RANKED = {"top_tags": "tags", "top_genres": "genres"}


# The overview's columns of games per price band (`__band<number>`), counted in the same pass. Measured by
# hand (engine alone, 500 MB, `genres=indie`, median of 15, two runs): the overview 19.8 and 22.3 ms with the
# bands' own GROUP BY beside it 14.4 and 14.8; the overview counting them 22.9 and 24.1 (as a sumMap). A
# countIf per band instead of the sumMap's arrays of every row, and the revenue in cents (schema._CENTS_SUM):
# `python bench/segments.py 500`, the table "overview before / as sent".
BAND = "__band"


def band_counts_sql() -> str:
    band = schema.BUCKETS["price_band"]
    return ", ".join(f"countIf({band.order} = {i}) AS {BAND}{i}" for i in range(len(band.labels)))


def _bands(overview: dict) -> list[dict]:
    """The overview's band counts as the answer lists them: the bands that hold games, in order."""
    counts = [overview.pop(f"{BAND}{i}") for i in range(len(schema.BUCKETS["price_band"].labels))]
    return [{"band": label, "games": n} for label, n in zip(schema.BUCKETS["price_band"].labels, counts, strict=True)
            if n]


def _col(name: str) -> str:
    return filters.column_sql(schema.BY_NAME[name])


def statements(cond: Where, table: str, unrepeated: frozenset[str] = frozenset()
               ) -> dict[str, tuple[str, dict[str, Any]]]:
    """The statements of GET /games/summary, each over the matching games (run side by side);
    `unrepeated`: list columns no game repeats an element of (build.join_elements)."""
    median = schema.METRICS["median"].sql
    p90 = schema.METRICS["p90"].sql
    t, w, p = table, cond.sql, cond.params
    top = {"n": TOP}
    return {
        "overview": (f"SELECT count() AS games, "
                     f"round(countIf({_col('price')} = 0) / count(), {schema.DECIMALS}) AS share_free, "
                     f"{median.format(c=_col('price'))} AS median_price, {p90.format(c=_col('price'))} AS p90_price, "
                     f"{median.format(c=_col('reviews'))} AS median_reviews, "
                     f"round(avg({_col('rating')}), {schema.DECIMALS}) AS avg_rating, "
                     # the aggregate's sum, so that the two agree to the cent
                     f"{schema.METRICS['sum'].over(schema.BY_NAME['est_revenue'], _col('est_revenue'))} "
                     "AS est_revenue, "
                     # The price bands in the same pass: their own GROUP BY read the prices again (one
                     # statement fewer: 14 ms of the engine's time at 500 MB, see BAND).
                     f"{band_counts_sql()} FROM {t} WHERE {w}", p),
        **{part: (value_counts(name, t, w, "games", repeats=name not in unrepeated) + " LIMIT {n:UInt64}",
                  {**p, **top})
           for part, name in RANKED.items()},
        "top_rated": (f"SELECT app_id, name, rating, reviews FROM {t} WHERE ({w}) AND rating IS NOT NULL "
                      "ORDER BY rating DESC, reviews DESC, app_id ASC LIMIT {n:UInt64}", {**p, **top}),
        "most_reviewed": (f"SELECT app_id, name, reviews, rating FROM {t} WHERE {w} "
                          "ORDER BY reviews DESC, app_id ASC LIMIT {n:UInt64}", {**p, **top}),
    }


class Summary(Endpoint):
    name, path, model = "summary", "/games/summary", answers.Summary
    openapi_params = [openapi.VERSION, *openapi.FILTERS]
    warm = [[]]

    def parse(self, items: Items, accept: str | None = None, max_limit: int = MAX_LIMIT) -> Where:
        return where(items, set())  # every parameter is a filter

    def answer(self, reader: Explorer, cond: Where, items: Items, path: str, snap: Snapshot) -> dict:
        """Its statements side by side; its top tags and genres come from the version's rankings over the
        whole version, from its element bitmaps over a segment (one statement for both lists), and from
        the lists themselves in a version that has no bitmaps (yet)."""
        spent: list[float] = []
        unrepeated = frozenset(name for name in RANKED.values() if not reader.repeats(snap, name))
        todo = statements(cond, snap.table, unrepeated)
        names = list(todo)  # the answer's order
        ranked = {}
        for part, name in RANKED.items():
            ranking = reader.whole_ranking(snap, name, cond)
            if ranking is not None:
                del todo[part]
                ranked[part] = [{"value": v, "games": n} for v, n in ranking[:TOP]]
        lists = None
        columns = list(RANKED.values())
        if not ranked and reader.bitmapped(snap, columns) == columns:  # a segment: both lists in one statement
            for part in RANKED:
                del todo[part]
            lists = reader.beside(reader.element_counts, snap, columns, cond, TOP, spent)
        futures = {name: reader.beside(reader.select, snap, sql, params, spent=spent)
                   for name, (sql, params) in todo.items()}
        if lists is not None:
            counts = lists.result()
            ranked = {part: [{"value": v, "games": n} for v, n in counts[name]] for part, name in RANKED.items()}
        parts = {name: ranked[name] if name in ranked else futures[name].result().dicts() for name in names}
        overview = parts.pop("overview")[0]
        bands = _bands(overview)
        return {**overview, "price_bands": bands, **parts, "version": snap.upload_id,
                "est_revenue_note": schema.REVENUE_CAVEAT, "review_multiple": reader.settings.review_multiple,
                "engine_ms": round(max(spent, default=0), 2)}


ENDPOINT = Summary()
