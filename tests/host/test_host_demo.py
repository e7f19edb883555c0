"""The demo's pieces that need no servers: sample documents, answer options, the answer grammar."""

from __future__ import annotations

import json

from host.demo import QUESTIONS, SAMPLES, TOOL_NOTES, demo_answer, passage_sentences
from host.steps import Observation


def test_samples_exist_and_cover_the_demo_questions():
    files = sorted(p.name for p in SAMPLES.iterdir())
    assert {"servers.md", "configuration.md", "scaling.html", "safety.md", "host.md"} <= set(files)
    text = " ".join(p.read_text() for p in SAMPLES.iterdir())
    for needle in ("Milvus", "models.endpoint", "observation", "read-only"):
        assert needle in text


def test_answer_options_are_cited_sentences_and_the_grammar_admits_only_them(settings):
    import xgrammar as xgr

    from servers.core.models import causal_lm

    passages = [{"text": "## retrieval\n\nThe retrieval server keeps knowledge bases on Milvus. Search is hybrid."},
                {"text": "# Safety\n\nSQL runs read-only, enforced by the connection itself."}]
    options = passage_sentences(passages)
    assert options == ["The retrieval server keeps knowledge bases on Milvus. [1]",
                       "SQL runs read-only, enforced by the connection itself. [2]"]
    prompt = demo_answer(QUESTIONS[0], [Observation("c1", "kb_context", "", {"passages": passages})])
    messages, fmt = prompt.messages, prompt.response_format
    assert "[1] ## retrieval" in messages[1]["content"] and QUESTIONS[0] in messages[1]["content"]
    lm = causal_lm(None, settings)
    info = xgr.TokenizerInfo.from_huggingface(lm.tokenizer, vocab_size=lm.model.config.vocab_size)
    grammar = xgr.GrammarCompiler(info).compile_structural_tag(json.dumps(fmt))
    ok = xgr.GrammarMatcher(grammar, terminate_without_stop_token=True)
    assert ok.accept_string(options[0]) and ok.is_completed()
    assert not xgr.GrammarMatcher(grammar).accept_string("The retrieval server uses PostgreSQL.")
    sql = demo_answer("How many?", [Observation("c2", "text_to_sql", "", {"sql": "SELECT 1", "result": {
        "columns": ["n"], "rows": [[60]]}})])
    sql_messages, sql_fmt = sql.messages, sql.response_format
    assert sql_fmt is None and "Rows: [[60]]" in sql_messages[1]["content"]


def test_tool_notes_route_the_demo_questions(settings):
    """Pre-selection by embedding similarity sends doc questions to kb_context, data ones to SQL."""
    from host.backends.base import ToolInfo
    from host.tools import ToolSelector
    from servers.core.models import embed

    tools = [ToolInfo(n, "s", n, "A tool.", {"type": "object"}) for n in TOOL_NOTES]
    selector = ToolSelector(lambda texts: embed(texts, settings))
    picks = [selector.select(q, tools, 1, texts=TOOL_NOTES)[0].name for q in QUESTIONS]
    assert picks == ["kb_context", "kb_context", "kb_context", "text_to_sql"]
