"""A link -> a checked stream of bytes: http(s) only, public addresses only, caps, timeouts, sha256.
The bytes are streamed straight into the database's CSV reader (see engine.load_csv); no copy of
the file is kept, in memory or on disk.

The link is never handed to ClickHouse (its url() would bypass these checks). Redirects are
followed here, one hop at a time. Every connection, at every hop, goes to an address that the same
lookup found and checked (_GuardedBackend): a name cannot answer one address to the check and
another to the connection (DNS rebinding).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from ..errors import GameLensError, unloadable
from ..settings import Settings
from .unpack import Gunzip, is_gzip

MAX_REDIRECTS = 5
FILE_CHUNK = 1 << 20
# Cloud metadata services (both are already outside the global ranges; named here for the reader).
_METADATA = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
# IETF protocol assignments (RFC 6890): Python 3.11 counts 192.0.0.8 and others there as global.
_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")
# IPv6: only global unicast (2000::/3) is public. Python 3.11's is_global lets through IPv4-compatible
# (::a.b.c.d), SIIT (::ffff:0:a.b.c.d) and site-local (fec0::/10) forms, hence this allow-list.
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
# NAT64 (RFC 6052): the last 32 bits are an IPv4 address the gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Inside 2000::/3 but never reachable: the 2024 documentation range (RFC 9637), unknown to Python 3.11.
# (Local-use NAT64, 64:ff9b:1::/48, lies outside 2000::/3: refused whatever IPv4 address it embeds.)
_DOCUMENTATION_V6 = ipaddress.ip_network("3fff::/20")

# A link written without its scheme but with a port: `host:8080/...`.
_HOST_PORT = re.compile(r"[^:/?#]+:[0-9]+(/|$)")
Progress = Callable[[int, int | None], None]
# Every error about a link names the `url` parameter.
fail = functools.partial(unloadable, param="url")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address really reaches, when it embeds one (mapped, 6to4, Teredo, NAT64)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not ip.is_multicast and ip not in _METADATA and ip not in _PROTOCOL_ASSIGNMENTS


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only globally routable unicast addresses: not private, loopback, link-local, CGNAT (100.64/10),
    benchmarking, documentation, reserved, multicast or a metadata service. An IPv6 address that embeds
    an IPv4 one is judged by the IPv4 address; any other must be global unicast (2000::/3)."""
    if ip.version == 4:
        return _public_v4(ip)
    embedded = _embedded_v4(ip)
    if embedded is not None:
        return _public_v4(embedded)
    return ip in _GLOBAL_UNICAST and ip not in _DOCUMENTATION_V6 and ip.is_global and ip not in _METADATA


def resolve(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses of `host`, resolved once; refused unless every one is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise fail("unresolvable_host", f"The host {host!r} could not be resolved.", 400) from None
    addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address)):
                raise fail("private_address",
                           f"The host {host!r} resolves to an address that is not public ({address}); only "
                           "public hosts can be loaded (set GAMELENS_ALLOW_PRIVATE_URLS=true for local use).", 400)
    return addresses


def check_url(url: str, allow_private: bool) -> None:
    """At submit: refuse non-http(s) links and hosts that do not resolve to public addresses, so the
    client hears at once. (The download itself connects only to addresses its own lookup checked:
    see _GuardedBackend.)"""
    host, port = check_link(url)
    if not allow_private:
        resolve(host, port, allow_private)


