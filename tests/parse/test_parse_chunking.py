"""Chunking strategies, measured with the shipped embedder's real tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.core.errors import InvalidInput
from servers.parse import parse_bytes, parse_path
from servers.parse.chunking import chunk_document, chunk_text, load_tokenizer

PROSE = " ".join(
    f"Sentence number {i} talks about ducks, ponds and the weather in spring." for i in range(60)
)
DOC = f"""# Guide

Intro paragraph about the guide.

## Feeding

{PROSE}

Here is the feeding table:

| Food | Calories |
|---|---|
{chr(10).join(f"| item {i} with a long descriptive name | {i * 10} |" for i in range(40))}

## Code

```python
{chr(10).join(f"print('line {i} of a long code block that must stay whole')" for i in range(40))}
```

### Tiny

Short.
"""


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_fixed_windows_respect_size_and_overlap(tokenizer) -> None:
    chunks = chunk_text(PROSE, strategy="fixed", size=64, overlap=16)
    assert len(chunks) > 5
    for chunk in chunks:
        assert tokens(tokenizer, chunk.text) <= 64
        assert chunk.text == PROSE[chunk.start : chunk.end]
    for a, b in zip(chunks, chunks[1:], strict=False):
        shared = PROSE[b.start : a.end]
        assert b.start < a.end and 12 <= tokens(tokenizer, shared) <= 18  # ~16 tokens of overlap
    assert chunks[-1].end == len(PROSE.rstrip())


def test_fixed_in_characters() -> None:
    chunks = chunk_text(PROSE, strategy="fixed", size=200, overlap=40, unit="chars")
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))
    assert chunks[-1].end == len(PROSE)


def test_recursive_splits_at_sentences(tokenizer) -> None:
    chunks = chunk_text(PROSE, strategy="recursive", size=80, overlap=20)
    assert len(chunks) > 3
    for chunk in chunks:
        assert tokens(tokenizer, chunk.text) <= 80
        assert chunk.text.startswith("Sentence") and chunk.text.endswith(".")
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False)), "overlap expected"


def test_structure_keeps_tables_and_code_whole(tokenizer) -> None:
    chunks = chunk_text(DOC, strategy="structure", size=128, overlap=0)
    table = next(c for c in chunks if "| item 0 " in c.text)
    assert "| item 39 " in table.text and tokens(tokenizer, table.text) > 128
    code = next(c for c in chunks if "line 0 of" in c.text)
    assert "line 39 of" in code.text and code.text.rstrip().endswith("```")
    for chunk in chunks:
        if "|" not in chunk.text and "```" not in chunk.text:
            assert tokens(tokenizer, chunk.text) <= 128


def test_structure_colon_merge_heading_paths_and_tiny_merge() -> None:
    chunks = chunk_text(DOC, strategy="structure", size=128, overlap=0)
    # the sentence ending in a colon travels with the table it introduces
    table = next(c for c in chunks if "| item 0 " in c.text)
    assert table.text.startswith("Here is the feeding table:")
    assert not any(c.text.rstrip().endswith(":") for c in chunks)
    assert table.heading_path == ["Guide", "Feeding"]
    prose = [c for c in chunks if "Sentence number" in c.text]
    assert prose and all(c.heading_path == ["Guide", "Feeding"] for c in prose)
    # heading-only and tiny chunks merge forward into their (sub)section: no lone headings
    assert chunks[0].text.startswith("# Guide") and "Intro paragraph" in chunks[0].text
    assert next(c for c in chunks if "line 0 of" in c.text).text.startswith("## Code")
    assert not any(c.text.strip() in ("# Guide", "## Code") for c in chunks)


def test_structure_tiny_subsection_merges_into_parent() -> None:
    text = "## Parent\n\n" + PROSE[:300] + "\n\n### Child\n\nShort.\n\n## Sibling\n\n" + PROSE[:300]
    chunks = chunk_text(text, strategy="structure", size=128)
    assert len(chunks) == 2
    assert chunks[0].text.endswith("### Child\n\nShort.") and chunks[0].heading_path == ["Parent"]
    assert chunks[1].heading_path == ["Sibling"]


def test_ids_stable_and_unique() -> None:
    a = chunk_text(DOC, strategy="structure", size=128)
    b = chunk_text(DOC, strategy="structure", size=128)
    assert [c.id for c in a] == [c.id for c in b]
    assert [c.index for c in a] == list(range(len(a)))
    other = chunk_text(DOC, doc_id="another-doc", strategy="structure", size=128)
    assert {c.id for c in a}.isdisjoint({c.id for c in other})
    repeated = chunk_text("Same words here.\n\n" * 3, strategy="fixed", size=4, overlap=0)
    assert len({c.id for c in repeated}) == len(repeated)


def test_pages_from_parsed_pdf(sample_pdf: Path) -> None:
    doc = parse_path(sample_pdf)
    chunks = chunk_document(doc, strategy="recursive", size=20, overlap=0)
    assert all(c.doc_id == doc.doc_id for c in chunks)
    assert {p for c in chunks for p in c.pages} == {1, 2}
    second = next(c for c in chunks if "migrate" in c.text)
    assert second.pages == [2] and "<!--" not in second.text
    assert second.heading_path == ["Annual Duck Report", "Second Chapter"]
    whole = chunk_document(doc, strategy="fixed", size=500, overlap=0)
    assert len(whole) == 1 and whole[0].pages == [1, 2] and "page 2" not in whole[0].text


def test_semantic_breaks_at_topic_shift() -> None:
    cats = [
        "Cats are small domesticated carnivorous mammals.",
        "A cat has retractable claws and sharp teeth.",
        "Kittens are born blind and rely on their mother.",
        "Many cats enjoy sleeping in warm sunny spots.",
        "Domestic cats purr when they are content.",
    ]
    money = [
        "The central bank raised interest rates by half a percent.",
        "Bond yields climbed after the inflation report.",
        "Stock markets fell as investors sold technology shares.",
        "The currency weakened against the dollar.",
        "Analysts expect the recession to deepen next quarter.",
    ]
    text = " ".join(cats + money)
    chunks = chunk_text(text, strategy="semantic", size=512)
    assert len(chunks) == 2
    assert chunks[0].text.endswith(cats[-1]) and chunks[1].text.startswith(money[0])


def test_invalid_options() -> None:
    with pytest.raises(InvalidInput, match="overlap"):
        chunk_text("abc", size=10, overlap=10, unit="chars")
    with pytest.raises(InvalidInput, match="strategy"):
        chunk_text("abc", strategy="magic", unit="chars")  # type: ignore[arg-type]


def test_chunk_document_of_html_tables_carry_no_pages() -> None:
    html = b"<h1>T</h1><p>Intro:</p><table><tr><th>a</th></tr><tr><td>1</td></tr></table>"
    doc = parse_bytes(html, "t.html")
    chunks = chunk_document(doc, unit="chars", size=200)
    assert len(chunks) == 1 and chunks[0].pages == [] and "| 1 |" in chunks[0].text
