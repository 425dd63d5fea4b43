"""A real local HTTP server that serves test files, with the misbehaviours real hosts have.

Paths:
  /files/NAME                 the file, with Content-Length
  /gzip/NAME                  gzip Content-Encoding
  /gzip-gzip/NAME             `Content-Encoding: gzip, gzip`: the file gzipped twice
  /byte-first/NAME            the file's first byte alone, then the rest (Content-Length, two writes)
  /redirect/N/NAME            N redirects (302) then the file
  /redirect-to?url=U          one redirect to U
  /status/CODE                that status, empty body
  /html                       a web page (a sharing or login page)
  /slow/NAME                  headers, then silence longer than the test's read timeout
  /truncated/NAME             Content-Length of the whole file, half the bytes, then close
  /hold/NAME                  streams the file slowly while the `hold` event is clear
  /held/NAME                  half the file, then the rest once the `hold` event is set (at most 60 s)
  /trickle-headers/NAME       a status line, then one byte of a header that never ends every 0.2 s (20 s)
  /trickle-gzip/NAME          gzip headers, then one byte of a gzip file name that never ends every 0.2 s
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class FileServer:
    def __init__(self, root: Path, host: str = "127.0.0.1"):
        self.root = root
        self.hold = threading.Event()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.route(self)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str, mode: str = "files") -> str:
        return f"{self.base}/{mode}/{name}"

    def close(self) -> None:
        self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def _send(h, status: int, body: bytes = b"", ctype: str = "text/csv", extra: dict | None = None):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _announce(self, h, name: str) -> bytes:
        """The file's status and whole Content-Length: what a mode then sends of it is its misbehaviour."""
        data = (self.root / name).read_bytes()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        return data

    def route(self, h) -> None:
        parts = urlsplit(h.path)
        seg = parts.path.strip("/").split("/")
        mode, rest = seg[0], seg[1:]
        by_file = ("files", "gzip", "gzip-gzip", "byte-first", "truncated", "hold", "held", "slow")
        if mode in by_file and not (self.root / rest[-1]).is_file():
            self._send(h, 404, b"no such file")
        elif mode == "files":
            self._send(h, 200, (self.root / rest[0]).read_bytes())
        elif mode == "gzip":
            self._send(h, 200, gzip.compress((self.root / rest[0]).read_bytes()), extra={"Content-Encoding": "gzip"})
        elif mode == "gzip-gzip":
            twice = gzip.compress(gzip.compress((self.root / rest[0]).read_bytes()))
            self._send(h, 200, twice, extra={"Content-Encoding": "gzip, gzip"})
        elif mode == "byte-first":
            data = self._announce(h, rest[0])
            h.wfile.write(data[:1])
            h.wfile.flush()
            time.sleep(0.05)
            h.wfile.write(data[1:])
        elif mode == "redirect":
            n = int(rest[0])
            target = f"/redirect/{n - 1}/{rest[1]}" if n > 1 else f"/files/{rest[1]}"
            self._send(h, 302, extra={"Location": target})
        elif mode == "redirect-to":
            self._send(h, 302, extra={"Location": parse_qs(parts.query)["url"][0]})
        elif mode == "status":
            self._send(h, int(rest[0]), b"error")
        elif mode == "html":
            self._send(h, 200, b"<!DOCTYPE html><html><body>Sign in to continue</body></html>",
                       "text/html; charset=utf-8")
        elif mode == "slow":
            data = self._announce(h, rest[0])
            h.wfile.write(data[:5000])
            h.wfile.flush()
            time.sleep(5)
        elif mode == "truncated":
            data = self._announce(h, rest[0])
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
        elif mode in ("trickle-headers", "trickle-gzip"):
            self._trickle(h, mode)
        elif mode == "held":
            data = self._announce(h, rest[0])
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            self.hold.wait(60)
            h.wfile.write(data[len(data) // 2:])
        elif mode == "hold":
            data = self._announce(h, rest[0])
            step = max(1, len(data) // 20)
            for i in range(0, len(data), step):
                h.wfile.write(data[i:i + step])
                h.wfile.flush()
                if not self.hold.is_set():
                    self.hold.wait(0.5)
        else:
            self._send(h, 404, b"no such path")


    @staticmethod
    def _trickle(h, mode: str) -> None:
        """Never a silence as long as a read timeout, never a whole block: only a deadline stops it."""
        h.close_connection = True
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n")
        if mode == "trickle-gzip":  # a gzip member whose file name (flag FNAME) never ends
            h.wfile.write(b"Content-Encoding: gzip\r\nConnection: close\r\n\r\n"
                          b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff")
        else:
            h.wfile.write(b"X-Pad: ")
        for _ in range(100):
            h.wfile.write(b"a")
            h.wfile.flush()
            time.sleep(0.2)


class ForwardProxy:
    """A plain HTTP forward proxy (absolute-URI GET, no redirects followed): it fetches whatever it is
    asked for, as a proxy on an internal network would."""

    def __init__(self):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                proxy.requests.append(self.path)
                try:
                    with opener.open(self.path, timeout=10) as upstream:
                        status, headers, body = upstream.status, upstream.headers, upstream.read()
                except urllib.error.HTTPError as exc:
                    status, headers, body = exc.code, exc.headers, exc.read()
                self.send_response(status)
                for name in ("Content-Type", "Location"):
                    if headers.get(name):
                        self.send_header(name, headers[name])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None  # hand the 3xx back to the client, as a proxy does
