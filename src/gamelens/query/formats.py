"""Export formats, in one registry: what `?format=` (or an Accept header) asks for, how the engine
writes it, and what the response says it is. Adding a format is one entry here (and a test); the
API, its OpenAPI document, /schema, the page's export buttons and the CLI read the list.

JSON is not an export: it is the paged answer (`format=json`, the default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import invalid

JSON = "json"


@dataclass(frozen=True)
class Format:
    name: str  # ?format=<name>
    engine: str  # the engine's output format
    media_type: str
    label: str  # as the page's export buttons say it
    doc: str
    # Values as the source file writes them (dates as in the CSV, formula-looking text neutralised),
    # so that an export re-uploads to the same rows; other formats keep the typed values.
    source_form: bool = False
    settings: dict = field(default_factory=dict)  # the engine's output settings for this format
    also_accepted: tuple[str, ...] = ()  # other media types an Accept header may name it by


# Row groups of about 16 MB (the engine's default is 512; it cuts a group between blocks, so a group can
# pass it by a block): the engine holds one group in memory while it writes, and readers still get few,
# large groups.
PARQUET_SETTINGS = {"output_format_parquet_compression_method": "zstd",
                    "output_format_parquet_row_group_size_bytes": 16 << 20}

EXPORTS: dict[str, Format] = {f.name: f for f in (
    Format("csv", "CSVWithNames", "text/csv; charset=utf-8", "CSV",
           "CSV with a header row, values as the source file writes them (re-uploads to the same rows)",
           source_form=True, settings={"format_csv_null_representation": ""}),
    Format("ndjson", "JSONEachRow", "application/x-ndjson", "NDJSON", "one JSON object per line, typed values",
           also_accepted=("application/ndjson", "application/jsonl", "application/json-seq")),
    Format("parquet", "Parquet", "application/vnd.apache.parquet", "Parquet",
           "Apache Parquet, typed columns (lists as lists, dates as dates), compressed; for pandas, "
           "DuckDB, Spark", settings=PARQUET_SETTINGS),
)}
NAMES = (JSON, *EXPORTS)


def chosen(asked: str | None, accept: str | None) -> str:
    """The format of an answer: `?format=` when given, else the one the Accept header prefers (RFC 9110
    12.5.1): each format takes the quality of the most specific media range naming it (`text/csv`, then
    `text/*`, then `*/*`); the highest quality wins, then the more specific range, then the first named,
    then JSON (the answer's own type) before the exports. JSON when the header names no format, unless it
    refuses JSON (q=0): then 406, as nothing the client accepts can be sent."""
    if asked is None:
        return _by_accept(accept or "")
    if asked not in NAMES:
        raise invalid("format", asked, "Unknown format.", list(NAMES))
    return asked


MEDIA: dict[str, tuple[str, ...]] = {
    JSON: ("application/json",),
    **{f.name: (f.media_type.split(";")[0], *f.also_accepted) for f in EXPORTS.values()},
}


def _by_accept(accept: str) -> str:
    ranges, offers = _media_ranges(accept), []
    matches = {name: _match(types, ranges) for name, types in MEDIA.items()}
    for order, (name, match) in enumerate(matches.items()):
        if match is not None and match[0] > 0:
            q, specificity, position = match
            offers.append((q, specificity, -position, -order, name))
    if offers:
        return max(offers)[-1]
    if matches[JSON] is None:  # a header that names none of them: the header is disregarded
        return JSON
    refused = invalid("Accept", accept, "The Accept header refuses every format this answer has: name one of "
                      "these, or ask with ?format=.", [types[0] for types in MEDIA.values()], "not_acceptable", 406)
    refused.headers["Vary"] = "Accept"  # as the answers say: another Accept gets an answer
    raise refused


def _match(types: tuple[str, ...], ranges: list[tuple[str, float]]) -> tuple[float, int, int] | None:
    """(quality, specificity, position) of the most specific range of `ranges` naming one of `types`
    (the first of equals); None when none names them."""
    best = None
    for position, (media, q) in enumerate(ranges):
        specificity = _specificity(media, types)
        if specificity is not None and (best is None or specificity > best[1]):
            best = (q, specificity, position)
    return best


def _specificity(media: str, types: tuple[str, ...]) -> int | None:
    """2 for a range naming one of `types`, 1 for its type's wildcard (`text/*`), 0 for `*/*`."""
    if media in types:
        return 2
    if media in {t.split("/")[0] + "/*" for t in types}:
        return 1
    if media == "*/*":
        return 0
    return None


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """An Accept header's media types (lower case) with their quality (RFC 9110 12.5.1; 1 unless q= says
    otherwise, and 0 when q= is not a number from 0 to 1)."""
    ranges = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                q = _quality(value)
        ranges.append((media.lower(), q))
    return ranges


def _quality(text: str) -> float:
    try:
        q = float(text)
    except ValueError:
        return 0.0
    if 0 <= q <= 1:  # also false for NaN
        return q
    return 0.0


def openapi_content() -> dict:
    """The 200 response's media types of an endpoint that exports."""
    return {"application/json": {}, **{f.media_type.split(";")[0]: {} for f in EXPORTS.values()}}
