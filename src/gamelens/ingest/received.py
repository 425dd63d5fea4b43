"""A CSV sent in the request body (multipart/form-data, or the CSV itself as `text/csv`) -> a file in the
data directory, streamed to disk as it arrives (never held in memory) and capped like a download. The
upload worker then loads that file exactly as it loads a link, and removes it.
"""

from __future__ import annotations

import contextlib
import errno
import re
import uuid
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from ..errors import GameLensError, invalid, unloadable

# The bodies that carry a file: a form, or the CSV itself (api/hardening.Limits lets them be as large as one).
CSV_TYPES = ("text/csv", "application/csv")
FILE_TYPES = ("multipart/form-data", *CSV_TYPES)
NAME_CHARS = 255  # of a sent file's name
FIELD_LIMIT = 1024  # a form field other than the file (max_rejected_rows) is short


def media_type(content_type: str) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    return content_type.split(";", 1)[0].strip().lower()


@dataclass
class Received:
    path: Path
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


class _Form:
    """python-multipart callbacks: the part named `file` goes to `path`, other parts to `fields`."""

    def __init__(self, path: Path, cap: int):
        self.path, self.cap = path, cap
        self.out = None
        self.size = 0
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._header, self._value, self._headers = b"", b"", {}
        self._name: str | None = None
        self._text = b""

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end,
                "on_header_field": self._header_field, "on_header_value": self._header_value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done}

    def _begin(self):
        self._headers, self._name, self._text = {}, None, b""

    def _header_field(self, data, start, end):
        self._header += data[start:end]

    def _header_value(self, data, start, end):
        self._value += data[start:end]

    def _header_end(self):
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_done(self):
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name == "file":
            if self.out is not None:
                raise invalid("file", None, "Send one file per upload.")
            self.open_file(options.get(b"filename", b"upload.csv"))

    def open_file(self, filename: bytes) -> None:
        # Only the name (after a / or a Windows \\), printable, and a file system's longest (it is shown
        # in the upload's record).
        name = re.split(r"[\\/]", filename.decode("utf-8", "replace"))[-1]
        self.filename = "".join(c for c in name if c.isprintable())[:NAME_CHARS] or "upload.csv"
        self.out = open(self.path, "wb")  # noqa: SIM115 (closed by receive_file or receive_csv, or _discard)

    def write_file(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.cap:
            raise unloadable("too_large", f"The file is larger than the limit of {self.cap} bytes "
                             "(GAMELENS_MAX_UPLOAD_MB).", 413, param="file")
        self.out.write(data)

    def _data(self, data, start, end):
        if self._name == "file":
            self.write_file(data[start:end])
        else:
            self._text += data[start:end]
            if len(self._text) > FIELD_LIMIT:
                raise invalid(self._name or "form", None, f"The form field {self._name!r} is at most 1 KiB (the CSV "
                              "itself goes in a field named `file`).")

    def _end(self):
        if self._name and self._name != "file":
            text = self._text.decode("utf-8", "replace")
            if self._name in self.fields:  # as a repeated query parameter is: the last one silently won
                raise invalid(self._name, [self.fields[self._name], text], f"{self._name} may be given only once.")
            self.fields[self._name] = text


async def receive_file(request, directory: Path, cap: int) -> Received:
    """Stream the multipart body's `file` part into a new file under `directory`. A stop that begins
    while it arrives ends it with a 503 (api/hardening.Limits), and the file is removed."""
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise invalid("content-type", request.headers.get("content-type"), "A multipart body needs its boundary.")
    form = _Form(_new_path(directory), cap)
    parser = MultipartParser(boundary, form.callbacks())
    async with _kept_or_discarded(form, "multipart/form-data"):
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END:  # the closing boundary is the only proof the file came whole
            raise invalid("file", None, "The multipart body ends before its closing boundary: the file may be cut "
                          "short, and nothing was stored.")
        if form.out is not None:
            form.out.close()  # writes what is buffered: a full disk fails here too
    if form.out is None:
        raise invalid("file", None, "Send the CSV as the form field named 'file' (multipart/form-data).",
                      allowed=["file"])
    return Received(form.path, form.filename or "upload.csv", form.fields)


async def receive_csv(request, directory: Path, cap: int) -> Received:
    """Stream a body that is the CSV itself (Content-Type: text/csv) into a new file under `directory`;
    its name from a Content-Disposition header's filename, if one came."""
    form = _Form(_new_path(directory), cap)
    async with _kept_or_discarded(form, "text/csv"):
        form.open_file(_disposition_name(request.headers.get("content-disposition", "")).encode())
        async for chunk in request.stream():
            form.write_file(chunk)
        form.out.close()
    return Received(form.path, form.filename, {})


def _disposition_name(header: str) -> str:
    """The filename of a Content-Disposition header, `filename*=UTF-8''...` (RFC 6266) too; "" if none."""
    message = Message()
    message["content-disposition"] = _utf8(header)
    return message.get_filename() or ""


def _utf8(header: str) -> str:
    """A header's text as its bytes meant it: HTTP hands headers over as Latin-1, clients send UTF-8."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header


def _new_path(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"upload-{uuid.uuid4().hex}.csv"


@contextlib.asynccontextmanager
async def _kept_or_discarded(form: _Form, kind: str):
    """The part received is removed when receiving it fails; what failed becomes its answer."""
    try:
        yield
    except (GameLensError, ClientDisconnect):  # its own answer; the client left
        _discard(form)
        raise
    except OSError as exc:  # writing the file failed: this server's doing, not the body's
        _discard(form)
        if exc.errno == errno.ENOSPC:
            raise GameLensError("insufficient_storage", "The server has no room left on its disk for this file; "
                                "nothing was stored. Try again once it has.", 507) from None
        raise
    except Exception as exc:  # the body is not what its Content-Type says (a multipart parser's error)
        _discard(form)
        raise invalid("file", None, f"The request body is not valid {kind} ({type(exc).__name__}).") from None


def _discard(form: _Form) -> None:
    """Remove the part received. Closing flushes its buffer, which fails again on a full disk: the
    file goes all the same."""
    if form.out is not None:
        with contextlib.suppress(OSError):
            form.out.close()
    form.path.unlink(missing_ok=True)
