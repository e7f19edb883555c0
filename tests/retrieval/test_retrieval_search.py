"""Search modes, fusion, citations, context blocks, browsing, deletion, rerank and query rewriting."""

from __future__ import annotations

import pytest

from servers.core.errors import InvalidInput, NotFound
from servers.retrieval import manage
from servers.retrieval.browse import get_chunk, get_document
from servers.retrieval.context import build_context
from servers.retrieval.ingest import ingest
from servers.retrieval.search import Searcher, fuse_lists, search
from servers.retrieval.store import doc_id_for, get_store


def test_fusion_math():
    a = [("x", 0.9, {}), ("y", 0.5, {}), ("z", 0.1, {})]
    b = [("z", 10.0, {}), ("y", 5.0, {})]
    fused = fuse_lists([a, b], "rrf", k=60)
    assert [c for c, _, _ in fused] == ["z", "y", "x"]  # ranks 3+1 beat 2+2 (1/63 + 1/61 > 2/62)
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61) and fused[1][1] == pytest.approx(2 / 62)
    w = fuse_lists([a, b], "weighted", weights=[0.5, 0.5])
    scores = {c: s for c, s, _ in w}
    assert scores == pytest.approx({"x": 0.5, "y": 0.5 * 0.5 + 0.5 * 0.0, "z": 0.5})  # missing from a list: 0 there
    assert [c for c, _, _ in fuse_lists([a, b], "weighted", weights=[1.0, 0.0])][0] == "x"
    assert [c for c, _, _ in fuse_lists([a, b], "weighted", weights=[0.0, 1.0])][0] == "z"
    assert [c for c, _, _ in w] == ["x", "z", "y"]  # ties keep first-seen order


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_modes_find_the_right_document(filled, mode):
    settings, folder = filled
    result = search(settings, "docs", "which planet is the largest", mode=mode, top_k=3)
    top = result.hits[0]
    assert top.citation.source == str(folder / "space.md") and "Jupiter" in top.text
    assert top.citation.title == "The solar system" and top.citation.doc_id == doc_id_for(str(folder / "space.md"))
    assert result.mode == mode and result.queries == ["which planet is the largest"]
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)


def test_citation_heading_path_and_weighted_fusion(filled):
    settings, folder = filled
    result = search(settings, "docs", "how do I install the models", fusion="weighted", top_k=2)
    assert result.fusion == "weighted"
    top = result.hits[0]
    assert top.citation.source == str(folder / "install.md")
    assert top.citation.heading_path[-1] == "Installation" and top.citation.page is None
    assert 0.0 <= top.score <= 1.0


def test_search_bad_input(filled):
    settings, _ = filled
    with pytest.raises(InvalidInput, match="empty query"):
        search(settings, "docs", "   ")
    with pytest.raises(InvalidInput, match="top_k must be between 1 and 100"):
        search(settings, "docs", "x", top_k=0)
    with pytest.raises(InvalidInput, match="top_k must be between 1 and 100"):
        search(settings, "docs", "x", top_k=101)
    with pytest.raises(InvalidInput, match="mode must be"):
        search(settings, "docs", "x", mode="sparse")
    with pytest.raises(NotFound, match="no knowledge base named 'nope' \\(existing: docs\\)"):
        search(settings, "docs".replace("docs", "nope"), "x")
    with pytest.raises(InvalidInput, match="invalid filter"):
        search(settings, "docs", "x", filter={"colour": "red"})
    assert search(settings, "docs", "x", top_k=100).hits  # the edges of the range are fine


def test_context_block(filled):
    settings, folder = filled
    result = search(settings, "docs", "how do I install the models", top_k=3)
    ctx = build_context(result)
    assert ctx.context.startswith("Answer the question using only the numbered passages below")
    assert "Question: how do I install the models" in ctx.context
    assert "[1] (Setup guide; Installation; source: " + str(folder / "install.md") + ")" in ctx.context
    assert "[2] (" in ctx.context and "[3] (" in ctx.context
    assert [p.chunk_id for p in ctx.passages] == [h.chunk_id for h in result.hits] and not ctx.truncated
    small = build_context(result, max_chars=500)
    assert small.truncated and len(small.context) <= 600


