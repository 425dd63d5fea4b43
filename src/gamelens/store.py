"""Every statement GameLens sends that is not a user's query, in one place: the database and its
bookkeeping tables, dataset version tables (DDL, physical design, migration steps), the version
pointer and the view BI tools read, upload and key records, the writer lease, and the server-side
load. Values are bound as query parameters; identifiers come from code and the schema.

The engine's dialect lives here and nowhere else. With GAMELENS_CLICKHOUSE_CLUSTER set, the
replicated forms are rendered: the database is created `ON CLUSTER` as a `Replicated` database (so
every later DDL reaches every replica through Keeper), tables use `Replicated*MergeTree` (their
Keeper paths implied by the Replicated database), bookkeeping writes wait for a quorum and its
reads see every acknowledged write (`select_sequential_consistency`). On one node, plain forms.

Statements run on a Transport: anything with `execute` and `select` (engine.Engine is one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from . import schema
from .engine import TABLE_ALREADY_EXISTS, Result, ident, settings_clause
from .errors import EngineError, GameLensError
from .ingest import physical

LEGACY_ACTIVE = "games"  # release 421b14a's name for the active version; now the BI users' view
POINTER, UPLOADS, KEYS, LEASE = "active_version", "uploads", "api_keys", "writer_lease"
# Claims are empty tables: CREATE TABLE is atomic (and ordered through Keeper in a Replicated
# database), so of all the processes that try to create one name, exactly one succeeds.
UPLOAD_CLAIM, WRITER_LOCK, KEY_CLAIM = "upload_claim_", "writer_lock_", "key_claim_"
# A mutation (MATERIALIZE, DROP COLUMN, index builds) returns once it is done on every part.
SYNC = {"mutations_sync": 2, "alter_sync": 2}
# The engine rewrites a part only while its disk has this many times the part's size unreserved (its
# DISK_USAGE_COEFFICIENT_TO_RESERVE); short of that the mutation waits, and a statement waiting on it
# (SYNC) waits for ever: a nearly full disk hung the upload worker and, tidying a version, a start
# (helper-66). Store.rewrite asks it of the whole table (see _check_room).
REWRITE_ROOM = 1.1
_MONOTONIC_NS = "greatest(toUInt64(toUnixTimestamp64Nano(now64(9))), (SELECT max({col}) + 1 FROM {table}{where}))"


class Transport(Protocol):
    db: str

    def execute(self, sql: str, params: dict[str, Any] | None = None, settings: dict | None = None) -> None: ...

    def select(self, sql: str, params: dict[str, Any] | None = None, *, readonly: bool = True,
               settings: dict | None = None) -> Result: ...

    def unmap_files(self) -> None: ...


def _column_ddl(col: schema.Column) -> str:
    """A stored column's declaration, with its codec where physical.CODECS gives one."""
    ddl = f"{ident(col.name)} {col.ch_type}"
    codec = physical.CODECS.get(col.name)
    if codec:
        ddl += f" CODEC({codec})"
    return ddl


