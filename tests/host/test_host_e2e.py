"""End to end: the real `quiver ask --json` handler, real stdio servers (parse and the test
server), the real shipped SmolLM2 under tool_choice=required with constrained decoding."""

from __future__ import annotations

import json
import sys

import pytest

from host.backends.base import ToolInfo
from host.backends.formats import parse_output, structural_tag
from host.cli import build_parser
from tests.host.helpers import REPO, TEST_SERVER

EVENT_TYPES = {"thought", "tool_call", "tool_result", "answer", "error", "usage"}


@pytest.fixture
def servers_file(tmp_path, settings):
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": {
        "test": {"command": sys.executable, "args": [str(TEST_SERVER)], "env": {"PYTHONPATH": str(REPO)},
                 "allowTools": ["get_weather", "add", "echo"]},
        "parse": {"command": sys.executable,
                  "args": ["-m", "servers", "serve", "parse", "--transport", "stdio",
                           "--data-dir", str(settings.data_path), "--root", str(tmp_path)]},
    }}))
    return path


def test_ask_json_required_calls_the_tool_and_feeds_back_the_observation(settings, servers_file, capsys):
    args = build_parser().parse_args([
        "ask", "What is the weather in Tokyo?", "--servers", str(servers_file), "--json",
        "--tool-choice", "required", "--max-steps", "1", "--max-new-tokens", "40", "--preselect", "3",
    ])
    code = args.func(args, settings)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every stdout line is one JSON event
    assert code == 0 and {e["type"] for e in events} <= EVENT_TYPES
    call = next(e for e in events if e["type"] == "tool_call")
    assert call["name"] == "get_weather" and call["server"] == "test"
    assert "tokyo" in call["arguments"]["city"].lower()
    result = next(e for e in events if e["type"] == "tool_result")
    assert not result["is_error"] and '"conditions":"sunny"' in result["content"]
    first_usage = next(e for e in events if e["type"] == "usage")
    assert first_usage["constrained"] is True and first_usage["completion_tokens"] > 0
    answer = next(e for e in events if e["type"] == "answer")
    assert answer["reason"] == "step_limit" and answer["text"].strip()  # best answer after the step limit
    assert events[-1]["type"] == "usage" and events[-1]["total"] is True
    # the observation went back into the conversation the model answered from
    (record,) = [json.loads(x) for f in (settings.data_path / "transcripts").glob("*.jsonl") for x in f.open()]
    roles = [m["role"] for m in record["messages"]]
    tool_msg = record["messages"][roles.index("tool")]
    assert "sunny" in tool_msg["content"] and roles.index("tool") < len(roles) - 1
    assert {t["function"]["name"] for t in record["tools"]} >= {"get_weather"}


def test_grammar_only_admits_schema_valid_calls(settings):
    """The structural tag compiled for the real tokenizer rejects a wrong tool or a wrong type."""
    import xgrammar as xgr

    from servers.core.models import causal_lm

    lm = causal_lm(None, settings)
    tools = [ToolInfo("add", "t", "add", "Add.", {"type": "object", "properties": {"a": {"type": "number"},
                                                   "b": {"type": "number"}}, "required": ["a", "b"]})]
    info = xgr.TokenizerInfo.from_huggingface(lm.tokenizer, vocab_size=lm.model.config.vocab_size)
    grammar = xgr.GrammarCompiler(info).compile_structural_tag(json.dumps(structural_tag(tools, "smol", "required")))

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(grammar, terminate_without_stop_token=True)
        return matcher.accept_string(text) and matcher.is_completed()

    good = '<tool_call>[{"name": "add", "arguments": {"a": 1, "b": 2.5}}]</tool_call>'
    assert accepts(good)
    assert not accepts('<tool_call>[{"name": "sub", "arguments": {"a": 1, "b": 2}}]</tool_call>')
    assert not accepts('<tool_call>[{"name": "add", "arguments": {"a": "1", "b": 2}}]</tool_call>')
    assert not accepts('<tool_call>[{"name": "add", "arguments": {"a": 1}}]</tool_call>')
    assert not accepts("The answer is 3.")
    text, calls, error = parse_output(good, "smol")
    assert error is None and calls[0].name == "add" and calls[0].arguments == {"a": 1, "b": 2.5}


