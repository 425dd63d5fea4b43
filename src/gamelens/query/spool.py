"""Exports' spool files, bounded so that no caller can fill the data disk or hold it.

An export is computed whole into a temporary file under data_dir/tmp before its first byte is sent
(see Engine.spool: a slow client never holds a connection or a running query); a Parquet export on the
embedded engine is the file the engine wrote under data_dir/outgoing, adopted as it is. Here:
- at most GAMELENS_EXPORTS_AT_ONCE exports hold a spool at once, GAMELENS_EXPORTS_PER_KEY per key;
- their files together hold at most GAMELENS_EXPORT_SPOOL_MB, and the data disk keeps
  GAMELENS_MIN_FREE_DISK_MB free: an export that would pass either stops where it is;
- past a cap of exports the answer is 503 `busy` with Retry-After; past the free disk, 507
  `insufficient_storage` (with Retry-After: other exports end), the status of an upload on a full disk;
- a spool is closed, which frees its disk (the file is unlinked from the start), as soon as its
  response ends: read to the end, cut by the client, or failed (api/games.py's SpooledResponse closes
  it in a `finally`), never when the garbage collector gets to it.
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import GameLensError
from ..settings import Settings

SEND_CHUNK = 1 << 20
RETRY_AFTER_S = 5


def busy(what: str) -> GameLensError:
    return GameLensError("busy", f"{what}; try again shortly.", 503, headers={"Retry-After": str(RETRY_AFTER_S)})


def no_room(what: str) -> GameLensError:
    return GameLensError("insufficient_storage", f"{what}; try again shortly.", 507,
                         headers={"Retry-After": str(RETRY_AFTER_S)})


class Spools:
    """Admission of exports and the disk their spool files take."""

    def __init__(self, directory: Path, settings: Settings):
        self.directory = directory
        self.at_once, self.per_key = settings.exports_at_once, settings.exports_per_key
        self.max_bytes = settings.export_spool_mb << 20
        self.min_free = settings.min_free_disk_mb << 20
        self._lock = threading.Lock()
        self._open: collections.Counter[str] = collections.Counter()  # caller -> spools held
        self._bytes = 0

    @property
    def held(self) -> int:
        return sum(self._open.values())

    def admit(self, caller: str) -> Spool:
        """A spool for one export by `caller`, or 503 busy past a cap of exports."""
        with self._lock:
            if self.held >= self.at_once:
                raise busy(f"{self.at_once} exports are under way (GAMELENS_EXPORTS_AT_ONCE)")
            if self._open[caller] >= self.per_key:
                raise busy(f"This key has {self.per_key} exports under way (GAMELENS_EXPORTS_PER_KEY)")
            self._open[caller] += 1
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # Unlinked at once: nothing is left after a crash, and closing it frees the disk.
            file = tempfile.TemporaryFile(dir=self.directory)  # noqa: SIM115 (closed by Spool.close)
        except BaseException:
            self._release(caller, 0)
            raise
        return Spool(self, caller, file)

    def _take(self, n: int) -> None:
        with self._lock:
            if self._bytes + n > self.max_bytes:
                raise busy("Exports waiting to be sent fill their disk allowance (GAMELENS_EXPORT_SPOOL_MB)")
            if shutil.disk_usage(self.directory).free - n < self.min_free:
                raise no_room("The data disk is nearly full (GAMELENS_MIN_FREE_DISK_MB)")
            self._bytes += n

    def _release(self, caller: str, n: int) -> None:
        with self._lock:
            self._bytes -= n
            self._open[caller] -= 1
            if self._open[caller] <= 0:
                del self._open[caller]


class Spool:
    """One export's file: written by the engine, then sent, then closed exactly once."""

    def __init__(self, spools: Spools, caller: str, file):
        self._spools, self._caller, self._file = spools, caller, file
        self.size = 0
        self._closed = False

    def write(self, chunk: bytes) -> None:
        self._spools._take(len(chunk))
        self.size += len(chunk)
        self._file.write(chunk)

    def adopt(self, path: str) -> None:
        """The engine wrote the whole export into `path` itself: that file becomes this spool's (counted
        from now on; refused past a cap, as a write would be). The caller removes the name."""
        file = open(path, "rb")  # noqa: SIM115 (closed by close(), like the temporary file it replaces)
        size = os.fstat(file.fileno()).st_size
        try:
            self._spools._take(size)
        except BaseException:
            file.close()
            raise
        self._file.close()
        self._file = file
        self.size += size

    def blocks(self) -> Iterator[bytes]:
        """The whole file from its start, block by block."""
        self._file.seek(0)
        while block := self._file.read(SEND_CHUNK):
            yield block

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._file.close()
        self._spools._release(self._caller, self.size)