class Store:
    def __init__(self, transport: Transport, cluster: str | None = None):
        self.t, self.db, self.cluster = transport, transport.db, cluster
        # On a cluster, bookkeeping must read what it (or a peer) has just written.
        self._reads = {"select_sequential_consistency": 1} if cluster else {}
        self._writes = {"insert_quorum": "auto"} if cluster else {}

    # --- rendering -----------------------------------------------------------------------------

    def q(self, name: str) -> str:
        return f"{ident(self.db)}.{ident(name)}"

    def _engine(self, family: str = "MergeTree", args: str = "") -> str:
        """`MergeTree()` on one node; `ReplicatedMergeTree()` on a cluster (the Replicated database
        supplies its Keeper path and replica name)."""
        prefix = "Replicated" if self.cluster else ""
        return f"{prefix}{family}({args})"

    def _select(self, sql: str, params: dict | None = None) -> Result:
        return self.t.select(sql, params, readonly=False, settings=self._reads)

    def _insert(self, sql: str, params: dict | None = None) -> None:
        self.t.execute(sql, params, self._writes)

    # --- the database and its bookkeeping tables --------------------------------------------------

    def create_database(self) -> None:
        if self.cluster:
            self.t.execute(f"CREATE DATABASE IF NOT EXISTS {ident(self.db)} ON CLUSTER {ident(self.cluster)} "
                           "ENGINE = Replicated('/clickhouse/databases/{database}', '{shard}', '{replica}')")
            return
        # EXCHANGE TABLES needs an Atomic database (chDB's `default` is not one).
        self.t.execute(f"CREATE DATABASE IF NOT EXISTS {ident(self.db)} ENGINE = Atomic")

    def create_bookkeeping(self) -> None:
        """The pointer, records and the writer lease: created once, never changed in layout (records
        are JSON documents, read with defaults, so new fields need no migration)."""
        self.t.execute(f"CREATE TABLE IF NOT EXISTS {self.q(POINTER)} (at UInt64, upload_id UInt64) "
                       f"ENGINE = {self._engine()} ORDER BY at")
        self.t.execute(f"CREATE TABLE IF NOT EXISTS {self.q(UPLOADS)} (id UInt64, version UInt64, doc String) "
                       f"ENGINE = {self._engine('ReplacingMergeTree', 'version')} ORDER BY id")
        self.t.execute(f"CREATE TABLE IF NOT EXISTS {self.q(KEYS)} (name String, version UInt64, doc String) "
                       f"ENGINE = {self._engine('ReplacingMergeTree', 'version')} ORDER BY name")
        self.t.execute(f"CREATE TABLE IF NOT EXISTS {self.q(LEASE)} (holder String, host String, pid UInt32, "
                       f"at DateTime64(3)) ENGINE = {self._engine()} ORDER BY (holder, at) "
                       "TTL toDateTime(at) + INTERVAL 1 DAY")

    def now(self) -> datetime:
        """The database server's clock (UTC, ms): what records are timed by, whichever process writes."""
        text = self._select("SELECT toString(now64(3), 'UTC')").scalar()
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    def ping(self) -> bool:
        return self.t.select("SELECT 1").scalar() == 1

    # --- the catalogue -------------------------------------------------------------------------

    def tables(self) -> list[tuple[str, str, list[str], str]]:
        """(name, comment, column names, engine) of every table and view of the database."""
        return self._select(
            "SELECT t.name, t.comment, c.names, t.engine FROM system.tables AS t LEFT JOIN (SELECT table, "
            "groupArray(name) AS names FROM system.columns WHERE database = {db:String} GROUP BY table) AS c "
            "ON c.table = t.name WHERE t.database = {db:String}", {"db": self.db}).rows

    def uuid(self, name: str) -> str | None:
        found = self.version_table(name)
        if found is None:
            return None
        return found[0]

    def version_table(self, name: str) -> tuple[str, str] | None:
        """(UUID, comment) of table `name`, or None when there is no such table."""
        rows = self._select("SELECT toString(uuid), comment FROM system.tables WHERE database = {db:String} AND "
                            "name = {t:String}", {"db": self.db, "t": name}).rows
        return tuple(rows[0]) if rows else None

    def rename(self, old: str, new: str) -> None:
        self.t.execute(f"RENAME TABLE {self.q(old)} TO {self.q(new)}")

    def exchange(self, a: str, b: str) -> None:
        self.t.execute(f"EXCHANGE TABLES {self.q(a)} AND {self.q(b)}")

    def drop(self, name: str) -> None:
        self.t.execute(f"DROP TABLE IF EXISTS {self.q(name)} SYNC")
        self.t.unmap_files()  # its files' disk space is free only once no read keeps them mapped

    def count(self, name: str) -> int:
        return self._select(f"SELECT count() FROM {self.q(name)}").scalar()

    def comment(self, name: str, text: str) -> None:
        self.t.execute(f"ALTER TABLE {self.q(name)} MODIFY COMMENT {_lit(text)}")

    # --- dataset version tables ------------------------------------------------------------------

    def create_version_table(self, name: str, comment: str) -> None:
        """A version's table as physical.py designs it (granules, merges held back until the switch)."""
        cols = []
        for c in schema.STORED_COLUMNS:
            cols.append(_column_ddl(c))
            if c.raw_name:
                cols.append(f"{ident(c.raw_name)} String")
        cols += [f"{schema.ROW_COL} UInt64", f"{schema.BAD_COL} Map(String, String)"]
        settings = ", ".join(f"{k} = {v}" for k, v in physical.TABLE_SETTINGS.items())
        self.t.execute(f"DROP TABLE IF EXISTS {self.q(name)}")
        self.t.execute(f"CREATE TABLE {self.q(name)} ({', '.join(cols)}) ENGINE = {self._engine()} "
                       f"ORDER BY {ident(schema.KEY)} SETTINGS {settings} COMMENT {_lit(comment)}")

    def has_table_setting(self, name: str) -> bool:
        """Whether the server knows MergeTree setting `name` (physical.CODEC_SETTING is newer than some)."""
        return bool(self._select("SELECT count() FROM system.merge_tree_settings WHERE name = {n:String}",
                                 {"n": name}).scalar())

    def _codec(self) -> dict[str, str]:
        """physical.CODEC_SETTING, where the server knows it."""
        codec, value = physical.CODEC_SETTING
        if self.has_table_setting(codec):
            return {codec: value}
        return {}

    def merge(self, name: str) -> None:
        """Allow merges again and merge every part into one, in LZ4 (physical.CODEC_SETTING: the load's parts
        are small, this merge writes the large one, and the mutations after it follow the table's setting;
        declared here, it covers a table an earlier release loaded and did not merge as well). Idempotent:
        run again after a stop, it finishes the job."""
        merges = ", ".join(f"{k} = {v}" for k, v in {**physical.MERGE_SETTINGS, **self._codec()}.items())
        self.t.execute(f"ALTER TABLE {self.q(name)} MODIFY SETTING {merges}", settings=SYNC)
        self.t.execute(f"OPTIMIZE TABLE {self.q(name)} FINAL", settings=SYNC)

    def build_indexes(self, name: str, indexes: list[str]) -> None:
        """Declare text indexes (physical.INDEXES) and write them for the table's part, in one pass over
        it (one mutation). Idempotent."""
        table = self.q(name)
        declared = ", ".join(f"ADD INDEX IF NOT EXISTS {i} {ident(col)} TYPE {kind}"
                             for i, (col, kind) in physical.INDEXES.items() if i in indexes)
        self.t.execute(f"ALTER TABLE {table} {declared}", settings=SYNC)
        written = ", ".join(f"MATERIALIZE INDEX {i}" for i in indexes)
        self.rewrite(name, f"ALTER TABLE {table} {written}")

    def drop_indexes(self, name: str, indexes: list[str]) -> None:
        """Drop the declarations of text indexes the server would not write (Versions.finish): the table
        then declares exactly the indexes it holds, and no later merge tries to build one."""
        dropped = ", ".join(f"DROP INDEX IF EXISTS {i}" for i in indexes)
        self.rewrite(name, f"ALTER TABLE {self.q(name)} {dropped}")

    def build_rank(self, name: str, column: str) -> None:
        """Store `column`'s sort rank (physical.RANKED): equal values share a rank, and rank order is
        the column's order. The ranks are written into a column under a working name, from a Join table
        of (row, rank), and take their own name in one rename: a reader sees them whole or not at all.
        Idempotent: run again after a stop, it starts over (abandon_rank first)."""
        table, rank = self.q(name), physical.rank_column(column)
        if rank in self.derived(name):
            return
        work, join = f"{rank}_new", rank_join(name, column)
        self.abandon_rank(name, column)
        self._check_room(name)
        self.t.execute(f"CREATE TABLE {self.q(join)} (row UInt64, rank UInt32) ENGINE = Join(ANY, LEFT, row)")
        self.t.execute(f"INSERT INTO {self.q(join)} SELECT {schema.ROW_COL}, "
                       f"toUInt32(dense_rank() OVER (ORDER BY {ident(column)})) FROM {table}")
        self.t.execute(f"ALTER TABLE {table} ADD COLUMN {work} UInt32", settings=SYNC)
        # joinGet reads another table, which ClickHouse calls non-deterministic: allowed for this one.
        self.rewrite(name, f"ALTER TABLE {table} UPDATE {work} = joinGet({{join:String}}, 'rank', {schema.ROW_COL}) "
                     "WHERE 1", {"join": f"{self.db}.{join}"}, {**SYNC, "allow_nondeterministic_mutations": 1})
        self.rewrite(name, f"ALTER TABLE {table} RENAME COLUMN {work} TO {rank}")
        self.drop(join)

    def abandon_rank(self, name: str, column: str) -> None:
        """Remove what a stopped or failed build_rank left: its update (the engine keeps an unfinished
        mutation and resumes it at start; without its Join table it would fail for ever and hold every
        later mutation of the table, the text indexes' too), the working column, the Join table. The
        version's other unfinished mutations go too: only finish() makes them, and it makes them again."""
        self._kill_unfinished_mutations(name)
        self._drop_working_column(name, f"{physical.rank_column(column)}_new")
        self.drop(rank_join(name, column))

    def build_packed(self, name: str) -> None:
        """Store the packed fields (physical.PACKED): written into a column under a working name, which
        takes its own name in one rename, so a reader sees them whole or not at all. The arrays are the
        engine's own JSON of each value, as a page's statement returns it; the mutation formats them
        with the server's settings, so its first rows are checked against a read's formatting first
        (`packing_differs`: not served). Idempotent: run again after a stop, it starts over."""
        table, work = self.q(name), f"{physical.PACKED}_new"
        if physical.PACKED in self.derived(name):
            return
        self.abandon_packed(name)
        self._check_room(name)
        packed = f"formatRowNoNewline('JSONCompactEachRow', {', '.join(physical.PACKED_VALUES)})"
        self.t.execute(f"ALTER TABLE {table} ADD COLUMN {work} String", settings=SYNC)
        self.rewrite(name, f"ALTER TABLE {table} UPDATE {work} = {packed} WHERE 1")
        differ = self._select(f"SELECT count() FROM (SELECT {work} AS stored, {packed} AS read FROM {table} "
                              f"LIMIT {physical.PACK_CHECK_ROWS}) WHERE stored != read").scalar()
        if differ:
            raise GameLensError("packing_differs", f"The packed fields of {name} differ from the columns as a read "
                                "formats them (this server's JSON settings): pages read the columns.", 500)
        self.rewrite(name, f"ALTER TABLE {table} RENAME COLUMN {work} TO {physical.PACKED}")

    def build_elements(self, name: str) -> None:
        """Store, for each element of the lists physical.ELEMENT_LISTS, the bitmap of the rows (`_row`) of
        the games that list it, in the version's own table (physical.elements_table). It is written under
        a working name, which takes its own name in one rename: a reader sees it whole or not at all. A
        table an earlier release wrote without a list is swapped out in one EXCHANGE, then dropped: a
        process of that release still reads it until then (helper-78).
        Idempotent: run again after a stop, it starts over (abandon_elements first)."""
        if physical.ELEMENTS in self.derived(name):
            return
        if self._complete_elements(name):
            return
        table, work = self.q(name), self.q(f"{physical.elements_table(name)}_new")
        self.abandon_elements(name)
        if self._select(f"SELECT max({schema.ROW_COL}) >= 4294967296 FROM {table}").scalar():
            raise GameLensError("rows_past_bitmaps", f"{name} numbers its rows past 2^32, beyond a bitmap's "
                                "32-bit numbers: its lists are read instead.", 500)
        self.t.execute(f"CREATE TABLE {work} (list LowCardinality(String), element String, "
                       f"rows AggregateFunction(groupBitmap, UInt32)) ENGINE = {self._engine()} "
                       f"ORDER BY (list, element) COMMENT {_lit(physical.ELEMENTS_COMMENT)}")
        for column in physical.ELEMENT_LISTS:
            self.t.execute(f"INSERT INTO {work} SELECT {{list:String}}, __e, groupBitmapState(toUInt32("
                           f"{schema.ROW_COL})) FROM {table} ARRAY JOIN {ident(column)} AS __e GROUP BY __e",
                           {"list": column})
        if self.version_table(physical.elements_table(name)) is None:
            self.rename(f"{physical.elements_table(name)}_new", physical.elements_table(name))
            return
        self.exchange(f"{physical.elements_table(name)}_new", physical.elements_table(name))
        self.abandon_elements(name)  # the earlier release's table, now under the working name

    def _complete_elements(self, name: str) -> bool:
        """Whether `name`'s element bitmaps, written by a release that gave them no comment, hold every list
        of physical.ELEMENT_LISTS; if so they get the comment that marks them complete (Store.derived)."""
        found = self.version_table(physical.elements_table(name))
        if found is None:
            return False
        held = self._select(f"SELECT groupUniqArray(list) FROM {self.q(physical.elements_table(name))}").scalar()
        if not set(physical.ELEMENT_LISTS) <= set(held):
            return False
        self.comment(physical.elements_table(name), physical.ELEMENTS_COMMENT)
        return True

    def abandon_elements(self, name: str) -> None:
        """Remove what a stopped or failed build_elements left: its working table."""
        self.drop(f"{physical.elements_table(name)}_new")

    def drop_version(self, name: str) -> None:
        """Drop a dataset table and what was derived from it: its element bitmaps first (a version without
        them is read from its lists; bitmaps without their version would be a stray, dropped at start)."""
        self.drop(physical.elements_table(name))
        self.drop(name)

    def _kill_unfinished_mutations(self, name: str) -> None:
        self.t.execute("KILL MUTATION WHERE database = {db:String} AND table = {t:String} AND NOT is_done",
                       {"db": self.db, "t": name})

    def abandon_packed(self, name: str) -> None:
        """Remove what a stopped or failed build_packed left: its update and the working column (the
        version's other unfinished mutations go too, as in abandon_rank)."""
        self._kill_unfinished_mutations(name)
        self._drop_working_column(name, f"{physical.PACKED}_new")

    def _drop_working_column(self, name: str, column: str) -> None:
        """Drop a stopped build's working column, if it is there: dropping rewrites every part."""
        if self._select("SELECT count() FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                        "AND name = {c:String}", {"db": self.db, "t": name, "c": column}).scalar():
            self.rewrite(name, f"ALTER TABLE {self.q(name)} DROP COLUMN IF EXISTS {column}")

    def rewrite(self, name: str, sql: str, params: dict[str, Any] | None = None, settings: dict = SYNC) -> None:
        """Run a statement that rewrites the parts of table `name` (a mutation) and waits for it: only
        with the room the engine needs (_check_room), else it would wait for ever."""
        self._check_room(name)
        self.t.execute(sql, params, settings)

    def _check_room(self, name: str) -> None:
        """507 insufficient_storage unless the table's disk has REWRITE_ROOM times all its parts unreserved.
        The engine asks that of each part as it rewrites it, but the parts it replaced stay on the disk
        for a while (old_parts_lifetime): with room for only the largest, the second part waited (helper-67,
        two parts left by an OPTIMIZE that had no room to merge)."""
        short = self._select(
            "SELECT count() FROM (SELECT disk_name, sum(bytes_on_disk) AS bytes FROM system.parts "
            "WHERE database = {db:String} AND table = {t:String} AND active GROUP BY disk_name) AS p "
            "INNER JOIN system.disks AS d ON d.name = p.disk_name "
            "WHERE p.bytes * {room:Float64} > d.unreserved_space",
            {"db": self.db, "t": name, "room": REWRITE_ROOM}).scalar()
        if short:
            raise GameLensError("insufficient_storage", f"The database's disk has no room to rewrite {name}: it "
                                f"needs {REWRITE_ROOM}x the table's size free.", 507)

    def copy_table(self, source: str, copy: str) -> None:
        """A table like `source` holding its parts by hard links (no data is copied)."""
        self.t.execute(f"CREATE TABLE {self.q(copy)} AS {self.q(source)}")
        self.t.execute(f"ALTER TABLE {self.q(copy)} ATTACH PARTITION tuple() FROM {self.q(source)}")

    def same_count(self, a: str, b: str) -> bool:
        return self._select(f"SELECT (SELECT count() FROM {self.q(a)}) = (SELECT count() FROM {self.q(b)})"
                            ).scalar() == 1

    def alter(self, name: str, statements: Iterable[str]) -> None:
        """Run a migration step's statements on table `name` (migrations.py), each to the end on every part."""
        for sql in statements:
            self.rewrite(name, sql)

    def studio_lists_and_review_columns(self, name: str) -> list[str]:
        """Layout 1 -> 2 (migrations.py): studio text becomes lists (the schema's split) and the stored
        review columns are computed from their schema expressions. Each new column is added with its
        expression as DEFAULT, written to disk (MATERIALIZE), then loses the DEFAULT, so the table reads
        like one loaded today."""
        t = self.q(name)
        studios, reviews = ("developers", "publishers"), ("reviews", "review_score", "rating")
        text = {n: f"{n}__text" for n in studios}
        adds = [f"ADD COLUMN {ident(n)} {schema.BY_NAME[n].ch_type} DEFAULT "
                f"{schema.BY_NAME[n].kind.parse.format(r=ident(text[n]))} AFTER {ident(text[n])}" for n in studios]
        adds += [f"ADD COLUMN {ident(n)} {schema.BY_NAME[n].ch_type} DEFAULT {schema.BY_NAME[n].stored} "
                 f"AFTER {ident(_after(n))}" for n in reviews]
        new = (*studios, *reviews)
        return [
            f"ALTER TABLE {t} " + ", ".join(f"RENAME COLUMN {ident(n)} TO {ident(text[n])}" for n in studios),
            f"ALTER TABLE {t} " + ", ".join(adds),
            f"ALTER TABLE {t} " + ", ".join(f"MATERIALIZE COLUMN {ident(n)}" for n in new),
            f"ALTER TABLE {t} " + ", ".join(f"MODIFY COLUMN {ident(n)} REMOVE DEFAULT" for n in new),
            f"ALTER TABLE {t} " + ", ".join(f"DROP COLUMN {ident(text[n])}" for n in studios),
        ]

    # --- the pointer and the BI view -------------------------------------------------------------

    def pointer(self) -> tuple[int, str, str] | None:
        """(upload id, table UUID or '', table comment) of the version the pointer names now."""
        res = self._select(
            f"SELECT p.upload_id, t.uuid, t.comment FROM (SELECT upload_id FROM {self.q(POINTER)} "
            "ORDER BY at DESC, upload_id DESC LIMIT 1) AS p LEFT JOIN (SELECT name, toString(uuid) AS uuid, "
            "comment FROM system.tables WHERE database = {db:String}) AS t "
            "ON t.name = concat('games_v', toString(p.upload_id))", {"db": self.db})
        return tuple(res.rows[0]) if res.rows else None

    def derived(self, name: str) -> frozenset[str]:
        """What a finish adds that table `name` has: the columns of its sort ranks (physical.RANKED) and
        packed fields (physical.PACKED), and physical.ELEMENTS if its table of element bitmaps is there."""
        return frozenset(r for (r,) in self._select(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} AND "
            "name IN {derived:Array(String)} UNION ALL SELECT {mark:String} FROM system.tables "
            "WHERE database = {db:String} AND name = {elements:String} AND comment = {lists:String}",
            {"db": self.db, "t": name, "derived": list(physical.DERIVED), "mark": physical.ELEMENTS,
             "elements": physical.elements_table(name), "lists": physical.ELEMENTS_COMMENT}).rows)

    def pointer_history(self) -> tuple[int, list[tuple[int, int]]]:
        """The server's time now (ns) and the pointer's rows (at, upload id) in order."""
        res = self._select(f"SELECT toUnixTimestamp64Nano(now64(9)), (SELECT groupArray((at, upload_id)) FROM "
                           f"(SELECT at, upload_id FROM {self.q(POINTER)} ORDER BY at, upload_id))")
        now, history = res.rows[0]
        return now, [(at, upload_id) for at, upload_id in history]

    def point_to(self, upload_id: int) -> None:
        """The switch: one row, timed by the server's clock and never before the previous switch (a
        clock that stepped back cannot reorder the history)."""
        p = self.q(POINTER)
        self._insert(f"INSERT INTO {p} SELECT {_MONOTONIC_NS.format(col='at', table=p, where='')}, {{id:UInt64}}",
                     {"id": upload_id})

    def point_view(self, table: str) -> None:
        """`games`: a view of the active version, for BI tools (the only name granted to the BI user).
        Its columns are the table's but the hidden ones, whose names begin with `_` (`_row`, `_bad`, ranks)."""
        self.t.execute(f"CREATE OR REPLACE VIEW {self.q(LEGACY_ACTIVE)} DEFINER = CURRENT_USER SQL SECURITY "
                       f"DEFINER AS SELECT COLUMNS('^[^_]') FROM {self.q(table)}")

    # --- records -------------------------------------------------------------------------------

    def save_upload(self, upload_id: int, doc: str, writer: int = 0) -> bool:
        """A new version of an upload's record, versioned by the server's clock (never below its last);
        written only if the newest one was not written by a later writer generation than `writer` (the
        record's `writer` field; 0 in records older than the field). False when a later generation's
        record is the newest: this one was fenced off (or, written, is already superseded)."""
        u = self.q(UPLOADS)
        version = _MONOTONIC_NS.format(col="version", table=u, where=" WHERE id = {id:UInt64}")
        newest_writer = f"(SELECT JSONExtractUInt(argMax(doc, version), 'writer') FROM {u} WHERE id = {{id:UInt64}})"
        params = {"id": upload_id, "doc": doc, "writer": writer}
        self._insert(f"INSERT INTO {u} SELECT {{id:UInt64}}, {version}, {{doc:String}} "
                     f"WHERE {newest_writer} <= {{writer:UInt64}}", params)
        return bool(self._select(f"SELECT {newest_writer} <= {{writer:UInt64}}", params).scalar())

    def newest_record_writer(self) -> int:
        """The greatest writer generation any upload record was written by (0 when none says)."""
        return int(self._select(f"SELECT max(JSONExtractUInt(doc, 'writer')) FROM {self.q(UPLOADS)}").scalar())

    def upload_docs(self, upload_id: int | None = None) -> list[str]:
        """The newest record of every upload, newest upload first (or of one)."""
        where = "" if upload_id is None else " WHERE id = {id:UInt64}"
        rows = self._select(f"SELECT doc FROM {self.q(UPLOADS)} FINAL{where} ORDER BY id DESC", {"id": upload_id}).rows
        return [doc for (doc,) in rows]

    def claim(self, name: str, comment: str = "") -> bool:
        """Create the empty table `name`: True if this call created it, False if it already existed."""
        try:
            self.t.execute(f"CREATE TABLE {self.q(name)} (claimed UInt8) ENGINE = Memory COMMENT {_lit(comment)}")
        except EngineError as exc:
            if exc.engine_code == TABLE_ALREADY_EXISTS:
                return False
            raise
        return True

    def claims(self, prefix: str) -> list[tuple[int, str, float]]:
        """(number, comment, age in seconds by the server's clock) of every claim named prefix<number>."""
        rows = self._select("SELECT toUInt64(substring(name, {n:UInt64})), comment, "
                            "dateDiff('second', metadata_modification_time, now()) FROM system.tables "
                            "WHERE database = {db:String} AND startsWith(name, {p:String}) "
                            "AND match(name, '[0-9]+$') ORDER BY 1",
                            {"db": self.db, "p": prefix, "n": len(prefix) + 1}).rows
        return [tuple(row) for row in rows]

    def claim_upload_id(self) -> int:
        """A new upload id no other process (or thread) can also get: the next number after every
        record and claim, claimed by creating `upload_claim_<id>`; if another claimer created it first,
        the next one. A claim is never dropped while a stale count could still name it (see tidy)."""
        while True:
            last = self._select(
                f"SELECT greatest((SELECT max(id) FROM {self.q(UPLOADS)}), (SELECT max(toUInt64(substring(name, "
                "{n:UInt64}))) FROM system.tables WHERE database = {db:String} AND startsWith(name, {p:String})))",
                {"db": self.db, "p": UPLOAD_CLAIM, "n": len(UPLOAD_CLAIM) + 1}).scalar() or 0
            if self.claim(f"{UPLOAD_CLAIM}{last + 1}"):
                return last + 1

    def save_key(self, name: str, doc: str) -> None:
        k = self.q(KEYS)
        version = _MONOTONIC_NS.format(col="version", table=k, where=" WHERE name = {name:String}")
        self._insert(f"INSERT INTO {k} SELECT {{name:String}}, {version}, {{doc:String}}", {"name": name, "doc": doc})

    def key_doc(self, name: str) -> str | None:
        """The record of the key named `name` as stored (the newest write), or None."""
        rows = self._select(f"SELECT doc FROM {self.q(KEYS)} FINAL WHERE name = {{name:String}}", {"name": name}).rows
        return rows[0][0] if rows else None

    def old_tables(self, prefix: str, seconds: int) -> list[str]:
        """Tables named `prefix`… created more than `seconds` ago by the server's clock."""
        return [name for (name,) in self._select(
            "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, {p:String}) "
            "AND dateDiff('second', metadata_modification_time, now()) > {s:UInt32}",
            {"db": self.db, "p": prefix, "s": seconds}).rows]

    def key_docs(self) -> list[str]:
        return [doc for (doc,) in self._select(f"SELECT doc FROM {self.q(KEYS)} FINAL ORDER BY name").rows]

    # --- the writer lease ---------------------------------------------------------------------------

    def heartbeat(self, holder: str, host: str, pid: int) -> None:
        """Say that `holder` is alive, by the server's clock (its first word is its claim)."""
        self._insert(f"INSERT INTO {self.q(LEASE)} SELECT {{h:String}}, {{host:String}}, {{pid:UInt32}}, now64(3)",
                     {"h": holder, "host": host, "pid": pid})

    def release(self, holder: str) -> None:
        self.t.execute(f"DELETE FROM {self.q(LEASE)} WHERE holder = {{h:String}}", {"h": holder})

    def last_heard(self, holder: str) -> tuple[str, int, float] | None:
        """(host, pid, seconds since its last heartbeat, by the server's clock) of `holder`, or None."""
        rows = self._select(f"SELECT any(host), any(pid), dateDiff('millisecond', max(at), now64(3)) / 1000 FROM "
                            f"{self.q(LEASE)} WHERE holder = {{h:String}} HAVING count() > 0", {"h": holder}).rows
        return tuple(rows[0]) if rows else None

    # --- the load ----------------------------------------------------------------------------------

    def load_csv(self, engine, table: str, columns: list[str], exprs: list[str], width: int,
                 chunks: Iterable[bytes], settings: dict) -> None:
        """INSERT INTO table(columns) SELECT exprs FROM the CSV streamed as `chunks`, parsed by the
        database while the bytes arrive.

        The file's `width` fields are read by position as text named c0, c1, ... (its header line is
        skipped: the caller has matched it already), so no header text ever becomes an identifier.
        - chDB in this process: one statement reading a named pipe with file();
        - a ClickHouse server: one statement, `INSERT ... SELECT ... FROM input(...)`, with the bytes as
          its body, so that a balancer in front of several nodes cannot split the load;
        - chDB through clickhouse-connect (chdb://, the test suite's server-mode pass): its backend
          takes an INSERT body only into a table, so the bytes go into a Log table and one more
          statement reads them, both on one connection of this process.
        """
        headers = [f"c{i}" for i in range(width)]
        structure = ", ".join(f"{h} String" for h in headers)
        settings = {**settings, "input_format_with_names_use_header": 0}
        target = f"{self.q(table)} ({', '.join(ident(c) for c in columns)})"
        select = ", ".join(exprs)
        if engine.in_process and engine.settings.load_via != "insert":
            sql = (f"INSERT INTO {target} SELECT {select} "
                   "FROM file({path:String}, 'CSVWithNames', {structure:String})")
            engine.through_pipe(table, chunks, lambda path: self.t.execute(
                sql, {"path": path, "structure": structure}, settings))
            return
        with engine.connection() as conn:
            if not engine.in_process:
                conn.insert_select(self.load_statement(target, select, structure), chunks, "CSVWithNames", settings)
                return
            raw = self.q(f"{table}_csv")
            conn.command(f"CREATE TABLE {raw} ({structure}) ENGINE = Log", None)
            try:
                conn.insert_stream(f"{self.db}.{table}_csv", headers, iter(chunks), "CSVWithNames", settings)
                # The load's own settings (its limits, its blocks) apply to the statement that writes the table.
                conn.command(f"INSERT INTO {target} SELECT {select} FROM {raw}"
                             + settings_clause({**settings, "max_threads": 1}), None)
            finally:
                # SYNC: the copy of the file goes now, not after the engine's drop delay (on a full disk,
                # a failed load's copy kept the disk full for the next upload).
                conn.command(f"DROP TABLE IF EXISTS {raw} SYNC", None)

    @staticmethod
    def load_statement(target: str, select: str, structure: str) -> str:
        """The server-side load as one statement; its body (FORMAT CSVWithNames and the bytes) follows."""
        return f"INSERT INTO {target} SELECT {select} FROM input({_lit(structure)})"

    def load_stats(self, table: str, date_columns: list[schema.Column]) -> list:
        """Rows, rows with a bad field, distinct keys among good rows, and per date column the values
        that are not dates (kept as text)."""
        undated = "".join(f", countIf({ident(c.name)} IS NULL AND {ident(c.raw_name)} != '')" for c in date_columns)
        return self._select(f"SELECT count(), countIf(notEmpty({schema.BAD_COL})), "
                            f"uniqExactIf({ident(schema.KEY)}, empty({schema.BAD_COL})){undated} "
                            f"FROM {self.q(table)}").rows[0]

    def bad_rows(self, table: str, limit: int) -> list:
        """(row, column -> its text, column -> the text's size in bytes): the engine's size, since bytes
        that are not UTF-8 reach Python replaced."""
        bad = schema.BAD_COL
        return self._select(f"SELECT {schema.ROW_COL}, {bad}, mapApply((k, v) -> (k, length(v)), {bad}) "
                            f"FROM {self.q(table)} WHERE notEmpty({bad}) ORDER BY {schema.ROW_COL} "
                            f"LIMIT {int(limit)}").rows

    def drop_bad_rows(self, table: str) -> None:
        self.t.execute(f"DELETE FROM {self.q(table)} WHERE notEmpty({schema.BAD_COL})")

    def first_undated(self, table: str, column: schema.Column) -> list:
        return self._select(f"SELECT {schema.ROW_COL}, {ident(column.raw_name)} FROM {self.q(table)} WHERE "
                            f"{ident(column.name)} IS NULL AND {ident(column.raw_name)} != '' "
                            f"ORDER BY {schema.ROW_COL} LIMIT 1").rows[0]

    def stored_bytes(self, table: str) -> int:
        return self._select("SELECT sum(data_compressed_bytes) FROM system.parts WHERE database = {db:String} "
                            "AND table = {t:String} AND active", {"db": self.db, "t": table}).scalar() or 0


def rank_join(name: str, column: str) -> str:
    """The Join table of ranks that Store.build_rank fills for version table `name`."""
    return f"{name}{physical.rank_column(column)}"


def _lit(text: str) -> str:
    """A string literal for the few places ClickHouse takes no parameter (COMMENT): code's own text only."""
    if not re.fullmatch(r"[A-Za-z0-9_:., -]*", text):
        raise ValueError(f"not a literal we write: {text!r}")
    return f"'{text}'"


def _after(name: str) -> str:
    """The column a stored column follows in today's layout (so a migrated table reads like a new one)."""
    order = [c.name for c in schema.STORED_COLUMNS]
    return order[order.index(name) - 1]
