"""Run the read endpoints (rows.py, aggregate.py, summary.py, game.py) on the engine: their JSON
answers, cached per version, and their exports, spooled. Every request reads one dataset version,
resolved once (see ingest/versions.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from .. import schema
from ..engine import UNKNOWN_TABLE, Engine
from ..errors import EngineError, GameLensError
from ..ingest import physical
from ..ingest.versions import Snapshot, Versions
from ..settings import Settings
from . import aggregate, build, filters, formats, game, rows, summary
from .cache import Cache, etag, make_key, not_modified
from .endpoint import Endpoint, Items
from .spool import Spool, Spools

log = logging.getLogger(__name__)

ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in (rows.ENDPOINT, aggregate.ENDPOINT, summary.ENDPOINT,
                                                      game.ENDPOINT)}
# The page's first requests (ui/main.js and its views), answered for a new version before it is switched in.
WARM = {e.name: e.warm for e in ENDPOINTS.values() if e.warm}
# A list column with more distinct elements than this is filtered game by game (see filters.ELEMENTS):
# the elements travel as a query parameter, which stays small.
ELEMENTS_MAX = 20_000
# Versions whose list rankings are kept at once: the one served and a few read by `version=N` (else reads of
# a kept upload beside the served one would read each ranking again at every turn).
RANKED_VERSIONS = 4
WARM_LANES = 2  # requests a warm-up answers at once (Explorer.warm)


class _Ranking(NamedTuple):
    """A list column's elements over a whole version (Explorer._read_ranking)."""

    counts: list[tuple[str, int]] | None  # (element, games), most first; None past ELEMENTS_MAX
    repeats: bool  # some game lists an element twice (True when not known)


@dataclass
class Answer:
    etag: str
    body: bytes | None  # the JSON answer; None: the client's copy (If-None-Match) is current
    cached: bool
    version: int  # the upload id of the version read (X-Dataset-Version)