def test_grammar_resolves_each_tools_own_definitions(settings):
    """Tools whose arguments use nested models (``$defs``, as rerank's and fuse's do) compile into one
    grammar, each ``$ref`` resolved against its own tool's definitions even when two tools name a
    definition alike, and ``#`` against the tool's own schema; the grammar still enforces the nested schema."""
    import xgrammar as xgr

    from servers.core.models import causal_lm

    lm = causal_lm(None, settings)
    doc = {"type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
           "required": ["text"], "additionalProperties": False}
    rank = {"type": "object", "properties": {"query": {"type": "string"},
                                             "documents": {"type": "array", "items": {"$ref": "#/$defs/Document"}}},
            "required": ["query", "documents"], "$defs": {"Document": doc}}
    other = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
    pick = {"type": "object", "properties": {"item": {"$ref": "#/definitions/Document"}}, "required": ["item"],
            "definitions": {"Document": other}}
    # a recursive schema (a tree whose children are trees: "$ref": "#" is the tool's own root, not the grammar's)
    tree = {"type": "object", "properties": {"label": {"type": "string"},
                                             "children": {"type": "array", "items": {"$ref": "#"}}},
            "required": ["label"], "additionalProperties": False}
    tools = [ToolInfo("rerank", "t", "rerank", "Rank.", rank), ToolInfo("pick", "t", "pick", "Pick.", pick),
             ToolInfo("tree", "t", "tree", "Draw a tree.", tree)]
    info = xgr.TokenizerInfo.from_huggingface(lm.tokenizer, vocab_size=lm.model.config.vocab_size)
    compiler = xgr.GrammarCompiler(info)
    for dialect, key, wrap in (("smol", "arguments", "<tool_call>[{}]</tool_call>"), ("json", "parameters", "{}")):
        grammar = compiler.compile_structural_tag(json.dumps(structural_tag(tools, dialect, "required")))

        def accepts(call: str, grammar=grammar, wrap=wrap) -> bool:  # noqa: ANN001
            matcher = xgr.GrammarMatcher(grammar, terminate_without_stop_token=True)
            return matcher.accept_string(wrap.replace("{}", call)) and matcher.is_completed()

        assert accepts(f'{{"name": "rerank", "{key}": {{"query": "q", "documents": [{{"id": "1", "text": "a"}}]}}}}')
        assert not accepts(f'{{"name": "rerank", "{key}": {{"query": "q", "documents": [{{"id": "1"}}]}}}}')
        assert not accepts(f'{{"name": "rerank", "{key}": {{"query": "q", "documents": [{{"text": "a", "x": 1}}]}}}}')
        assert accepts(f'{{"name": "pick", "{key}": {{"item": {{"n": 3}}}}}}')
        assert not accepts(f'{{"name": "pick", "{key}": {{"item": {{"text": "a"}}}}}}')
        assert accepts(f'{{"name": "tree", "{key}": {{"label": "a", "children": [{{"label": "b", "children": []}}]}}}}')
        assert not accepts(f'{{"name": "tree", "{key}": {{"label": "a", "children": [{{"n": 3}}]}}}}')


def test_grammar_keeps_knowledge_base_names_to_names_that_can_exist(settings):
    """The retrieval server publishes the knowledge-base name pattern in its tool schemas (not only in
    the description), so constrained decoding cannot put a sentence where a name goes: the shipped
    SmolLM2 used to copy the argument's description into ``kb`` ("knowledge base name (letters, ...")."""
    import asyncio

    import xgrammar as xgr
    from mcp import Client

    from servers.core.models import causal_lm
    from servers.retrieval.server import build_server

    async def listed() -> dict:
        async with Client(build_server(settings)) as client:
            return {t.name: t.input_schema for t in (await client.list_tools()).tools}

    schemas = asyncio.run(listed())
    named = {tool: s["properties"][arg] for tool, s in schemas.items() for arg in ("kb", "name")
             if arg in s.get("properties", {}) and "knowledge base name" in s["properties"][arg].get("description", "")}
    assert {"kb_search", "kb_context", "kb_create"} <= set(named)
    assert all(p.get("pattern") == "^[A-Za-z][A-Za-z0-9_]{0,62}$" for p in named.values()), named

    lm = causal_lm(None, settings)
    info = xgr.TokenizerInfo.from_huggingface(lm.tokenizer, vocab_size=lm.model.config.vocab_size)
    tools = [ToolInfo("kb_search", "retrieval", "kb_search", "Search.", schemas["kb_search"])]
    grammar = xgr.GrammarCompiler(info).compile_structural_tag(json.dumps(structural_tag(tools, "smol", "required")))

    def accepts(kb: str) -> bool:
        matcher = xgr.GrammarMatcher(grammar, terminate_without_stop_token=True)
        call = json.dumps([{"name": "kb_search", "arguments": {"kb": kb, "query": "vacation days"}}])
        return matcher.accept_string(f"<tool_call>{call}</tool_call>") and matcher.is_completed()

    assert accepts("quiver_docs") and accepts("handbook2")
    assert not accepts("knowledge base name (letters, digits, underscores; starts with a letter)")
    assert not accepts("2024_notes") and not accepts("a" * 64)

    # the small model's prompt lists the argument without the regex (the grammar enforces it)
    from servers.core.tool_prompt import smol_messages

    system = smol_messages([{"role": "user", "content": "q"}], [tools[0].openai_tool()])[0]["content"]
    assert '"kb": {' in system and "A-Za-z0-9_" not in system
