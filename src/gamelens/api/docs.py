"""OpenAPI descriptions of the query-string parameters, generated from the schema.

The routes read the raw query string (filters are open-ended: any column, any operator), so the
parameters are declared here for /docs and for clients generated from the OpenAPI document.
"""

from .. import schema
from ..query import build, filters, formats


def _param(name: str, description: str, example: str | None = None, schema_type: str = "string",
           enum: list[str] | None = None) -> dict:
    p = {"name": name, "in": "query", "required": False, "description": description,
         "schema": {"type": schema_type}}
    if enum:
        p["schema"]["enum"] = enum
    if example is not None:
        p["example"] = example
    return p


def _filter_params() -> list[dict]:
    params = []
    for col in schema.COLUMNS:
        ops = filters.operators_for(col)
        params.append(_param(col.name, f"{col.doc}. Bare value: {filters.REGISTRY[col.kind.filter][ops[0]].doc}. "
                             f"Other operators as {col.name}__<op>: {', '.join(ops[1:])}.", col.example))
        for op in ops[1:]:
            params.append(_param(f"{col.name}__{op}", f"{col.doc}: {filters.REGISTRY[col.kind.filter][op].doc}."))
    return params


_COMMON = [
    _param("limit", f"Rows per page, 1 to {build.MAX_LIMIT} (default {build.DEFAULT_LIMIT}).", "50", "integer"),
    _param("offset", "Rows to skip (prefer cursor for deep pages).", "0", "integer"),
    _param("format", "json (default), or an export: "
           f"{', '.join(f'{f.name} ({f.doc})' for f in formats.EXPORTS.values())}. "
           "An export holds every matching row up to GAMELENS_EXPORT_MAX_ROWS (headers X-Total-Count, X-Truncated). "
           "An Accept header naming an export's media type (text/csv, ...) works too.", "json",
           enum=list(formats.NAMES)),
]
FILTERS = _filter_params()
ROWS_PARAMS = [
    _param("sort", "Comma-separated columns, - for descending; app_id breaks ties. One of: "
           f"{', '.join(build.SORTABLE)}.", "-positive,name"),
    _param("fields", "Comma-separated columns to return (default: all).", "name,price"),
    _param("cursor", "The next_cursor of the previous page (keyset pagination, same sort)."),
    _param("facet", "Repeatable: top values of a column or bucket with counts under the filters.", "genres"),
    _param("facet_size", f"Values per facet (default {build.FACET_DEFAULT}, max {build.FACET_MAX}).", "10", "integer"),
    *_COMMON, *FILTERS,
]
AGGREGATE_PARAMS = [
    _param("group_by", f"Comma-separated: {', '.join(build.GROUPABLE)}. List columns count a game once per element.",
           "genres,release_year"),
    _param("metrics", "Comma-separated: count; growth (the change in games against the year before; needs "
           "release_year in group_by); fn:column with fn one of "
           f"{', '.join(m for m in schema.METRICS if m not in ('count', 'growth'))} (output name fn_column); or "
           "share(<filter>), the share of the group's games meeting one filter written as a query parameter "
           "(output name share_<column>_<op>).", "count,avg:price,share(rating__gte=0.8)"),
    _param("top", f"1 to {build.MAX_TOP}: keep only the first group_by key's top N values by number of games "
           "(e.g. group_by=tags,release_year&top=8: a trend of 8 series); rows come in rank order.", "8", "integer"),
    _param("series", f"Up to {build.MAX_SERIES} comma-separated values of the first group_by key (a text or list "
           "column) to keep: chosen series, e.g. group_by=genres,release_year&series=Action,Strategy.",
           "Action,Strategy"),
    _param("having", "Repeatable: metric__op:number, op one of gt, gte, lt, lte, exact, ne.", "count__gte:10"),
    _param("sort", "Comma-separated metric or group names, - for descending (default -count).", "-count"),
    *_COMMON, *FILTERS,
]
