"""Shared pieces of the host tests: the test server's spec and a scripted model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from host.backends.base import ModelTurn, ToolCall, new_call_id
from host.config import ServerSpec

REPO = Path(__file__).resolve().parents[2]
TEST_SERVER = Path(__file__).resolve().parent / "mcp_test_server.py"


def tool_server(name: str = "test", **extra: Any) -> ServerSpec:
    """The small MCP test server as a stdio subprocess."""
    return ServerSpec(
        name=name, command=sys.executable, args=[str(TEST_SERVER)], env={"PYTHONPATH": str(REPO)},
        startup_timeout_s=60, **extra,
    )


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=new_call_id(), name=name, arguments=arguments)


class ScriptedBackend:
    """A stand-in for the model in loop-logic tests: replays the given turns, records the prompts.

    The real model cannot be steered into a particular misbehaviour (a repeated failing call,
    a call to a refused tool) deterministically; the end-to-end tests use the real one.
    """

    name = "scripted"
    constrained = False

    def __init__(self, turns: list[ModelTurn | list[ToolCall] | str]) -> None:
        self.turns = list(turns)
        self.seen: list[dict[str, Any]] = []

    def complete(self, messages, tools, *, tool_choice="auto", max_new_tokens=256, temperature=0.0, on_token=None,
                 response_format=None):
        self.seen.append({"messages": [dict(m) for m in messages], "tools": [t.name for t in tools],
                          "schemas": {t.name: t.input_schema for t in tools}, "tool_choice": tool_choice,
                          "response_format": response_format})
        turn = self.turns.pop(0) if self.turns else "(out of script)"
        if isinstance(turn, str):
            return ModelTurn(text=turn, completion_tokens=3, prompt_tokens=10, seconds=0.001)
        if isinstance(turn, list):
            return ModelTurn(text="", tool_calls=turn, completion_tokens=5, prompt_tokens=10, seconds=0.001)
        return turn