def test_get_chunk_document_and_delete(tmp_path):
    from .conftest import make_settings, write_docs

    settings = make_settings(tmp_path, chunk_size=24, chunk_overlap=0)
    folder = write_docs(tmp_path / "docs")
    manage.create_kb(settings, "kb")
    ingest(settings, "kb", paths=[str(folder)], texts=[{"text": "Temporary note", "source": "tmp", "tags": ["tmp"]}])
    store = get_store(settings)
    source = str(folder / "install.md")
    doc = get_document(store, "kb", source=source)
    assert doc.chunk_count > 1 and [c.chunk_index for c in doc.chunks] == list(range(doc.chunk_count))
    assert "make setup" in doc.text and doc.title == "Setup guide" and doc.next_offset is None
    same = get_document(store, "kb", doc_id=doc.doc_id)
    assert same.text == doc.text
    chunk = get_chunk(store, "kb", doc.chunks[1].chunk_id)
    assert chunk.hit.text in doc.text and chunk.chunk_count == doc.chunk_count
    assert doc.chunks[1].chars == len(chunk.hit.text)
    # paging: one chunk per page, the pages together are the whole text, and the last page says so
    pages, offset = [], 0
    while offset is not None:
        page = get_document(store, "kb", source=source, offset=offset, limit=1)
        assert len(page.chunks) == 1 and page.offset == offset
        pages.append(page.text)
        offset = page.next_offset
    assert len(pages) == doc.chunk_count and "\n\n".join(pages) == doc.text
    with pytest.raises(InvalidInput, match="past the document's last chunk"):
        get_document(store, "kb", source=source, offset=doc.chunk_count)
    # search pages: offset continues where the first page stopped
    from servers.retrieval.search import search as run_search

    full = run_search(settings, "kb", "setup install", top_k=4, mode="dense")
    second = run_search(settings, "kb", "setup install", top_k=2, offset=2, mode="dense")
    assert len(full.hits) == 4 and second.offset == 2
    assert [h.chunk_id for h in second.hits] == [h.chunk_id for h in full.hits[2:4]]
    assert run_search(settings, "kb", "setup install", top_k=2, mode="dense").next_offset == 2
    with pytest.raises(NotFound, match=f"no chunk '{'0' * 32}'"):
        get_chunk(store, "kb", "0" * 32)
    with pytest.raises(InvalidInput, match="invalid chunk_id 'zzz'"):
        get_chunk(store, "kb", "zzz")
    with pytest.raises(NotFound, match="no document with source"):
        get_document(store, "kb", source="/nowhere")
    with pytest.raises(InvalidInput, match="exactly one"):
        get_document(store, "kb")

    before = store.count("kb")
    gone = manage.delete_documents(settings, "kb", sources=[source])
    assert gone.chunks_deleted == doc.chunk_count and store.count("kb") == before - doc.chunk_count
    assert manage.delete_documents(settings, "kb", filter={"tags_any": ["tmp"]}).chunks_deleted == 1
    fruit = doc_id_for(str(folder / "fruit.txt"))
    assert manage.delete_documents(settings, "kb", doc_ids=[fruit]).chunks_deleted >= 1
    assert manage.delete_documents(settings, "kb", doc_ids=[fruit]).chunks_deleted == 0
    with pytest.raises(InvalidInput, match="say what to delete"):
        manage.delete_documents(settings, "kb")
    info = store.info("kb")
    assert info.documents == 2 and info.chunks == store.count("kb")
    names = [kb.name for kb in manage.list_kbs(settings)]
    assert names == ["kb"]
    store.drop("kb")
    assert manage.list_kbs(settings) == []
    with pytest.raises(NotFound):
        store.info("kb")


def test_rerank_with_the_rerank_library(filled):
    settings, folder = filled
    plain = search(settings, "docs", "which fruit do monkeys eat", top_k=3)
    reranked = search(settings, "docs", "which fruit do monkeys eat", top_k=3, rerank=True,
                      rerank_method="late-interaction")
    assert reranked.reranked and reranked.hits[0].citation.source == str(folder / "fruit.txt")
    assert {h.chunk_id for h in reranked.hits} <= {h.chunk_id for h in search(settings, "docs", "which fruit do monkeys eat", top_k=30).hits}
    assert [h.score for h in reranked.hits] != [h.score for h in plain.hits]
    with pytest.raises(InvalidInput, match="unknown rerank method"):
        search(settings, "docs", "fruit", rerank=True, rerank_method="telepathy")


def test_query_rewriting_with_the_local_generator(filled):
    settings, folder = filled
    settings = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"rewrite_max_tokens": 16})}
    )  # short generations keep the test fast on a CPU
    searcher = Searcher(settings)
    multi = searcher.search("docs", "largest planet", rewrite="multi_query", top_k=3)
    assert multi.queries[0] == "largest planet" and len(multi.queries) >= 2
    assert any(h.citation.source == str(folder / "space.md") for h in multi.hits)
    hyde = searcher.search("docs", "largest planet", rewrite="hyde", top_k=3, mode="dense")
    assert len(hyde.queries) == 2 and len(hyde.queries[1]) > 20
    assert hyde.hits[0].citation.source == str(folder / "space.md")
