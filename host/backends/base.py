"""What every chat backend returns, and the interface the loop calls."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from host.connections import ToolInfo

ToolChoice = Literal["auto", "required", "none"]
TokenCallback = Callable[[str], None]

_ids = itertools.count(1)


def new_call_id() -> str:
    return f"call_{next(_ids)}"


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

    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            msg["tool_calls"] = [c.message() for c in self.tool_calls]
        return msg


class ChatBackend(Protocol):
    """Generates one assistant turn; called from a worker thread by the loop."""

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
    ) -> ModelTurn: ...
