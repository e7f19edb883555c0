"""The typed events the loop yields; the CLI renders them, ``--json`` prints them one per line."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Event(BaseModel):
    type: str
    step: int = 0

    def json_line(self) -> str:
        return self.model_dump_json(exclude_none=True)


class Thought(Event):
    """What the model said before (or instead of) calling tools."""

    type: Literal["thought"] = "thought"
    text: str


class ToolCallEvent(Event):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    server: str | None = None
    arguments: Any = None


class ToolResultEvent(Event):
    type: Literal["tool_result"] = "tool_result"
    id: str
    name: str
    is_error: bool = False
    content: str = Field(description="the observation as fed back to the model")
    structured: Any = None
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)


class Answer(Event):
    type: Literal["answer"] = "answer"
    text: str
    reason: Literal["final", "step_limit", "repeated_failure", "repeated_call", "no_tools"] = "final"
    citations: list[dict[str, Any]] = Field(default_factory=list)


class ErrorEvent(Event):
    type: Literal["error"] = "error"
    message: str


class Usage(Event):
    """Token counts and timings: one per model call, and one with ``total=True`` at the end."""

    type: Literal["usage"] = "usage"
    total: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    tool_seconds: float = 0.0
    overhead_seconds: float | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    constrained: bool | None = None
    model: str | None = None


AnyEvent = Thought | ToolCallEvent | ToolResultEvent | Answer | ErrorEvent | Usage
