"""A link -> a checked stream of bytes: http(s) only, address checks at every hop, caps, timeouts,
sha256. The bytes are streamed straight into the database's CSV reader (see engine.load_csv); no
copy of the file is kept, in memory or on disk.

The link is never handed to ClickHouse (its url() would bypass these checks). Redirects are
followed here, one hop at a time, so each new host is checked before we connect to it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

import httpx

from ..errors import GameLensError
from ..settings import Settings

MAX_REDIRECTS = 5
FILE_CHUNK = 1 << 20
# Cloud metadata services that are not already private/link-local ranges.
_METADATA = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}

Progress = Callable[[int, int | None], None]


def fail(code: str, message: str, status: int = 422) -> GameLensError:
    """A link that cannot be loaded is the request's problem, whoever failed: 4xx, never 5xx."""
    return GameLensError(code, message, status, param="url")


def check_url(url: str, allow_private: bool) -> None:
    """Refuse non-http(s) links and hosts that resolve to internal addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise fail("bad_scheme", f"Only http and https links can be loaded, not {parts.scheme or 'no'} scheme.",
                   400)
    if not parts.hostname:
        raise fail("bad_url", "The link has no host name.", 400)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise fail("unresolvable_host", f"The host {parts.hostname!r} could not be resolved.", 400) from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or ip in _METADATA):
            raise fail("private_address",
                       f"The host {parts.hostname!r} resolves to an internal address ({ip}); only public "
                       "hosts can be loaded (set GAMELENS_ALLOW_PRIVATE_URLS=true for local use).", 400)


def _looks_like_html(first: bytes, content_type: str) -> bool:
    head = first.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].lower()
    return "text/html" in content_type or head.startswith((b"<!doctype", b"<html", b"<head", b"<?xml"))


class Stream:
    """The bytes of one source, checked as they pass: HTML sniffing, the size cap, the deadline,
    the announced length; sha256 and size are known once it has been read to the end."""

    def __init__(self, chunks: Iterable[bytes], settings: Settings, *, expected: int | None = None,
                 content_type: str = "", progress: Progress | None = None):
        self._chunks, self.expected = chunks, expected
        self.content_type, self._progress = content_type, progress
        self.cap = settings.max_upload_mb * 1024 * 1024
        self.deadline = time.monotonic() + settings.download_timeout_s
        self.size, self._digest = 0, hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                self._feed(chunk)
                yield chunk
        except httpx.TimeoutException:
            raise fail("download_timeout", "The host stopped sending data (timeout).") from None
        except httpx.RemoteProtocolError:
            raise fail("truncated", "The host closed the connection before sending the whole file.") from None
        except httpx.HTTPError as exc:
            raise fail("download_failed", f"The download failed: {type(exc).__name__}: {exc}") from None
        if self.expected is not None and self.size != self.expected:
            raise fail("truncated", f"The transfer ended after {self.size} of {self.expected} bytes.")
        if self.size == 0:
            raise fail("empty_file", "The link returned an empty file.")

    def _feed(self, chunk: bytes) -> None:
        if self.size == 0 and chunk and _looks_like_html(chunk, self.content_type):
            raise fail("html_not_csv", "The link returned a web page (HTML), not a CSV file: use a direct "
                       "download link (e.g. a sheet published as CSV), not a sharing or login page.")
        self.size += len(chunk)
        if self.size > self.cap:
            raise fail("too_large", f"The file is larger than the limit of {self.cap} bytes "
                       "(GAMELENS_MAX_UPLOAD_MB).", 413)
        if time.monotonic() > self.deadline:
            raise fail("download_timeout", "The download took longer than GAMELENS_DOWNLOAD_TIMEOUT_S.")
        self._digest.update(chunk)
        if self._progress:
            self._progress(self.size, self.expected)


@contextmanager
def open_url(url: str, settings: Settings, progress: Progress | None = None) -> Iterator[Stream]:
    """Follow redirects (each hop checked) to a 200 answer and stream its body."""
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    headers = {"Accept": "text/csv, text/plain;q=0.9, */*;q=0.5", "User-Agent": "GameLens/0.1"}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                check_url(url, settings.allow_private_urls)
                with client.stream("GET", url, headers=headers) as resp:
                    if resp.is_redirect:
                        url = urljoin(url, resp.headers.get("location", ""))
                        continue
                    yield _response_stream(resp, settings, progress)
                    return
            raise fail("too_many_redirects", f"The link redirected more than {MAX_REDIRECTS} times.")
    except httpx.TimeoutException:
        raise fail("download_timeout", "The host did not answer in time.") from None
    except httpx.HTTPError as exc:
        raise fail("download_failed", f"The download failed: {type(exc).__name__}: {exc}") from None


def _response_stream(resp: httpx.Response, settings: Settings, progress) -> Stream:
    if resp.status_code != 200:
        raise fail("http_status", f"The link answered HTTP {resp.status_code}, not 200.")
    length = resp.headers.get("content-length", "")
    # With a Content-Encoding the length counts compressed bytes; the cap counts what we store.
    expected = int(length) if length.isdigit() and "content-encoding" not in resp.headers else None
    cap = settings.max_upload_mb * 1024 * 1024
    if expected is not None and expected > cap:
        raise fail("too_large", f"The file is {expected} bytes; the limit is {cap} bytes "
                   "(GAMELENS_MAX_UPLOAD_MB).", 413)
    return Stream(resp.iter_bytes(), settings, expected=expected,
                  content_type=resp.headers.get("content-type", ""), progress=progress)


@contextmanager
def open_file(path: str, settings: Settings, progress: Progress | None = None) -> Iterator[Stream]:
    """The CLI's `gamelens load PATH`: the same checks as a download, from a local file."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, after the stream is consumed)
    except OSError as exc:
        raise fail("unreadable_file", f"The file cannot be read: {exc.strerror}", 400) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        yield Stream(iter(lambda: f.read(FILE_CHUNK), b""), settings, expected=size, progress=progress)
