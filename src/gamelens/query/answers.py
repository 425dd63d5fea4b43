"""The shapes of the read answers, declared for OpenAPI: a client generated from /openapi.json gets
typed pages, aggregates, summaries, games and the schema instead of `Any` (api/answers.py holds
those of uploads and keys).

The routes send bytes that query/run.py computed (and the cache keeps), so these models document the
answers rather than build them; tests/test_query_api.py validates real answers against them (extra
members forbidden), so the two cannot drift apart. A game's fields come from the schema declaration.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from .. import schema

# The JSON type of each filter family's values (dates as YYYY-MM-DD; decimals as numbers).
_TYPES: dict[str, Any] = {"number": int, "decimal": float, "float": float, "bool": bool, "date": date,
                          "string": str, "list": list[str]}


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _game_fields(required: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for col in schema.COLUMNS:
        kind = _TYPES[col.kind.filter]
        kind = kind | None if col.ch_type.startswith("Nullable") or col.virtual else kind
        fields[col.name] = (kind if required else kind | None, Field(... if required else None, description=col.doc))
        if col.raw_name:
            fields[col.raw_name] = (str if required else str | None,
                                    Field(... if required else None, description=f"{col.name} as written in the CSV"))
    return fields


Game = create_model("Game", __base__=Answer, __doc__="One game: every field.", **_game_fields(True))
GameFields = create_model("GameFields", __base__=Answer, __doc__="A row of a page: the fields asked for (fields=).",
                          **_game_fields(False))


class Timed(Answer):
    engine_ms: float = Field(description="the engine's own time (statements run side by side: the longest)")
    took_ms: float = Field(description="the request's time in the server")


class FacetValue(Answer):
    value: Any
    count: int


class Page(Timed):
    rows: list[GameFields]
    total: int = Field(description="rows matching the filters")
    limit: int
    offset: int
    next: str | None = Field(description="the next page's URL (offset, or cursor when paging by cursor)")
    next_cursor: str | None
    version: int = Field(description="the upload id of the dataset version read")
    facets: dict[str, list[FacetValue]] | None = None


class Aggregate(Timed):
    rows: list[dict[str, Any]] = Field(description="one object per group: its group_by keys and its metrics, "
                                       "named by /schema's metric alias templates")
    total_groups: int
    group_by: list[str]
    metrics: list[str] = Field(description="the metrics' output names, in the order asked")
    limit: int
    offset: int
    next: str | None
    version: int
    series: list[Any] | None = Field(None, description="with top=N: the series, in rank order; with series=: "
                                     "those with games, in the order chosen")


class PriceBand(Answer):
    band: str
    games: int


class ValueGames(Answer):
    value: str
    games: int


class RankedGame(Answer):
    app_id: int
    name: str
    rating: float | None
    reviews: int


class Summary(Timed):
    games: int
    share_free: float | None
    median_price: float | None
    p90_price: float | None
    median_reviews: float | None
    avg_rating: float | None
    est_revenue: float | None
    price_bands: list[PriceBand]
    top_tags: list[ValueGames]
    top_genres: list[ValueGames]
    top_rated: list[RankedGame]
    most_reviewed: list[RankedGame]
    version: int
    est_revenue_note: str
    review_multiple: float


class ColumnDoc(Answer):
    """A column as /schema describes it (members in the answer's order; a date's raw text column has
    only name, type, doc, operators, sortable and groupable)."""
    name: str
    header: str | None = None
    type: str = Field(description="filter family, or raw for a date's source text")
    clickhouse_type: str | None = None
    doc: str
    example: str | None = None
    operators: list[str]
    default_operator: str | None = None
    operator_docs: dict[str, str] | None = None
    sortable: bool
    groupable: bool
    unit: str | None = None
    derived: str | None = Field(None, description="virtual (computed by each query) or stored (at load)")
    formula: str | None = None
    source: str | None = None


class BucketDoc(Answer):
    """A bucket groups, and filters by its values as a column does (`release_year__gte=2015`)."""
    name: str
    doc: str
    source: str
    unit: str | None
    type: str = Field(description="the filter family its values compare in (a month as its 1st day, a price band "
                      "by its place among values)")
    operators: list[str]
    default_operator: str
    operator_docs: dict[str, str]
    values: list[str] | None = Field(None, description="its values, in their order (price bands)")


class MetricDoc(Answer):
    name: str
    doc: str
    unit: str | None
    alias: str = Field(description="the output column's name: {name}, {column}, {operator} filled in")
    columns: list[str]
    alias_no_operator: str | None = None


class ExportDoc(Answer):
    format: str
    media_type: str
    label: str
    doc: str


class SchemaDoc(Answer):
    columns: list[ColumnDoc]
    buckets: list[BucketDoc]
    metrics: list[MetricDoc]
    units: dict[str, str]
    review_multiple: float
    est_revenue_note: str
    limits: dict[str, Any]
    exports: list[ExportDoc]
