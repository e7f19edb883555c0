"""Ids and values never reach a Milvus expression unescaped (defect 5): ids are validated to the
exact format Quiver generates, and every string value round-trips through the expression escaping."""

from __future__ import annotations

import pytest

from servers.core.errors import InvalidInput
from servers.retrieval import manage
from servers.retrieval.browse import get_chunk, get_document
from servers.retrieval.ingest import ingest
from servers.retrieval.store import get_store, quote, validate_id
from tests.retrieval.conftest import make_settings

INJECTION = "zzz'] or text like 'SECRET%' or id in ['zzz"
HOSTILE_SOURCES = [INJECTION, 'a"b', "back\\slash\\", "new\nline", "tab\tcr\r", "ctl\x01\x00nul", "émoji 😀", '\\"']


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ids")
    settings = make_settings(root)
    manage.create_kb(settings, "ids")
    texts = [{"text": "SECRET launch codes are 0000.", "source": "vault"}]
    texts += [{"text": f"Harmless note number {i} about gardens.", "source": src} for i, src in enumerate(HOSTILE_SOURCES)]
    report = ingest(settings, "ids", texts=texts)
    assert report.failed == 0, report.errors
    return settings, get_store(settings)


@pytest.mark.parametrize("bad", [INJECTION, "abc\n", "a" * 31, "A" * 32, "0" * 32 + "\n", "0" * 33, " " + "0" * 31])
def test_malformed_ids_are_refused_before_milvus(kb, bad: str) -> None:
    settings, store = kb
    with pytest.raises(InvalidInput, match="ids are 32 lowercase hexadecimal"):
        get_chunk(store, "ids", bad)
    with pytest.raises(InvalidInput, match="invalid chunk_id"):
        store.get("ids", [bad])
    with pytest.raises(InvalidInput, match="invalid doc_id"):
        get_document(store, "ids", doc_id=bad)
    with pytest.raises(InvalidInput, match="invalid doc_id"):
        manage.delete_documents(settings, "ids", doc_ids=[bad])
    assert store.count("ids") == 1 + len(HOSTILE_SOURCES)


def test_newline_in_an_id_does_not_reveal_the_filter(kb) -> None:
    _settings, store = kb
    with pytest.raises(InvalidInput) as err:
        get_chunk(store, "ids", "x']\nor id != '")
    assert "id in [" not in str(err.value) and "Milvus" not in str(err.value)


@pytest.mark.parametrize("source", HOSTILE_SOURCES)
def test_hostile_strings_round_trip_exactly(kb, source: str) -> None:
    _settings, store = kb
    doc = get_document(store, "ids", source=source)
    assert doc.source == source and "SECRET" not in doc.text
    chunk = get_chunk(store, "ids", doc.chunks[0].chunk_id)
    assert doc.text.startswith(chunk.hit.text) and doc.chunks[0].chars == len(chunk.hit.text)
    assert validate_id(doc.doc_id, "doc_id") == doc.doc_id


def test_quote_escapes_for_milvus_and_refuses_broken_unicode() -> None:
    assert quote(INJECTION) == '"' + INJECTION + '"'  # single quotes cannot end a double-quoted literal
    assert quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    with pytest.raises(InvalidInput, match="surrogate"):
        quote("bad \ud800")
