"""Every GAMELENS_* setting, with its default and a one-line meaning.

The configuration table (docs/configuration.md) is generated from this class (`gamelens settings-doc`).
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GAMELENS_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Where the embedded engine (chDB) keeps its data.")
    clickhouse_url: str | None = Field(
        None,
        description="ClickHouse server URL (http[s]://user:pass@host:8123); unset = embedded chDB. "
        "A chdb:// URL drives the embedded engine through clickhouse-connect.",
    )
    load_via: Literal["auto", "pipe", "insert"] = Field(
        "auto", description="How CSV bytes reach the engine: `pipe` (a named pipe read by file(), same "
        "machine only), `insert` (streamed as an INSERT body, as to a server; needs GAMELENS_CLICKHOUSE_URL); `auto` "
        "picks pipe when it can.")
    database: str = Field("gamelens", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="ClickHouse database.")
    clickhouse_cluster: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_]{1,64}$", description="A ClickHouse cluster name: the database is created on it "
        "as a Replicated database, tables as Replicated*MergeTree, bookkeeping with quorum writes and sequentially "
        "consistent reads. Unset = one node.")
    role: Literal["all", "writer", "reader"] = Field(
        "all", description="`all`: one process does everything. Several processes on one database: one `writer` "
        "(uploads, start-up recovery, pruning, the admin key) and any number of `reader`s (they answer reads and "
        "send writers' requests away with 409 read_only_replica).")
    writer_url: str | None = Field(None, description="Where a reader sends clients for writes (uploads, activate, "
                                   "keys): named in its 409 answers.")
    writer_lease_s: float = Field(15, gt=0, description="A writer says it is alive every third of this; a second "
                                  "writer refuses to start while one was heard from within it.")
    host: str = Field("127.0.0.1", description="Address `gamelens serve` listens on.")
    port: int = Field(8000, description="Port `gamelens serve` listens on.")

    max_upload_mb: int = Field(200, ge=1, description="Largest CSV accepted, counted on bytes received "
                               "(and, for a gzip file, on the bytes it unpacks to).")
    allow_private_urls: bool = Field(
        False, description="Allow links to addresses that are not globally routable (private, loopback, CGNAT...; "
        "local use and tests only)."
    )
    download_proxy: str | None = Field(
        None, description="Proxy for downloads (http://host:port). Unset = direct; proxy variables of the "
        "environment (HTTP_PROXY...) are ignored. With a proxy, the proxy resolves and connects.")
    connect_timeout_s: float = Field(10, description="Download: seconds to connect.")
    read_timeout_s: float = Field(30, description="Download: longest silence between bytes.")
    download_timeout_s: float = Field(900, description="Download: whole transfer, seconds.")
    load_max_memory_mb: int = Field(0, ge=0, description="Memory limit of one load's INSERT (0 = the engine's "
                                    "own limit).")
    keep_versions: int = Field(3, ge=1, description="Dataset versions kept (the active one included). A replaced "
                               "version beyond these is dropped once no read can still be on it (see the next).")
    version_drop_margin_s: float = Field(
        30, ge=0, description="A replaced version is dropped only after the longest read (export and query timeouts "
        "plus two connection waits) and this margin have passed, by the database server's clock.")
    max_rejected_rows: int = Field(
        0, ge=0, description="Rows that may fail to parse before an upload fails (they are then dropped "
        "and listed in the upload record). 0 = any bad row fails the upload.",
    )

    query_timeout_s: float = Field(10, description="Longest a read query may run.")
    query_max_memory_mb: int = Field(2048, description="Memory limit of one read query.")
    query_max_rows: int = Field(1_000_000, description="Most rows a read query may return or group.")
    query_pool_size: int = Field(4, ge=1, description="Read queries run in parallel on this many connections.")
    queue_timeout_s: float = Field(30, gt=0, description="How long a request may wait for a free connection "
                                   "before it gets 503 busy.")
    review_multiple: float = Field(
        30, gt=0, le=1000, description="Estimated copies sold per Steam review (the \"Boxleiter number\") behind "
        "est_owners and est_revenue. Published estimates run from about 20 to 60 (Boxleiter 2014: ~50; Birkett: "
        "20-60; lower since Steam's 2019 review prompt); 30 is a cautious middle.")
    query_condition_cache: bool = Field(True, description="ClickHouse's query condition cache (remembers which "
                                        "granules a filter ruled out). Off: every query runs as the first time.")
    cache_mb: int = Field(64, ge=0, description="Memory for cached answers (per dataset version; a new version "
                          "drops the old one's). 0 turns the cache off.")
    cache_entries: int = Field(20_000, ge=0, description="Most answers the cache keeps (besides GAMELENS_CACHE_MB).")
    export_max_rows: int = Field(1_000_000, ge=1, description="Most rows one export streams.")
    exports_at_once: int = Field(4, ge=1, description="Exports being computed or sent at once, in all; past it, "
                                 "503 busy.")
    exports_per_key: int = Field(2, ge=1, description="Exports being computed or sent at once by one key.")
    export_spool_mb: int = Field(2048, ge=1, description="Disk that exports waiting to be sent may take, in all "
                                 "(each is computed whole before it is sent); past it, 503 busy.")
    min_free_disk_mb: int = Field(1024, ge=0, description="Free space that exports never take from the data disk "
                                  "(past it: 507).")
    export_send_timeout_s: float = Field(60, gt=0, description="A client that takes no block of an export for this "
                                         "long is cut off (its export slot and spool disk are freed).")
    export_timeout_s: float = Field(300, gt=0, description="Longest the database may take to compute one export "
                                    "(the client's download time does not count).")

    auth: Literal["on", "off"] = Field("on", description="`off` disables API keys (local experiments only).")
    admin_key: SecretStr | None = Field(
        None, description="An admin key accepted besides stored keys (e.g. from a secret store). If unset "
        "and no key exists, the first start creates an admin key and prints it once in the log.")
    rate_per_minute: int = Field(600, ge=1, description="Requests per minute per key (or per address "
                                 "for unauthenticated calls); bursts up to a fifth of it.")
    uploads_per_hour: int = Field(10, ge=1, description="Uploads per hour per key.")
    max_query_string: int = Field(8192, ge=256, description="Longest query string accepted (bytes).")
    max_body_kb: int = Field(64, ge=1, description="Largest request body accepted (KiB).")
    body_timeout_s: float = Field(60, gt=0, description="Longest silence while a request body arrives (an upload's "
                                  "file): past it, 408 and the partial file is removed.")
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS; empty = CORS off.")

    log_format: Literal["json", "text"] = Field("json", description="Log lines as JSON objects, or plain text.")
    log_level: str = Field("INFO", description="Logging level.")
    shutdown_grace_s: float = Field(20, ge=0, description="On shutdown (from the stop signal), how long a running "
                                    "upload may take to finish before it is marked interrupted (it then stops at its "
                                    "next block; the statement it has in flight is cancelled, and the next start "
                                    "completes what it cut). New uploads are refused and queued ones do not start; "
                                    "a request waiting for one (wait=true) is answered by the grace's end; a request "
                                    "still running 5 s after it has its statement cancelled.")


    @property
    def query_limit_s(self) -> int:
        """The engine's max_execution_time for a read (whole seconds, at least 1)."""
        return max(1, int(self.query_timeout_s))

    @property
    def export_limit_s(self) -> int:
        """The engine's max_execution_time for an export's rows (whole seconds, at least 1)."""
        return max(1, int(self.export_timeout_s))

    @property
    def longest_read_s(self) -> float:
        """The longest a request may read the version it resolved: an export waits twice for a
        connection, counts, then computes its rows. A statement that could not end within it from the
        moment the pointer was read is refused before it starts (query/run.py)."""
        return 2 * self.queue_timeout_s + self.query_limit_s + self.export_limit_s

    @property
    def version_grace_s(self) -> float:
        """How long a replaced version stays before it may be dropped: the longest read, plus the margin."""
        return self.longest_read_s + self.version_drop_margin_s

    @field_validator("admin_key", "clickhouse_url", "download_proxy", "clickhouse_cluster", "writer_url",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        # compose and shells pass VAR="" for "not set": an empty secret must never become a key.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _insert_needs_a_url(self):
        # Only clickhouse-connect sends an INSERT body; the embedded driver failed every upload so.
        if self.load_via == "insert" and self.clickhouse_url is None:
            raise ValueError("GAMELENS_LOAD_VIA=insert streams the CSV as an INSERT body, which needs "
                             "GAMELENS_CLICKHOUSE_URL (a server, or chdb://<data dir> for the embedded engine); "
                             "without it, use auto or pipe")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_table() -> str:
    """The configuration table of docs/configuration.md, from the declarations above."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, f in Settings.model_fields.items():
        default = {None: "unset", "": "empty"}.get(f.default, f.default)
        lines.append(f"| `GAMELENS_{name.upper()}` | `{default}` | {f.description} |")
    return "\n".join(lines)
