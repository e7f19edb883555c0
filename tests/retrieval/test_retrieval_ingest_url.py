"""kb_ingest takes http(s) URLs through the SSRF guard: fetched when allowed, refused per URL otherwise."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from servers.retrieval import manage
from servers.retrieval.ingest import ingest
from servers.retrieval.store import get_store
from tests.core.test_fetch import Handler

from .conftest import make_settings


def test_ingest_a_url_and_refuse_a_private_one(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        settings = make_settings(tmp_path)
        settings = settings.model_copy(update={"fetch": settings.fetch.model_copy(update={"allow_loopback": True})})
        manage.create_kb(settings, "web")
        report = ingest(settings, "web", paths=[f"{base}/doc.md", f"{base}/to-private"])
        assert report.added == 1 and report.failed == 1
        assert "private-network" in report.errors[0].error and report.errors[0].source.endswith("/to-private")
        rows = get_store(settings).document_rows("web", source=f"{base}/doc.md")
        assert rows and "amber lamp" in rows[0]["text"]
        again = ingest(settings, "web", paths=[f"{base}/doc.md"])
        assert again.unchanged == 1 and again.added == 0
    finally:
        server.shutdown()
