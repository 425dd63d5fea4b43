"""A gzip-compressed CSV (`games.csv.gz`, from a link, a form or the CLI): unpacked as it streams,
a bounded piece at a time (never whole in memory), and capped by the size it unpacks to as well as by
the bytes received, so that a small file that unpacks to gigabytes is refused as it grows."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

from ..errors import GameLensError

MAGIC = b"\x1f\x8b"  # every gzip member starts so (RFC 1952)
_GZIP = 16 + zlib.MAX_WBITS  # zlib's window bits for the gzip format
# Each call unpacks at most this much: a 64 KB chunk of a crafted file may unpack to ~64 MB at once.
PIECE = 1 << 20


def is_gzip(head: bytes) -> bool:
    return head.startswith(MAGIC)


class Gunzip:
    """Unpacks the chunks of one gzip file (several members one after another are one file, as
    `gzip -d` reads them); `fail(code, message, status)` makes the error that ends the upload."""

    def __init__(self, cap: int, fail: Callable[[str, str, int], GameLensError]):
        self.cap, self._fail = cap, fail
        self.size = 0  # bytes unpacked so far
        self._member = zlib.decompressobj(_GZIP)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._member.eof:  # a member ended and more bytes follow: the next member
                data = self._next_member(data)
                if not data:
                    return
            try:
                piece = self._member.decompress(data, PIECE)
            except zlib.error as exc:
                raise self._fail("bad_gzip", f"The file starts as gzip but does not unpack ({exc}); send the CSV "
                                 "itself, or a gzip file made by gzip.", 422) from None
            data = self._member.unused_data if self._member.eof else self._member.unconsumed_tail
            self.size += len(piece)
            if self.size > self.cap:
                raise self._fail("too_large", f"The file unpacks to more than the limit of {self.cap} bytes "
                                 "(GAMELENS_MAX_UPLOAD_MB).", 413)
            if piece:
                yield piece

    def _next_member(self, data: bytes) -> bytes:
        """What follows a member: NULs are padding (as gzip and Python's gzip module skip them), else
        another member must start."""
        data = data.lstrip(b"\0")
        if not MAGIC.startswith(data[:len(MAGIC)]):  # (the magic's first byte alone fails as a cut member)
            raise self._fail("bad_gzip", "The gzip file is followed by bytes that are not gzip; send the file as "
                             "gzip wrote it.", 422)
        if data:
            self._member = zlib.decompressobj(_GZIP)
        return data

    @property
    def ended(self) -> bool:
        """The bytes so far end where a member does."""
        return self._member.eof

    def finish(self) -> None:
        """The last chunk came: the file must end where a member does."""
        if not self.ended:
            raise self._fail("truncated", "The gzip file ends before its data does: it was cut short.", 422)
