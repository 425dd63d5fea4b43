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
    """Every column's and bucket's filters (a bucket tests its values: release_year, price_band...)."""
    named = [(c.name, c.kind.filter, c.doc, c.example) for c in schema.COLUMNS]
    named += [(b.name, b.family, b.doc, _bucket_example(b)) for b in schema.BUCKETS.values()]
    params = []
    for name, family, doc, example in named:
        ops = filters.operators_for(name)
        params.append(param(name, f"{doc}. Bare value: {filters.REGISTRY[family][ops[0]].doc}. "
                             f"Other operators as {name}__<op>: {', '.join(ops[1:])}.", example))
        for op in ops[1:]:
            params.append(param(f"{name}__{op}", f"{doc}: {filters.REGISTRY[family][op].doc}."))
    return params


def _bucket_example(b: schema.Bucket) -> str:
    examples = {"year": "2020", "month": "2020-05"}
    if b.labels:
        return b.labels[0]
    return examples[b.unit]


FORMAT = param("format", "json (default), or an export: "
               f"{', '.join(f'{f.name} ({f.doc})' for f in formats.EXPORTS.values())}. "
               "An export holds every matching row up to GAMELENS_EXPORT_MAX_ROWS (headers X-Total-Count, "
               "X-Truncated). An Accept header naming an export's media type (text/csv, ...) works too.", "json",
               enum=list(formats.NAMES))
PAGING = [
    param("limit", f"Rows per page, 1 to {build.MAX_LIMIT} (default {build.DEFAULT_LIMIT}).", "50", "integer"),
    param("offset", "Rows to skip (prefer cursor for deep pages).", "0", "integer"),
    FORMAT,
]
FILTERS = _filter_params()
VERSION = param("version", "An upload id: read that stored version (one kept and not served yet, or an earlier one) "
                "rather than the one served. GET /api/v1/uploads lists them (`stored`). Default: the version served.",
                "3", "integer")