# A host name as DNS spells it (after IDNA: `bücher.de` is `xn--bcher-kva.de`): labels of letters,
# digits, hyphens (and underscores, which some records use), 1 to 63 long, joined by dots.
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_link(url: str) -> tuple[str, int]:
    """The link's form: a URL httpx accepts (no control characters, a valid host), http(s), a host
    name, a valid port. Returns (host, port)."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        parsed.host  # noqa: B018 (httpx decodes an `xn--` label here, when it sends: `xn--zz` is no host)
    except (httpx.InvalidURL, UnicodeError):  # idna's IDNAError is a UnicodeError
        raise fail("bad_url", "The link is not a valid URL (a control character, or a malformed host or port).",
                   400) from None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        if not parts.scheme or _HOST_PORT.match(url):  # `example.com:8080/g.csv` parses as scheme `example.com`
            raise fail("bad_scheme", "The link has no scheme: start it with https:// (or http://).", 400)
        raise fail("bad_scheme", f"Only http and https links can be loaded, not {parts.scheme}.", 400)
    if not parts.hostname:
        raise fail("bad_url", "The link has no host name.", 400)
    if not (_is_ip(host) or _HOST_NAME.fullmatch(host)):  # `exa mple.com` cannot be looked up: say so now
        raise fail("bad_url", f"The link's host {parts.hostname!r} is not a host name (letters, digits, hyphens "
                   "and dots) nor an IP address.", 400)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise fail("bad_url", "The link's port is not a number from 0 to 65535.", 400) from None
    return parts.hostname, port


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to the addresses it has just resolved and checked: no second DNS lookup between
    the check and the connection (DNS rebinding), at every redirect hop. TLS still verifies the
    certificate against the host name (httpcore passes the URL's host as server_hostname). It also
    ends the download on time: no connect past `deadline`, and `cut` shuts what it connected."""

    def __init__(self, allow_private: bool, deadline: float = math.inf):
        self.allow_private, self.deadline = allow_private, deadline
        # A duplicate of each connection's socket: TLS detaches the socket it wraps, and shutting
        # a duplicate shuts the connection all the same.
        self._opened: list[socket.socket] = []
        self._lock = threading.Lock()
        self.was_cut = False

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = resolve(host, port, self.allow_private)
        for address in addresses[:-1]:
            try:
                return self._connect(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                if self.was_cut:
                    raise
                continue  # the host has other addresses: try the next
        return self._connect(addresses[-1], port, timeout, local_address, socket_options)

    def _connect(self, address, port, timeout, local_address, socket_options) -> httpcore.NetworkStream:
        if self.was_cut:  # a slow lookup or an earlier address's connect outlasted the download's time
            raise httpcore.ConnectError("the download's time is over")
        # A connect in progress cannot be cut: it gets no more than the download's time left.
        left = max(0.05, self.deadline - time.monotonic())
        timeout = left if timeout is None else min(timeout, left)
        return self._kept(super().connect_tcp(address, port, timeout, local_address, socket_options))

    def _kept(self, stream: httpcore.NetworkStream) -> httpcore.NetworkStream:
        with self._lock:
            if not self.was_cut:
                self._opened.append(stream.get_extra_info("socket").dup())
                return stream
        stream.close()  # connected after the cut (a slow lookup or connect): refused
        raise httpcore.ConnectError("the download's time is over")

    def cut(self) -> None:
        """Shut every connection it opened, and refuse new ones (from another thread): a read blocked
        on one returns."""
        with self._lock:
            self.was_cut = True
            for sock in self._opened:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            for sock in self._opened:
                sock.close()
            self._opened.clear()


_PER_THREAD = threading.local()


def _ssl_context() -> ssl.SSLContext:
    """One per thread that downloads (a server's upload worker): loading the CA bundle takes about 20 ms,
    and a client built with httpx's default loaded it twice, on every upload (bench/timeline.py). Not one
    per process: httpcore sets the context's ALPN protocols at every connection, which OpenSSL reads
    without the GIL while another thread's connection is made (helper-76)."""
    context = getattr(_PER_THREAD, "ssl_context", None)
    if context is None:
        context = httpx.create_ssl_context()
        _PER_THREAD.ssl_context = context
    return context


def _client(settings: Settings, backend: _GuardedBackend) -> httpx.Client:
    """Downloads ignore the environment's proxy variables and .netrc (trust_env=False). Without a
    proxy, connections go through `backend`; with GAMELENS_DOWNLOAD_PROXY the proxy connects, so
    open_url checks each hop's host before asking the proxy for it."""
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    transport = httpx.HTTPTransport(proxy=settings.download_proxy, verify=_ssl_context())
    if not settings.download_proxy:
        # httpx has no public hook for the network backend: its pool is rebuilt with ours (pinned
        # httpx; tests/test_link_guard.py fails if this stops taking effect).
        transport._pool = httpcore.ConnectionPool(ssl_context=_ssl_context(), network_backend=backend)
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport,
                        event_hooks={"response": [_check_location]})