class Explorer:
    """The read side: each endpoint's answers and exports, on one version. Endpoints run their
    statements through `select`, side by side through `beside`. JSON answers are cached per version
    (query/cache.py)."""

    def __init__(self, engine: Engine, versions: Versions, settings: Settings):
        self.engine, self.versions, self.settings = engine, versions, settings
        # Bound into every read: virtual columns (est_owners, est_revenue) use it (see schema.py).
        self.constants = {"review_multiple": settings.review_multiple}
        self._parallel = ThreadPoolExecutor(max_workers=settings.query_pool_size, thread_name_prefix="gamelens-query")
        self.spools = Spools(settings.data_dir / "tmp", settings)
        self.cache = Cache(settings.cache_mb << 20, settings.cache_entries)
        versions.on_switch.append(lambda snap: self.cache.keep_only(snap.identity))
        # (version identity, list column) -> its elements by games, and whether a game repeats one
        self._rankings: dict[tuple[str, str], _Ranking] = {}
        self._ranked_versions: tuple[str, ...] = ()  # identities, the one read last at the end (_used_version)
        self._counts: dict[str, int] = {}  # version identity -> its number of games (whole_count)
        self._closing = threading.Event()
        self._warming: list[threading.Thread] = []

    def close(self) -> None:
        """Stop warming and wait for the statements in flight: the engine is closed next, and chDB
        crashes the process when a statement still runs as it shuts down. Those still running now (a
        request past the server's graceful timeout, a warm-up) are cancelled first: a stop is not held
        until they end."""
        self._closing.set()
        self.engine.end_statements()
        for thread in self._warming:
            thread.join()
        self._parallel.shutdown(wait=True, cancel_futures=True)
        self.versions.close()

    def select(self, snap: Snapshot, sql: str, params: dict, settings: dict | None = None,
               spent: list | None = None):
        """Run a read of `snap`; `spent` collects the engine's own time of each statement (engine_ms).
        A statement that might not end before `snap` may be dropped is refused before it starts."""
        snap.check_time(self.settings.queue_timeout_s + self.settings.query_limit_s)
        res = self.engine.select(sql, self._params(snap, sql, params), settings=settings)
        if spent is not None:
            spent.append(res.stats.get("elapsed_ms", 0))
        return res

    def beside(self, fn, *args, **kwargs):
        """Run `fn(*args, **kwargs)` on the query pool, beside the caller's own statement (a Future)."""
        return self._parallel.submit(fn, *args, **kwargs)

    def _params(self, snap: Snapshot, sql: str, params: dict) -> dict:
        """A statement's parameters: the request's, the settings bound into every read, and the distinct
        elements of the list columns its filters test through them (filters.ELEMENTS)."""
        bound = {**self.constants, **params}
        for name in {found[0] for found in filters.ELEMENTS_PARAM.findall(sql)}:
            elements = self._elements_of(snap, name)
            bound[filters.ELEMENTS + name] = elements or []
            bound[filters.ELEMENTS + name + "_listed"] = elements is not None
        return bound

    def _ranking_of(self, snap: Snapshot, name: str) -> list[tuple[str, int]] | None:
        """Every distinct element of list column `name` (one that filters.by_elements) in `snap`'s
        version with its number of games, most first; None when there are more than ELEMENTS_MAX.
        Read once per version (a version never changes): the elements serve its filters, the counts
        serve requests over the whole version (facets, the summary's top lists, top=N)."""
        return self._read_ranking(snap, name).counts

    def repeats(self, snap: Snapshot, name: str) -> bool:
        """Whether some game of `snap`'s version may list an element of list column `name` twice: its
        groups then keep each element once per game (build.join_elements). Known from the column's
        ranking; a list without one (developers, publishers) is taken to repeat."""
        col = schema.BY_NAME.get(name)
        if col is None or not filters.by_elements(col):
            return True
        return self._read_ranking(snap, name).repeats

    def _read_ranking(self, snap: Snapshot, name: str) -> _Ranking:
        key = (snap.identity, name)
        self._used_version(snap.identity)
        known = self._rankings  # replaced whole, never changed in place: threads may read it at any time
        if key in known:
            return known[key]
        found = self.select(snap, *build.ranking_sql(name, snap.table, ELEMENTS_MAX + 1)).rows
        if len(found) > ELEMENTS_MAX:
            ranking = _Ranking(None, True)  # unknown: as if repeated
        else:
            ranking = _Ranking([(v, n) for v, n, _ in found], any(repeated for _, _, repeated in found))
        used = self._ranked_versions
        self._rankings = {k: v for k, v in {**self._rankings, key: ranking}.items() if k[0] in used}
        return ranking

    def _used_version(self, identity: str) -> None:
        """Note that version `identity`'s rankings are read: the RANKED_VERSIONS versions read last keep
        theirs (least recently used out: the one served, read most, stays among them)."""
        used = self._ranked_versions
        if used and used[-1] == identity:
            return
        self._ranked_versions = (*(i for i in used if i != identity), identity)[-RANKED_VERSIONS:]

    def _elements_of(self, snap: Snapshot, name: str) -> list[str] | None:
        ranking = self._ranking_of(snap, name)
        if ranking is None:
            return None
        return [value for value, _ in ranking]

    def whole_ranking(self, snap: Snapshot, name: str, where: build.Where) -> list[tuple[str, int]] | None:
        """`name`'s ranking when a request covers the whole version (no filter) and it is kept; else None."""
        col = schema.BY_NAME.get(name)
        if where.sql != build.Where().sql or col is None or not filters.by_elements(col):
            return None
        return self._ranking_of(snap, name)

    @staticmethod
    def bitmapped(snap: Snapshot, names: list[str]) -> list[str]:
        """Those of `names` whose elements `snap`'s version counts from its element bitmaps (element_counts):
        lists of physical.ELEMENT_LISTS, once the version has its bitmaps; the others read their lists."""
        if not snap.elements:
            return []
        return [name for name in names if name in physical.ELEMENT_LISTS]

    def element_counts(self, snap: Snapshot, names: list[str], where: build.Where, limit: int,
                       spent: list | None = None) -> dict[str, list[tuple[str, int]]]:
        """The top `limit` elements of each list of `names` (bitmapped) with their games, over the games
        meeting `where`, from the version's element bitmaps, in one statement. A segment's top tags and
        genres at 500 MB, engine alone: `python bench/segments.py 500`."""
        sql, params = build.element_counts_sql(where, snap.table, snap.elements, names, limit)
        counts: dict[str, list[tuple[str, int]]] = {name: [] for name in names}
        for name, value, games in self.select(snap, sql, params, spent=spent).rows:
            counts[name].append((value, games))
        return counts

    def whole_count(self, snap: Snapshot, where: build.Where) -> int | None:
        """The number of games of `snap`'s version when a request covers it whole (no filter), else None:
        read once per version and kept with its rankings (a version's rows never change). A page of them
        all then runs one statement, not two: at 50 MB the page sorted by rating (`python bench/datasette.py
        50`) spent ~2 ms of the engine's time counting beside it [docs/measured.md, twenty-ninth pass]."""
        if where.sql != build.Where().sql:
            return None
        self._used_version(snap.identity)
        known = self._counts  # replaced whole, never changed in place, as the rankings
        if snap.identity in known:
            return known[snap.identity]
        total = self.select(snap, *build.count_sql(where, snap.table)).scalar()
        used = self._ranked_versions
        self._counts = {k: v for k, v in {**known, snap.identity: total}.items() if k in used}
        return total

    # --- answers (cached) ----------------------------------------------------------------------

    def answer(self, endpoint: Endpoint, items: Items, path: str, if_none_match: str = "") -> Answer:
        """The endpoint's JSON answer for these parameters, from the version they name (`version=N`) or
        else the active one: from the cache when it has it, else computed (and kept)."""
        t0 = time.perf_counter()
        version, rest = build.chosen_version(items)
        req = endpoint.parse(rest)  # a bad parameter is a 400 whether or not there is data
        snap = self._snapshot(version)
        # `version=N` stays in the key, though the identity names the version: the answer's links keep it
        key = make_key(snap.identity, endpoint.name, items, self.constants)
        tag = etag(key)
        if not_modified(tag, if_none_match, answered=False):  # the client's copy is current: no work
            return Answer(tag, None, True, snap.upload_id)
        body = self.cache.get(key)
        cached = body is not None
        engine_ms = 0.0  # a cached answer cost the engine nothing
        if not cached:
            with _still_stored(version):  # its links (`next`) keep `version=N`
                body, engine_ms = self._compute(endpoint, req, items, path, snap)
            self.cache.put(key, body)
        if not_modified(tag, if_none_match, answered=True):  # `*`: there is an answer
            return Answer(tag, None, cached, snap.upload_id)
        if endpoint.timed:
            body = _with_timings(body, engine_ms, round((time.perf_counter() - t0) * 1000, 2))
        return Answer(tag, body, cached, snap.upload_id)

    def _snapshot(self, version: int | None) -> Snapshot:
        """The version a request reads: the one it names (`version=N`), else the one served."""
        if version is None:
            return self.versions.current()
        return self.versions.stored(version)

    def _compute(self, endpoint: Endpoint, req, items: Items, path: str, snap: Snapshot) -> tuple[bytes, float]:
        """The answer as the bytes kept and sent (without its timings), and the engine's time."""
        result = endpoint.answer(self, req, items, path, snap)
        engine_ms = result.pop("engine_ms", 0.0)
        return orjson.dumps(result), engine_ms

    def warm(self, snap: Snapshot) -> None:
        """Answer the page's first requests for a version before anyone can read it, and read the
        distinct elements its list filters use. Two at a time, on threads of their own (the query pool
        runs the statements each request starts beside it): one after another left a core idle while
        Python built each answer (/tmp scratch, all of warm: 190 -> 118 ms at 50 MB, 418 -> 332 at 500)."""
        lists = [col.name for col in schema.COLUMNS if filters.by_elements(col)]
        views = [(endpoint, items) for endpoint in ENDPOINTS.values() for items in endpoint.warm]
        with ThreadPoolExecutor(max_workers=WARM_LANES, thread_name_prefix="gamelens-warm") as lanes:
            list(lanes.map(lambda name: self._warm_list(snap, name), lists))  # list(): raises what one raised
            list(lanes.map(lambda view: self._warm_view(snap, *view), views))

    def _warm_list(self, snap: Snapshot, name: str) -> None:
        if not self._closing.is_set():
            self._elements_of(snap, name)

    def _warm_view(self, snap: Snapshot, endpoint: Endpoint, items: Items) -> None:
        if self._closing.is_set():
            return
        body, _ = self._compute(endpoint, endpoint.parse(items), items, "/api/v1" + endpoint.path, snap)
        self.cache.put(make_key(snap.identity, endpoint.name, items, self.constants), body)

    def warm_soon(self, snap: Snapshot) -> None:
        """A reader saw a switch: answer the page's first requests for it, in the background
        (not when there is no cache to fill: a CLI command on the data directory runs with none)."""
        if not self.cache.enabled:
            return

        def warm():
            try:
                self.warm(snap)
            except Exception:  # only a cache: it fills as pages are read
                if not self._closing.is_set():  # else a stop cut it (end_statements): nothing failed
                    log.warning("warming the cache of upload %s failed", snap.upload_id, exc_info=True)

        thread = threading.Thread(target=warm, name="gamelens-warm", daemon=True)
        self._warming = [t for t in self._warming if t.is_alive()] + [thread]  # switches seen in a row
        thread.start()

    # --- exports -------------------------------------------------------------------------------

    def export(self, endpoint: Endpoint, items: Items, accept: str | None, caller: str
               ) -> tuple[Spool, str, dict[str, str]]:
        """Every matching row (or group) from `offset`, up to `limit` if given, else up to the export
        cap; the count and whether the cap cut it are in the headers. The result is computed to the
        end first, into a spool file (see Engine.spool and query/spool.py), and sent with its
        Content-Length. The caller sends the spool and must close it."""
        cap = self.settings.export_max_rows
        version, items = build.chosen_version(items)
        req = endpoint.parse(items, accept, max_limit=cap)
        endpoint.check_export(req)
        fmt = req.format
        limit = req.limit if req.limited else cap
        snap = self._snapshot(version)
        spool = self.spools.admit(caller)
        try:
            with _still_stored(version):
                endpoint.prepare_export(self, req, snap)
                total = self.select(snap, *endpoint.export_count(req, snap.table)).scalar()
                sql, params = endpoint.export_sql(req, snap.table, limit)
                self._spool(snap, sql, params, formats.EXPORTS[fmt], endpoint.export_settings, spool)
        except BaseException:
            spool.close()
            raise
        exported = min(max(total - req.offset, 0), limit)
        name = f"{endpoint.export_name}-upload{snap.upload_id}.{fmt}"  # whose data it holds, as the page says
        headers = {"Content-Disposition": f'attachment; filename="{name}"',
                   "Content-Length": str(spool.size), "X-Total-Count": str(total),
                   "X-Exported-Count": str(exported), "X-Dataset-Version": str(snap.upload_id),
                   "X-Truncated": "true" if not req.limited and total - req.offset > cap else "false"}
        return spool, formats.EXPORTS[fmt].media_type, headers

    def _spool(self, snap: Snapshot, sql: str, params: dict, export: formats.Format, settings: dict[str, Any],
               spool: Spool) -> None:
        snap.check_time(self.settings.queue_timeout_s + self.settings.export_limit_s)
        settings = {**settings, "max_result_rows": self.settings.export_max_rows + 1,
                    "max_execution_time": self.settings.export_limit_s, **export.settings}
        self.engine.spool(sql, self._params(snap, sql, params), export.engine, spool, settings)


