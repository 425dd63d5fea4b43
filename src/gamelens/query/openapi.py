"""OpenAPI descriptions of the query-string parameters, generated from the schema: the filters and
the parameters every endpoint shares; each endpoint (rows.py, aggregate.py, ...) lists its own.

The routes read the raw query string (filters are open-ended: any column, any operator), so the
parameters are declared for /docs and for clients generated from the OpenAPI document.
"""

from .. import schema
from . import build, filters, formats


def param(name: str, description: str, example: str | None = None, schema_type: str = "string",
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
        params.append(param(col.name, f"{col.doc}. Bare value: {filters.REGISTRY[col.kind.filter][ops[0]].doc}. "
                             f"Other operators as {col.name}__<op>: {', '.join(ops[1:])}.", col.example))
        for op in ops[1:]:
            params.append(param(f"{col.name}__{op}", f"{col.doc}: {filters.REGISTRY[col.kind.filter][op].doc}."))
    return params


PAGING = [
    param("limit", f"Rows per page, 1 to {build.MAX_LIMIT} (default {build.DEFAULT_LIMIT}).", "50", "integer"),
    param("offset", "Rows to skip (prefer cursor for deep pages).", "0", "integer"),
    param("format", "json (default), or an export: "
           f"{', '.join(f'{f.name} ({f.doc})' for f in formats.EXPORTS.values())}. "
           "An export holds every matching row up to GAMELENS_EXPORT_MAX_ROWS (headers X-Total-Count, X-Truncated). "
           "An Accept header naming an export's media type (text/csv, ...) works too.", "json",
           enum=list(formats.NAMES)),
]
FILTERS = _filter_params()
