"""The types chat backends exchange with the loop: tools offered, calls and turns returned,
and the :class:`ChatBackend` interface."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ToolChoice = Literal["auto", "required", "none"]
TokenCallback = Callable[[str], None]

_ids = itertools.count(1)


def new_call_id() -> str:
    return f"call_{next(_ids)}"


@dataclass
class ToolInfo:
    """A tool as the model sees it: ``name`` is unique across all connected servers."""

    name: str
    server: str
    remote_name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None

    def openai_tool(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.input_schema},
        }


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: Any  # a dict when well-formed; whatever the model produced otherwise

    def message(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry (arguments re-serialized as a JSON string)."""
        args = self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments, ensure_ascii=False)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": args}}


@dataclass
class ModelTurn:
    """One model response."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw: str = ""
    parse_error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    ttft_s: float | None = None
    constrained: bool = False
    p_call: float | None = None  # the model's probability of opening a tool call, when the backend decided by it

    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            msg["tool_calls"] = [c.message() for c in self.tool_calls]
        return msg


class ChatBackend(Protocol):
    """Generates one assistant turn; called from a worker thread by the loop.

    ``response_format`` (an xgrammar structural tag) asks for a turn without tools whose text
    matches it; a backend that cannot enforce one (a remote endpoint) generates freely.
    """

    name: str
    constrained: bool

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[ToolInfo],
        *,
        tool_choice: ToolChoice = "auto",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_token: TokenCallback | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelTurn: ...