@contextmanager
def _still_stored(version: int | None) -> Iterator[None]:
    """A version a request named (`version=N`) that a new upload pushed out while it was read: 404, as if
    it had been gone when the request came (the served one cannot go while it is read)."""
    try:
        yield
    except EngineError as exc:
        if version is None or exc.engine_code != UNKNOWN_TABLE:
            raise
        raise GameLensError("version_gone", f"The data of upload {version} was removed while it was read: a newer "
                            "upload took its place among the versions kept (GAMELENS_KEEP_VERSIONS).", 404,
                            param="version", value=version) from exc


def _with_timings(body: bytes, engine_ms: float, took_ms: float) -> bytes:
    """The answer's JSON object with its timings as its last members (the cached bytes never hold them)."""
    if not body.endswith(b"}"):
        raise ValueError("an answer is a JSON object")
    return body[:-1] + b',"engine_ms":' + orjson.dumps(engine_ms) + b',"took_ms":' + orjson.dumps(took_ms) + b"}"


def _bucket_doc(b: schema.Bucket) -> dict:
    """A bucket groups, and filters by its values (`release_year__gte=2015`, `price_band=free`)."""
    ops = filters.operators_for(b.name)
    doc = {"name": b.name, "doc": b.doc, "source": b.source, "unit": b.unit or None, "type": b.family,
           "operators": ops, "default_operator": ops[0],
           "operator_docs": {k: filters.REGISTRY[b.family][k].doc for k in ops}}
    if b.labels:
        doc["values"] = list(b.labels)
    return doc


