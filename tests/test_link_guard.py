"""The guard on links: only globally routable addresses, checked where the connection is made (no DNS
rebinding), at every redirect hop; no proxy from the environment; links shown to readers without
their credentials."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from urllib.parse import quote, urlsplit

import httpx
import pytest

from gamelens.errors import GameLensError
from gamelens.ingest import download

from .conftest import SAMPLE, make_settings, upload

REFUSED = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "255.255.255.255",
    "100.64.0.1",  # CGNAT (Tailscale's range)
    "100.100.100.200",  # a cloud metadata service inside CGNAT
    "198.18.0.1", "198.19.255.254",  # benchmarking
    "192.0.2.1", "198.51.100.1", "203.0.113.1",  # documentation
    "224.0.0.1", "239.255.255.250",  # multicast
    "240.0.0.1",  # reserved
    "::1", "::", "fe80::1", "fd00::1", "fd00:ec2::254", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:100.64.0.1",  # IPv4-mapped
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "::127.0.0.1", "::8.8.8.8",  # IPv4-compatible (deprecated): outside 2000::/3
    "::ffff:0:127.0.0.1", "::ffff:0:8.8.8.8",  # SIIT IPv4-translated
    "64:ff9b:1::7f00:1", "64:ff9b:1::808:808",  # local-use NAT64 (RFC 8215)
    "fec0::1",  # site-local (deprecated)
    "100::1", "3fff::1", "5f00::1",  # discard-only, documentation (2024), SRv6 SIDs
    "192.0.0.8", "192.0.0.170",  # IETF protocol assignments
]
ALLOWED = ["1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80e::200e",
           "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]  # mapped, NAT64, 6to4 of 8.8.8.8


@pytest.mark.parametrize("address", REFUSED)
def test_addresses_that_are_not_public_are_refused(address):
    assert not download.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert download.is_public(ipaddress.ip_address(address))


class Resolver:
    """A local resolver stub: names ending in .test resolve to the addresses listed for them, one
    answer per lookup (the last repeats); every other name goes to the real resolver."""

    def __init__(self, monkeypatch, answers: dict[str, list[str]]):
        self.answers, self.lookups, self._real = answers, [], socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port, *args, **kw):
        if isinstance(host, bytes):
            host = host.decode()
        if host not in self.answers:
            return self._real(host, port, *args, **kw)
        self.lookups.append(host)
        queue = self.answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]


def test_a_name_resolving_to_loopback_is_refused(monkeypatch, files):
    Resolver(monkeypatch, {"sneaky.test": ["127.0.0.1"]})
    port = files.base.rsplit(":", 1)[1]
    with pytest.raises(GameLensError) as err:
        download.check_url(f"http://sneaky.test:{port}/files/sample.csv", allow_private=False)
    assert err.value.code == "private_address" and err.value.status == 400


def test_dns_rebinding_cannot_reach_a_private_address(monkeypatch, files):
    """The name answers a public address to the check and loopback to any later lookup. The
    connection must go to the checked address (refused here, so no traffic leaves), never to the
    local file server."""
    resolver = Resolver(monkeypatch, {"rebind.test": ["1.1.1.1", "127.0.0.1"]})
    connected, real_connect = [], socket.create_connection

    def create_connection(address, *args, **kw):
        host = address[0]
        try:
            public = download.is_public(ipaddress.ip_address(host))
        except ValueError:  # a name: resolved by the real create_connection through the stub
            public = False
        connected.append(host)
        if public:  # never send traffic off this machine
            raise ConnectionRefusedError("test: no traffic to public addresses")
        return real_connect(address, *args, **kw)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    served_before = len(files.requests)
    port = files.base.rsplit(":", 1)[1]
    with pytest.raises(GameLensError) as err, \
            download.open_url(f"http://rebind.test:{port}/files/sample.csv", make_settings(allow_private_urls=False)):
        pass
    assert err.value.code == "download_failed"
    assert connected == ["1.1.1.1"] and resolver.lookups == ["rebind.test"]
    assert len(files.requests) == served_before  # the file server never saw the request


def test_every_redirect_hop_is_checked_at_connection(monkeypatch, files):
    """The first host stands in for a public one (loopback counts as public for this test); its
    redirect to the metadata address is refused when connecting, not only by the pre-check."""
    real = download.is_public
    monkeypatch.setattr(download, "is_public", lambda ip: str(ip) == "127.0.0.1" or real(ip))
    settings = make_settings(allow_private_urls=False)
    with pytest.raises(GameLensError) as err, \
            download.open_url(f"{files.base}/redirect-to?url=http://169.254.169.254/latest/", settings):
        pass
    assert err.value.code == "private_address"
    with download.open_url(files.url("sample.csv", "redirect/2"), settings) as stream:
        assert sum(len(chunk) for chunk in stream) == (files.root / "sample.csv").stat().st_size


def test_proxy_variables_of_the_environment_are_ignored(monkeypatch, make_client, files):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_client()
    assert upload(client, files.url("sample.csv"))["state"] == "succeeded"
    proxied = make_client(download_proxy="http://127.0.0.1:9")  # an explicit proxy is used
    rec = upload(proxied, files.url("sample.csv"))
    assert rec["state"] == "failed" and rec["error"]["code"] == "download_failed"
    # in words, without httpx's class names (it said "ConnectError: [Errno 111] Connection refused")
    message = rec["error"]["message"]
    assert message.startswith("The download failed: could not connect to the download proxy"), message
    assert "Error:" not in message


def test_every_download_verifies_certificates_with_one_context_per_thread():
    """Loading the CA bundle takes about 20 ms and httpx loaded it twice per client, on every upload: the
    context is made once per thread, and every client, through a proxy too, verifies certificates and
    host names. Another thread gets its own (httpcore changes it at each connection)."""
    import threading

    plain = [download._client(make_settings(), download._GuardedBackend(False)) for _ in range(2)]
    proxied = download._client(make_settings(download_proxy="http://127.0.0.1:9"), download._GuardedBackend(False))
    contexts = {id(c._transport._pool._ssl_context) for c in [*plain, proxied]}
    assert len(contexts) == 1
    context = plain[0]._transport._pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded
    other = []
    thread = threading.Thread(target=lambda: other.append(download._ssl_context()))
    thread.start()
    thread.join()
    assert other[0] is not context
    for c in [*plain, proxied]:
        c.close()


def test_readers_see_links_without_credentials_or_query(make_client, files):
    client = make_client()
    base = files.base.replace("http://", "http://user:s3cret@")
    url = f"{base}/files/sample.csv?X-Amz-Signature=abc123&token=t0k#frag"
    rec = upload(client, url)
    assert rec["state"] == "succeeded", rec
    reader = client.post("/api/v1/keys", json={"name": "viewer", "role": "reader"}).json()["key"]
    as_reader = {"Authorization": f"Bearer {reader}"}
    plain = f"{files.base}/files/sample.csv"
    assert client.get(f"/api/v1/uploads/{rec['id']}", headers=as_reader).json()["url"] == plain
    assert client.get("/api/v1/uploads", headers=as_reader).json()["uploads"][0]["url"] == plain
    assert client.get(f"/api/v1/uploads/{rec['id']}").json()["url"] == url  # admins see it whole


BAD_LINKS = ["http://example.com/games.csv\n", "http://example.com/ga\x00mes.csv", "http://example.com/\tgames.csv",
             "http://[::1]x/games.csv", "http://example.com:99999/games.csv",
             "http://xn--zz.com/games.csv", "http://xn--/"]  # no punycode: failed as `internal` (helper-66)


@pytest.mark.parametrize("link", BAD_LINKS, ids=range(len(BAD_LINKS)))
def test_malformed_links_are_400_bad_url(client, link, caplog):
    r = client.post("/api/v1/uploads", json={"url": link})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_url", r.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("location", ["http://[::1]x/games.csv", "http://[::1", "http://xn--zz.com/games.csv"])
def test_a_redirect_to_a_malformed_location_fails_the_upload_as_bad_url(client, files, location):
    """`http://[::1` is one urljoin cannot read: it failed the upload as `internal` (helper-62)."""
    rec = upload(client, f"{files.base}/redirect-to?url={quote(location)}")
    assert rec["state"] == "failed" and rec["error"]["code"] == "bad_url", rec


@pytest.fixture
def internal(files):
    """A second file server on another loopback address (127.0.0.2): an internal service."""
    from .fileserver import FileServer

    server = FileServer(files.root, host="127.0.0.2")
    (files.root / "internal-metadata.csv").write_bytes((files.root / "sample.csv").read_bytes())
    yield server
    server.close()


def test_every_hop_is_checked_through_a_proxy_too(monkeypatch, make_client, files, internal):
    """With GAMELENS_DOWNLOAD_PROXY the proxy connects; a public link (the file server on 127.0.0.1
    stands in for one) that redirects to an internal address must not be fetched through it."""
    from .fileserver import ForwardProxy

    real = download.is_public
    monkeypatch.setattr(download, "is_public", lambda ip: str(ip) == "127.0.0.1" or real(ip))
    proxy = ForwardProxy()
    try:
        client = make_client(download_proxy=proxy.url, allow_private_urls=False)
        direct = upload(client, files.url("sample.csv"))  # through the proxy, to a "public" host: fine
        assert direct["state"] == "succeeded", direct
        rec = upload(client, f"{files.base}/redirect-to?url={internal.url('internal-metadata.csv')}")
        assert rec["state"] == "failed" and rec["error"]["code"] == "private_address", rec
        assert [urlsplit(p).hostname for p in proxy.requests] == ["127.0.0.1", "127.0.0.1"], proxy.requests
        assert not internal.requests
    finally:
        proxy.close()


def test_readers_see_the_name_of_a_file_loaded_from_a_server_path(make_client):
    client = make_client()
    uploads = client.app.state.uploads
    rec = uploads.submit_file(SAMPLE, str(SAMPLE), "path", "cli")
    uploads.wait(rec["id"], 60)
    reader = client.post("/api/v1/keys", json={"name": "viewer", "role": "reader"}).json()["key"]
    shown = client.get(f"/api/v1/uploads/{rec['id']}", headers={"Authorization": f"Bearer {reader}"}).json()
    assert shown["url"] == "sample_games.csv" and shown["state"] == "succeeded", shown
    assert str(SAMPLE.parent) not in str(client.get("/api/v1/uploads", headers={"Authorization": f"Bearer {reader}"}
                                                    ).json())
    assert client.get(f"/api/v1/uploads/{rec['id']}").json()["url"] == str(SAMPLE)  # admins see where it lies


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:  # noqa: BLE001 (the exception itself is what is wanted)
        return raised


@pytest.mark.parametrize("exc,proxied,words", [
    (_raised_from(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed"),
                  ssl.SSLCertVerificationError(1, "self-signed")), True, "the TLS connection to the host failed"),
    (httpx.ConnectError("[Errno 111] Connection refused"), True, "could not connect to the download proxy"),
    (httpx.ConnectError("[Errno 111] Connection refused"), False, "could not connect to the host"),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), False,
     "the host closed the connection without answering"),
])
def test_a_failed_download_says_what_failed_in_words(exc, proxied, words):
    """A certificate the proxy's tunnel could not verify is the host's (it was worded as the proxy's); a host
    that hung up before answering closed the connection (it "did not follow HTTP")."""
    err = download.download_failed(exc, proxied)
    assert err.code == "download_failed" and err.message.startswith(f"The download failed: {words}"), err.message
