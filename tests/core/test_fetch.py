"""The SSRF guard in front of http(s) URLs (parse_document, kb_ingest), against a real local HTTP server.

Only 127.0.0.1 is ever connected to: the other addresses below are refused before any connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from servers.core.errors import AccessDenied, InvalidInput, Timeout, TooLarge
from servers.core.fetch import address_problem, fetch_url
from servers.core.settings import FetchSettings, Settings

PAGE = b"# Lamps\n\nThe amber lamp is on shelf three.\n"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        routes = {
            "/doc.md": (200, {"Content-Type": "text/markdown"}, PAGE),
            "/page": (200, {"Content-Type": "text/html"}, b"<html><title>T</title><body><h1>Hello</h1><p>world</p></body></html>"),
            "/hop": (302, {"Location": "/doc.md"}, b""),
            "/to-private": (302, {"Location": "http://10.20.30.40/secret"}, b""),
            "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/big": (200, {"Content-Type": "text/plain"}, b"x" * 300_000),
        }
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b"." * 10)
                self.wfile.flush()
                time.sleep(0.1)
            return
        status, headers, body = routes.get(self.path, (404, {}, b"nope"))
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


LOCAL = FetchSettings(allow_loopback=True)


def test_loopback_is_refused_unless_allowed(base: str) -> None:
    with pytest.raises(AccessDenied, match="loopback"):
        fetch_url(f"{base}/doc.md", FetchSettings())
    got = fetch_url(f"{base}/doc.md", LOCAL)
    assert got.data == PAGE and got.filename == "doc.md"


def test_redirects_are_followed_and_each_target_is_checked(base: str) -> None:
    assert fetch_url(f"{base}/hop", LOCAL).final_url == f"{base}/doc.md"
    with pytest.raises(AccessDenied, match="private-network"):
        fetch_url(f"{base}/to-private", LOCAL)
    with pytest.raises(AccessDenied, match="link-local"):
        fetch_url(f"{base}/to-metadata", FetchSettings(allow_loopback=True, allow_private_networks=True))
    with pytest.raises(InvalidInput, match="redirected more than 2"):
        fetch_url(f"{base}/loop", FetchSettings(allow_loopback=True, max_redirects=2))


def test_size_and_time_caps(base: str) -> None:
    with pytest.raises(TooLarge, match="fetch.max_mb"):
        fetch_url(f"{base}/big", FetchSettings(allow_loopback=True, max_mb=0.1))
    with pytest.raises(Timeout, match="fetch.timeout_s"):
        fetch_url(f"{base}/slow", FetchSettings(allow_loopback=True, timeout_s=0.5))


@pytest.mark.parametrize(("address", "needs"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.9", "private"),
    ("172.16.5.5", "private"), ("100.64.1.1", "private"), ("fd00::1", "private"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("::ffff:10.0.0.1", "private"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
])
def test_address_classes(address: str, needs: str) -> None:
    assert needs in (address_problem(address, FetchSettings()) or "")
    assert address_problem("93.184.216.34", FetchSettings()) is None  # a public address (classified, never contacted)


def test_bad_urls() -> None:
    for url, message in (("ftp://example.org/x", "only http"), ("http://user:pw@127.0.0.1/", "credentials"),
                         ("http:///nohost", "no host")):
        with pytest.raises(InvalidInput, match=message):
            fetch_url(url, LOCAL)
    with pytest.raises(AccessDenied, match="disabled"):
        fetch_url("http://127.0.0.1/", FetchSettings(enabled=False))


def test_parse_document_reads_a_url(base: str, tmp_path: Path) -> None:
    from servers.parse import api

    settings = Settings.model_validate({"data_dir": str(tmp_path / "data"), "fetch": {"allow_loopback": True}})
    doc = api.parse_document(settings, path=f"{base}/page")
    assert doc.format == "html" and "Hello" in doc.markdown and doc.source == f"{base}/page"
    with pytest.raises(AccessDenied):
        api.parse_document(Settings.model_validate({"data_dir": str(tmp_path / "data")}), path=f"{base}/page")
