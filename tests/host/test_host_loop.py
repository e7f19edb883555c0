"""Loop logic against real stdio servers, with a scripted model (see helpers.ScriptedBackend)."""

from __future__ import annotations

import json

import pytest

from host.backends.base import ToolInfo
from host.connections import Hub
from host.loop import Agent, AnswerPrompt
from host.observations import CitedPassages
from host.tools import ToolView
from tests.host.helpers import ScriptedBackend, call, tool_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _run(agent: Agent, question: str) -> list:
    return [e async for e in agent.run(question)]


async def test_parallel_calls_observations_and_answer(settings, tmp_path):
    backend = ScriptedBackend([[call("add", a=1, b=2), call("get_weather", city="Paris")], "3, and cloudy in Paris."])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        agent = Agent(hub, backend, settings)
        events = await _run(agent, "sum and weather?")
    types = [e.type for e in events]
    assert types == ["usage", "tool_call", "tool_call", "tool_result", "tool_result", "usage", "answer", "usage"]
    results = [e for e in events if e.type == "tool_result"]
    assert results[0].content == '{"total":3.0}' and '"conditions":"cloudy"' in results[1].content
    # the observations went back to the model as role=tool messages with id and name
    second_prompt = backend.seen[1]["messages"]
    tool_msgs = [m for m in second_prompt if m["role"] == "tool"]
    assert [m["name"] for m in tool_msgs] == ["add", "get_weather"]
    assert tool_msgs[0]["tool_call_id"] == results[0].id
    assert events[-2].text == "3, and cloudy in Paris." and events[-2].reason == "final"
    assert events[-1].total and events[-1].overhead_seconds is not None
    # the transcript is saved as JSONL, reusable as fine-tuning data
    (record,) = [json.loads(line) for f in (settings.data_path / "transcripts").glob("*.jsonl") for line in f.open()]
    assert record["question"] == "sum and weather?" and record["messages"][-1]["role"] == "assistant"
    assert {t["function"]["name"] for t in record["tools"]} >= {"add", "get_weather"}


async def test_step_limit_asks_for_a_best_answer(settings, tmp_path):
    backend = ScriptedBackend([[call("add", a=1, b=1)], [call("add", a=2, b=2)], "best guess: 4"])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        events = await _run(Agent(hub, backend, settings, max_steps=2), "add things")
    answer = next(e for e in events if e.type == "answer")
    assert answer.reason == "step_limit" and answer.text == "best guess: 4"
    assert backend.seen[-1]["tools"] == [] and "best final answer" in backend.seen[-1]["messages"][-1]["content"]
    assert sum(e.type == "tool_result" for e in events) == 2


async def test_repeated_identical_failing_call_stops(settings, tmp_path):
    backend = ScriptedBackend([[call("get_weather", city="Atlantis")], [call("get_weather", city="Atlantis")], "unknown"])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        events = await _run(Agent(hub, backend, settings, max_steps=5), "weather in Atlantis?")
    result = next(e for e in events if e.type == "tool_result")
    assert result.is_error and "unknown city 'Atlantis'" in result.content and "Paris" in result.content
    assert any(e.type == "error" and "identical arguments" in e.message for e in events)
    assert next(e for e in events if e.type == "answer").reason == "repeated_failure"
    assert sum(e.type == "tool_call" for e in events) == 1  # the repeat was not sent again


async def test_approval_refusal_is_an_observation(settings, tmp_path):
    settings.host.auto_approve = ["add"]
    asked = []

    async def deny(tool, arguments):
        asked.append((tool.name, arguments))
        return False

    backend = ScriptedBackend([[call("echo", text="secret"), call("add", a=1, b=1)], "ok"])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        events = await _run(Agent(hub, backend, settings, approver=deny), "echo")
    echo, add = [e for e in events if e.type == "tool_result"]
    assert asked == [("echo", {"text": "secret"})]  # add is auto-approved, echo is asked about
    assert echo.is_error and "did not approve" in echo.content
    assert not add.is_error


async def test_invalid_arguments_and_unknown_tools_are_not_sent(settings, tmp_path):
    backend = ScriptedBackend([[call("add", a="one"), call("nope", x=1)], "done"])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        events = await _run(Agent(hub, backend, settings), "add")
    bad, unknown = [e for e in events if e.type == "tool_result"]
    assert bad.is_error and "invalid arguments for 'add'" in bad.content and "required: a, b" in bad.content
    assert unknown.is_error and "no tool named 'nope'" in unknown.content


async def test_long_results_are_truncated_with_a_note(settings, tmp_path):
    settings.host.observation_chars = 100
    backend = ScriptedBackend([[call("big_output", n=5000)], "long"])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        events = await _run(Agent(hub, backend, settings), "big")
    result = next(e for e in events if e.type == "tool_result")
    assert "[truncated: showed 100 of" in result.content and len(result.content) < 200