def _check_location(response: httpx.Response) -> None:
    """A redirect's Location, checked as a link (400 bad_url) as soon as it arrives: httpx parses it
    itself before open_url sees the response, and would fail it as a protocol error."""
    if response.has_redirect_location:
        check_link(_redirect_target(str(response.request.url), response.headers["location"]))


def _redirect_target(url: str, location: str) -> str:
    """Where a redirect points. A Location urljoin cannot read (`http://[::1`) is a bad link, not a
    server error (it failed the upload as `internal`, helper-62)."""
    try:
        return urljoin(url, location)
    except ValueError:
        raise fail("bad_url", "The link redirected to a location that is not a valid URL.", 400) from None


def _looks_like_html(first: bytes, content_type: str) -> bool:
    head = first.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].lower()
    return "text/html" in content_type or head.startswith((b"<!doctype", b"<html", b"<head", b"<?xml"))


ZIP_MAGIC = b"PK\x03\x04"  # a zip archive's first local file header

_HTML = {"url": "The link returned a web page (HTML), not a CSV file: use a direct download link (e.g. a sheet "
                "published as CSV), not a sharing or login page.",
         "file": "The file is a web page (HTML), not a CSV file: save or export the data as CSV."}


FIRST_BYTES = 16  # what the checks of a file's start read (HTML, zip, gzip)


