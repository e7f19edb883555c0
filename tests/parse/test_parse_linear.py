"""Markdown structure in linear time (markdown-it-py's block parser): setext and ATX headings
found the way renderers find them, and inputs that froze the old hand-written regex parser
(quadratic in the line length) handled in one pass."""

from __future__ import annotations

import pytest

from servers.parse.chunking import chunk_text
from servers.parse.documents import parse_bytes
from servers.parse.markdown import blocks, headings, section_spans
from servers.text2sql.operations import wildcard_match
from servers.text2sql.prompting import extract_sql


def test_setext_and_atx_headings_with_paths() -> None:
    text = "Guide\n=====\n\nIntro.\n\nInstall\n-------\n\nRun it.\n\n### Deep ###\n\n```\n# not a heading\n```\n"
    heads = headings(text)
    assert [(h.level, h.title) for h in heads] == [(1, "Guide"), (2, "Install"), (3, "Deep")]
    assert heads[-1].path == ("Guide", "Install", "Deep")
    doc = parse_bytes(text.encode(), "guide.md")
    assert doc.title == "Guide" and [s.heading_path for s in doc.sections][1] == ["Guide", "Install"]
    kinds = [b.kind for b in blocks(text)]
    assert kinds == ["heading", "paragraph", "heading", "paragraph", "heading", "code"]


def test_page_markers_tables_and_lists_are_blocks() -> None:
    text = "<!-- page 1 -->\n\n# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n\n<!-- page 2 -->\nNext page.\n"
    got = [(b.kind, b.level) for b in blocks(text)]
    assert got == [("marker", 1), ("heading", 1), ("table", 0), ("list", 0), ("marker", 2), ("paragraph", 0)]
    table = next(b for b in blocks(text) if b.kind == "table")
    assert text[table.start : table.end] == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_section_spans_end_at_the_next_heading_of_the_same_or_higher_level() -> None:
    text = "# A\n\na\n\n## B\n\nb\n\n# C\n\nc\n"
    spans = {h.title: text[h.start : end] for h, end in section_spans(text)}
    assert spans["A"].startswith("# A") and spans["A"].rstrip().endswith("b")
    assert spans["B"] == "## B\n\nb\n\n" and spans["C"] == "# C\n\nc\n"


# Each of these took the old regex parser from tens of seconds to hours (quadratic backtracking).
PATHOLOGICAL = {
    "heading of 200k spaces": "#" + " " * 200_000 + "\n\nbody\n",
    "heading ending in 200k spaces": "# title" + " " * 200_000 + "#\n",
    "a 1 MB line": "x" * 1_000_000,
    "a 1 MB heading line": "# " + "word " * 200_000,
    "20k headings": "# h\n" * 20_000,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_lines_parse_and_chunk_in_one_pass(name: str) -> None:
    text = PATHOLOGICAL[name]
    doc = parse_bytes(text.encode(), "evil.md")
    assert doc.markdown == text
    chunks = chunk_text(text, unit="chars", size=512, overlap=0)
    assert chunks and all(c.text for c in chunks)


def test_text2sql_wildcards_match_without_backtracking_blowup() -> None:
    assert wildcard_match("order*", "orders") and wildcard_match("*_id", "customer_id")
    assert wildcard_match("o%r*s", "orders") and not wildcard_match("order*x", "orders")
    hostile = "*a" * 40 + "b"  # as a regex (.*a)*b this backtracks exponentially on 'aaaa...'
    assert not wildcard_match(hostile, "a" * 200)


def test_sql_extraction_is_linear_on_degenerate_model_output() -> None:
    spaces = "SELECT 1" + " " * 200_000 + "x\nFROM t"
    assert extract_sql(spaces).startswith("SELECT 1")
    assert extract_sql("```sql\nSELECT a   \nFROM t;\n```") == "SELECT a\nFROM t"
