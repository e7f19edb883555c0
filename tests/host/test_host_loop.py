"""Loop logic against real stdio servers, with a scripted model (see helpers.ScriptedBackend)."""

from __future__ import annotations

import json

import pytest

from host.connections import Hub
from host.loop import Agent
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
