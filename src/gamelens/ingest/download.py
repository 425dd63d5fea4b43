"""A link -> a temporary file: http(s) only, address checks at every hop, caps, timeouts, sha256.

The link is never handed to ClickHouse (its url() would bypass these checks). Redirects are
followed here, one hop at a time, so each new host is checked before we connect to it.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from ..errors import GameLensError
from ..settings import Settings

MAX_REDIRECTS = 5
CHUNK = 1 << 20
# Cloud metadata services that are not already private/link-local ranges.
_METADATA = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}


@dataclass
class Downloaded:
    path: str
    size: int
    sha256: str
    final_url: str
    content_type: str


class _Checks:
    """Per-chunk checks shared by downloads and local files: HTML sniffing, the cap, UTF-8."""

    def __init__(self, cap: int, content_type: str):
        self.cap, self.content_type, self.size = cap, content_type, 0
        self.digest = hashlib.sha256()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes) -> None:
        if self.size == 0 and chunk and _looks_like_html(chunk, self.content_type):
            raise fail("html_not_csv", "The link returned a web page (HTML), not a CSV file: use a direct "
                       "download link (e.g. a sheet published as CSV), not a sharing or login page.")
        try:
            self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise fail("not_utf8", f"The file is not UTF-8 text (byte {self.size + exc.start}); "
                       "save it as CSV UTF-8.") from None
        self.size += len(chunk)
        if self.size > self.cap:
            raise fail("too_large", f"The file is larger than the limit of {self.cap} bytes "
                       "(GAMELENS_MAX_UPLOAD_MB).", 413)
        self.digest.update(chunk)

    def finish(self) -> None:
        if self.size == 0:
            raise fail("empty_file", "The file is empty.")
        try:
            self._utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            raise fail("not_utf8", "The file is not UTF-8 text (it ends inside a character).") from None


def fail(code: str, message: str, status: int = 422) -> GameLensError:
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
        raise fail("unresolvable_host", f"The host {parts.hostname!r} could not be resolved.") from None
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


def download(url: str, settings: Settings, progress: Callable[[int, int | None], None] | None = None,
             directory: str | None = None) -> Downloaded:
    cap = settings.max_upload_mb * 1024 * 1024
    deadline = time.monotonic() + settings.download_timeout_s
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    headers = {"Accept": "text/csv, text/plain;q=0.9, */*;q=0.5", "User-Agent": "GameLens/0.1"}
    fd, path = tempfile.mkstemp(prefix="gamelens-", suffix=".csv", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out, httpx.Client(timeout=timeout, follow_redirects=False) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                check_url(url, settings.allow_private_urls)
                with client.stream("GET", url, headers=headers) as resp:
                    if resp.is_redirect:
                        url = urljoin(url, resp.headers.get("location", ""))
                        continue
                    return _save(resp, url, out, path, cap, deadline, progress)
            raise fail("too_many_redirects", f"The link redirected more than {MAX_REDIRECTS} times.")
    except GameLensError:
        os.unlink(path)
        raise
    except httpx.TimeoutException:
        os.unlink(path)
        raise fail("download_timeout", "The host stopped sending data (timeout).", 504) from None
    except httpx.RemoteProtocolError:
        os.unlink(path)
        raise fail("truncated", "The host closed the connection before sending the whole file.", 502) from None
    except (httpx.HTTPError, OSError) as exc:
        os.unlink(path)
        raise fail("download_failed", f"The download failed: {type(exc).__name__}: {exc}", 502) from None


def _save(resp: httpx.Response, url: str, out, path: str, cap: int, deadline: float, progress) -> Downloaded:
    if resp.status_code != 200:
        raise fail("http_status", f"The link answered HTTP {resp.status_code}, not 200.", 502)
    ctype = resp.headers.get("content-type", "")
    expected = int(resp.headers["content-length"]) if "content-encoding" not in resp.headers and \
        resp.headers.get("content-length", "").isdigit() else None
    if expected is not None and expected > cap:
        raise fail("too_large", f"The file is {expected} bytes; the limit is {cap} bytes "
                   "(GAMELENS_MAX_UPLOAD_MB).", 413)
    checks = _Checks(cap, ctype)
    for chunk in resp.iter_bytes(CHUNK):  # decoded: the cap applies to what we store (gzip too)
        checks.feed(chunk)
        if time.monotonic() > deadline:
            raise fail("download_timeout", "The download took longer than GAMELENS_DOWNLOAD_TIMEOUT_S.", 504)
        out.write(chunk)
        if progress:
            progress(checks.size, expected)
    if expected is not None and checks.size != expected:
        raise fail("truncated", f"The transfer ended after {checks.size} of {expected} bytes.", 502)
    checks.finish()
    out.flush()
    return Downloaded(path, checks.size, checks.digest.hexdigest(), url, ctype)


def copy_file(source: str, settings: Settings, progress=None, directory: str | None = None) -> Downloaded:
    """The CLI's `gamelens load PATH`: the same caps and checksum as a download, from a local file."""
    cap = settings.max_upload_mb * 1024 * 1024
    fd, path = tempfile.mkstemp(prefix="gamelens-", suffix=".csv", dir=directory)
    checks = _Checks(cap, "")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            total = os.fstat(src.fileno()).st_size
            while chunk := src.read(CHUNK):
                checks.feed(chunk)
                out.write(chunk)
                if progress:
                    progress(checks.size, total)
        checks.finish()
    except GameLensError:
        os.unlink(path)
        raise
    except OSError as exc:
        os.unlink(path)
        raise fail("unreadable_file", f"The file cannot be read: {exc.strerror}", 400) from None
    return Downloaded(path, checks.size, checks.digest.hexdigest(), source, "")