async def test_preselection_offers_the_most_relevant_tools(settings, tmp_path):
    settings.host.preselect_tools = 2
    backend = ScriptedBackend(["fine"])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        await _run(Agent(hub, backend, settings), "Will it rain in Paris today? What is the weather?")
    assert backend.seen[0]["tools"][0] == "get_weather" and len(backend.seen[0]["tools"]) == 2


# ---------------------------------------------------------------- the strategies a host passes in

def test_tool_view_selects_pins_slims_and_adds_notes():
    search = ToolInfo("kb_search", "r", "kb_search", "Search a knowledge base.", {
        "type": "object", "required": ["kb", "query"],
        "properties": {"kb": {"type": "string"}, "query": {"type": "string"}, "top_k": {"type": "integer"}}})
    add = ToolInfo("add", "t", "add", "Add.", {"type": "object", "required": ["a", "b"],
                                                "properties": {"a": {"type": "number"}, "b": {"type": "number"}}})
    other = ToolInfo("echo", "t", "echo", "Echo.", {"type": "object", "properties": {}})
    view = ToolView(5, only={"kb_search", "add"}, notes={"add": "Arithmetic only."}, pinned={"kb": "docs"}, slim=True)
    offered = {t.name: t for t in view.offer("anything", [search, add, other])}
    assert set(offered) == {"kb_search", "add"}
    assert offered["kb_search"].input_schema["properties"] == {"query": {"type": "string"}}  # pinned kb, optional top_k
    assert offered["kb_search"].input_schema["required"] == ["query"]
    assert offered["add"].description == "Add. Arithmetic only." and offered["add"].input_schema == add.input_schema
    assert view.arguments(search, {"query": "q"}) == {"query": "q", "kb": "docs"}
    assert view.arguments(add, {"a": 1, "b": 2}) == {"a": 1, "b": 2}  # add takes no kb


async def test_pinned_arguments_and_a_custom_answer_step(settings, tmp_path):
    seen_observations = []

    def answer_step(question, observations):
        seen_observations.extend(observations)
        return AnswerPrompt([{"role": "user", "content": f"Say the total for: {question}"}],
                            {"type": "structural_tag", "format": {"type": "const_string", "value": "3"}})

    backend = ScriptedBackend([[call("add", a=1)], "3"])
    view = ToolView(8, only={"add"}, pinned={"b": 2})
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        agent = Agent(hub, backend, settings, max_steps=1, tool_view=view, answer_step=answer_step)
        events = await _run(agent, "1 plus the pinned 2?")
    assert backend.seen[0]["tools"] == ["add"] and "b" not in backend.seen[0]["schemas"]["add"]["properties"]
    result = next(e for e in events if e.type == "tool_result")
    assert not result.is_error and result.content == '{"total":3.0}'  # b=2 was added back at call time
    assert [o.name for o in seen_observations] == ["add"] and seen_observations[0].structured == {"total": 3.0}
    last = backend.seen[-1]
    assert last["messages"] == [{"role": "user", "content": "Say the total for: 1 plus the pinned 2?"}]
    assert last["response_format"]["format"]["value"] == "3" and last["tools"] == []
    answer = next(e for e in events if e.type == "answer")
    assert answer.text == "3" and answer.reason == "final"
    # the transcript is typed steps; the conversation's messages are derived from it
    assert [type(s).__name__ for s in agent.transcript] == ["Question", "ToolRequest", "Observation", "Reply"]
    assert [m["role"] for m in agent.messages] == ["system", "user", "assistant", "tool", "assistant"]


async def test_observation_formatter_hook(settings, tmp_path):
    class Totals:
        def text(self, tool, structured):
            return f"the sum is {structured['total']:g}" if tool and tool.name == "add" else None

        def citations(self, tool, structured):
            return [{"source": f"calculator:{tool.name}", "title": None, "page": None, "text": str(structured)}]

    backend = ScriptedBackend([[call("add", a=2, b=5)], "7"])
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        events = await _run(Agent(hub, backend, settings, formatter=Totals()), "2+5?")
    result = next(e for e in events if e.type == "tool_result")
    assert result.content == "the sum is 7" and result.structured == {"total": 7.0}
    answer = next(e for e in events if e.type == "answer")
    assert answer.citations == [{"source": "calculator:add", "title": None, "page": None, "text": "{'total': 7.0}"}]


def test_default_formatter_reads_context_blocks_and_cited_passages():
    hit = {"text": "Milvus stores vectors.", "citation": {"source": "a.md", "title": "A", "page": 2}}
    formatter = CitedPassages()
    assert formatter.text(None, {"context": "[1] Milvus stores vectors.", "passages": [hit]}) == "[1] Milvus stores vectors."
    assert formatter.text(None, {"hits": [hit]}) is None
    assert formatter.citations(None, {"hits": [hit]}) == [
        {"source": "a.md", "title": "A", "page": 2, "text": "Milvus stores vectors."}]
    assert formatter.citations(None, {"total": 1}) == []