def schema_doc(settings: Settings) -> dict:
    """Every column with its type, operators and an example (derived ones with their formula and
    source); buckets and metrics. Drives the page and the docs."""
    cols = []
    for c in schema.COLUMNS:
        ops = filters.operators_for(c.name)
        doc = {
            "name": c.name, "header": c.header or None, "type": c.kind.filter, "clickhouse_type": c.ch_type,
            "doc": c.doc, "example": c.example, "operators": ops, "default_operator": ops[0],
            "operator_docs": {k: filters.REGISTRY[c.kind.filter][k].doc for k in ops},
            "sortable": c.name in build.SORTABLE, "groupable": c.name in build.GROUPABLE, "unit": c.unit or None,
        }
        if c.derived:
            doc.update(derived="virtual" if c.virtual else "stored", formula=c.formula, source=c.source or None)
        cols.append(doc)
        if c.raw_name:
            cols.append({"name": c.raw_name, "type": "raw", "doc": f"{c.name} as written in the CSV",
                         "operators": [], "sortable": False, "groupable": False})
    return {
        "columns": cols,
        "buckets": [_bucket_doc(b) for b in schema.BUCKETS.values()],
        # alias: the output column's name ({name}, {column} and {operator} filled in from the request).
        "metrics": [{"name": m.name, "doc": m.doc, "unit": m.unit or None, "alias": aggregate.alias_template(m),
                     "columns": [c.name for c in schema.COLUMNS if c.kind.filter in m.families]}
                    for m in schema.METRICS.values()]
        + [{"name": "share", "doc": "share(<filter>): the share (0 to 1) of the group's games that meet one filter, "
            "written as a query parameter, e.g. share(rating__gte=0.8)", "unit": "percent",
            "alias": aggregate.SHARE_ALIAS, "columns": [], "alias_no_operator": aggregate.SHARE_ALIAS_NO_OPERATOR}],
        # A metric without a unit (sum, avg, min, max, median, p90) reads in its column's unit.
        "units": schema.UNITS,
        "review_multiple": settings.review_multiple,
        "est_revenue_note": schema.REVENUE_CAVEAT,
        "limits": {"max_limit": build.MAX_LIMIT, "default_limit": build.DEFAULT_LIMIT,
                   "formats": list(formats.NAMES), "max_facets": rows.MAX_FACETS,
                   "max_list_groups": aggregate.MAX_LIST_GROUPS, "max_top": aggregate.MAX_TOP},
        "exports": [{"format": f.name, "media_type": f.media_type, "label": f.label, "doc": f.doc}
                    for f in formats.EXPORTS.values()],
    }