def _first_bytes_together(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks, the first at least FIRST_BYTES long (a host may send its first byte alone)."""
    head = b""
    for chunk in chunks:
        if head is None:
            yield chunk
            continue
        head += chunk
        if len(head) >= FIRST_BYTES:
            yield head
            head = None
    if head:
        yield head


class Stream:
    """The bytes of one source, checked as they pass: HTML sniffing, the size cap, the deadline,
    the announced length; sha256 and size are known once it has been read to the end."""

    def __init__(self, chunks: Iterable[bytes], settings: Settings, *, expected: int | None = None,
                 content_type: str = "", progress: Progress | None = None, deadline: float | None = None,
                 was_cut: Callable[[], bool] = lambda: False, framed: bool = True, sent_as: str = "url"):
        self._chunks, self.expected = chunks, expected
        self.sent_as = sent_as  # the request's field the bytes came from (url or file), which errors name
        self.content_type, self._progress = content_type, progress
        self.cap = settings.max_upload_mb * 1024 * 1024
        self.deadline = time.monotonic() + settings.download_timeout_s if deadline is None else deadline
        self._was_cut = was_cut  # open_url's watch shut the connection (deadline or stop)
        # The body's end is marked (a length or chunks): a connection shut early is an error, and a
        # clean end is the whole body. Otherwise the connection's end is the body's.
        self.framed = framed
        self.size, self._digest = 0, hashlib.sha256()
        self.complete = False  # read to its end and checked: its sha256 is the whole file's

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        """The file's bytes; a gzip file's unpacked (unpack.py)."""
        gunzip = None
        try:
            for chunk in _first_bytes_together(self._chunks):
                self._feed(chunk)
                if self.size == len(chunk) and is_gzip(chunk):  # the first chunk
                    gunzip = Gunzip(self.cap, self._fail)
                if gunzip is None:
                    yield chunk
                else:
                    yield from gunzip.feed(chunk)
        except httpx.TimeoutException:
            raise fail("download_timeout", "The host stopped sending data (timeout).") from None
        except httpx.HTTPError as exc:
            if self._was_cut():
                raise _cut_short() from None
            if isinstance(exc, httpx.RemoteProtocolError):
                raise fail("truncated", "The host closed the connection before sending the whole file.") from None
            raise download_failed(exc) from None
        if self._was_cut() and not self.framed:  # the cut may be what ended it
            raise _cut_short()
        if self.expected is not None and self.size != self.expected:
            raise self._fail("truncated", f"The transfer ended after {self.size} of {self.expected} bytes.")
        if self.size == 0:
            raise self._fail("empty_file", "The file is empty (0 bytes).")
        if gunzip is not None:
            gunzip.finish()
        self.complete = True

    def _fail(self, code: str, message: str, status: int = 422) -> GameLensError:
        return unloadable(code, message, status, param=self.sent_as)

    def _feed(self, chunk: bytes) -> None:
        if self.size == 0 and chunk and _looks_like_html(chunk, self.content_type):
            raise self._fail("html_not_csv", _HTML[self.sent_as])
        if self.size == 0 and chunk.startswith(ZIP_MAGIC):  # it said "not UTF-8 text"
            raise self._fail("zip_not_csv", "The file is a zip archive, not a CSV file: unzip it and send the CSV "
                             "(or the CSV compressed with gzip).")
        self.size += len(chunk)
        if self.size > self.cap:
            raise self._fail("too_large", f"The file is larger than the limit of {self.cap} bytes "
                             "(GAMELENS_MAX_UPLOAD_MB).", 413)
        if time.monotonic() > self.deadline:
            raise _too_long()
        self._digest.update(chunk)
        if self._progress:
            self._progress(self.size, self.expected)


def _too_long() -> GameLensError:
    return fail("download_timeout", "The download took longer than GAMELENS_DOWNLOAD_TIMEOUT_S.")


def _cut_short() -> GameLensError:
    return fail("download_timeout", "The download was stopped: it took longer than GAMELENS_DOWNLOAD_TIMEOUT_S, "
                "or the server is shutting down.")


WATCH_S = 0.2  # how often a download's watch looks at its deadline and at a stop


def _watch(backend: _GuardedBackend, deadline: float, stop: threading.Event, done: threading.Event) -> None:
    """Shut the download's connections at its deadline or at a stop, whichever comes first."""
    while not done.wait(WATCH_S):
        if stop.is_set() or time.monotonic() >= deadline:
            backend.cut()
            return


# What went wrong, in words, by httpx's exception (its class name is ours, not the client's); the first
# that matches says it, so a subclass comes before its base.
_WHAT_FAILED = (
    (httpx.ProxyError, "the download proxy (GAMELENS_DOWNLOAD_PROXY) answered with an error"),
    (httpx.ConnectError, "could not connect to the host"),
    (httpx.ReadError, "reading from the host failed"),
    (httpx.WriteError, "sending the request to the host failed"),
    (httpx.DecodingError, "the host's compressed answer could not be decoded"),
    (httpx.UnsupportedProtocol, "the link is not http or https"),
    (httpx.RemoteProtocolError, "the host closed the connection without answering"),
    (httpx.ProtocolError, "the host did not follow HTTP"),
)


def _tls_failed(exc: BaseException) -> bool:
    """httpx reports a failed TLS handshake (a certificate it cannot verify) as a ConnectError, also in a
    proxy's tunnel: the SSL error is among its causes."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:  # a chain may loop back on itself
        if isinstance(seen, ssl.SSLError):
            return True
        visited.add(id(seen))
        seen = seen.__cause__ or seen.__context__
    return False


def download_failed(exc: httpx.HTTPError, proxied: bool = False) -> GameLensError:
    """The error of a transfer that failed: what failed, and the system's own words for why. With a
    download proxy, the connection that failed is the proxy's."""
    what = "the transfer failed"
    for kind, words in _WHAT_FAILED:
        if isinstance(exc, kind):
            what = words
            break
    if _tls_failed(exc):
        what = "the TLS connection to the host failed (its certificate, or the handshake)"
    elif proxied and isinstance(exc, httpx.ConnectError):
        what = "could not connect to the download proxy (GAMELENS_DOWNLOAD_PROXY)"
    why = f" ({exc})" if str(exc) else ""
    return fail("download_failed", f"The download failed: {what}{why}.")


@contextmanager
def open_url(url: str, settings: Settings, progress: Progress | None = None,
             stop: threading.Event | None = None) -> Iterator[Stream]:
    """Follow redirects (each hop checked) to a 200 answer and stream its body.

    The read timeout bounds a silence; a host that sends a byte now and then (headers that never
    end, a gzip header that never ends) never trips it, nor a check between blocks: at the deadline,
    or when `stop` is set, a watch shuts the connections (not with GAMELENS_DOWNLOAD_PROXY, whose
    connections httpx makes itself: there the read timeout and the check between blocks hold). A
    connect in progress ends by its own timeout, which the deadline shortens."""
    # gzip only, unpacked here a piece at a time (_response_chunks): httpx would unpack every layer of
    # `Content-Encoding: gzip, gzip` at once, gigabytes from a few KB.
    headers = {"Accept": "text/csv, text/plain;q=0.9, */*;q=0.5", "Accept-Encoding": "gzip",
               "User-Agent": "GameLens/0.1"}
    deadline = time.monotonic() + settings.download_timeout_s
    backend = _GuardedBackend(settings.allow_private_urls, deadline)
    done = threading.Event()
    threading.Thread(target=_watch, args=(backend, deadline, stop or threading.Event(), done),
                     name="download-watch", daemon=True).start()
    try:
        with _client(settings, backend) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                host, port = check_link(url)  # a redirect may point anywhere
                if settings.download_proxy and not settings.allow_private_urls:
                    resolve(host, port, False)  # the proxy connects: check the host here, at every hop
                with client.stream("GET", url, headers=headers) as resp:
                    # A 3xx with no Location is an answer, not a redirect: it was asked again, to
                    # too_many_redirects (helper-61); it is http_status.
                    if resp.has_redirect_location:
                        url = _redirect_target(url, resp.headers["location"])
                        continue
                    yield _response_stream(resp, settings, progress, backend, deadline)
                    return
            raise fail("too_many_redirects", f"The link redirected more than {MAX_REDIRECTS} times.")
    except httpx.TimeoutException:
        raise fail("download_timeout", "The host did not answer in time.") from None
    except httpx.HTTPError as exc:
        if backend.was_cut:
            raise _cut_short() from None
        raise download_failed(exc, bool(settings.download_proxy)) from None
    finally:
        done.set()
        backend.close()


def _response_stream(resp: httpx.Response, settings: Settings, progress, backend: _GuardedBackend,
                     deadline: float) -> Stream:
    if resp.status_code != 200:
        raise fail("http_status", f"The link answered HTTP {resp.status_code}, not 200.")
    length = resp.headers.get("content-length", "")
    # With a Content-Encoding the length counts compressed bytes; the cap counts what we store.
    expected = int(length) if length.isdigit() and "content-encoding" not in resp.headers else None
    cap = settings.max_upload_mb * 1024 * 1024
    if expected is not None and expected > cap:
        raise fail("too_large", f"The file is {expected} bytes; the limit is {cap} bytes "
                   "(GAMELENS_MAX_UPLOAD_MB).", 413)
    return Stream(_response_chunks(resp, cap, lambda: backend.was_cut), settings, expected=expected,
                  content_type=resp.headers.get("content-type", ""), progress=progress, deadline=deadline,
                  was_cut=lambda: backend.was_cut,
                  framed=length.isdigit() or "chunked" in resp.headers.get("transfer-encoding", "").lower())


GZIP_ENCODINGS = ("gzip", "x-gzip")


def _response_chunks(resp: httpx.Response, cap: int, was_cut: Callable[[], bool]) -> Iterator[bytes]:
    """The body as sent (iter_raw: httpx unpacks nothing), one layer of gzip Content-Encoding unpacked
    in bounded pieces; any other encoding, or several, is refused."""
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return resp.iter_raw()
    if encoding not in GZIP_ENCODINGS:
        raise fail("content_encoding", f"The link's answer is compressed as {encoding!r}; GameLens reads it plain "
                   "or gzip-compressed once.")
    return _unpacked(resp.iter_raw(), Gunzip(cap, fail), was_cut)


def _unpacked(chunks: Iterator[bytes], gunzip: Gunzip, was_cut: Callable[[], bool]) -> Iterator[bytes]:
    for chunk in chunks:
        yield from gunzip.feed(chunk)
    if was_cut() and not gunzip.ended:  # the deadline's cut, not the host, ended it
        raise _cut_short()
    gunzip.finish()


@contextmanager
def open_file(path: str, settings: Settings, progress: Progress | None = None) -> Iterator[Stream]:
    """The CLI's `gamelens load PATH`: the same checks as a download, from a local file."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, after the stream is consumed)
    except OSError as exc:
        raise unloadable("unreadable_file", f"The file cannot be read: {exc.strerror}", 400, param="file") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        yield Stream(iter(lambda: f.read(FILE_CHUNK), b""), settings, expected=size, progress=progress,
                     sent_as="file")
