"""The conversation as typed steps: the agent's transcript. The chat messages a model reads are
derived from it (:func:`messages`), never kept separately."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from host.backends.base import ModelTurn

BEST_ANSWER_PROMPT = (
    "Stop calling tools now. Using only the tool results above, give your best final answer to the "
    "question: {question}"
)


@dataclass
class Question:
    """The user's question."""

    text: str

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.text}]


@dataclass
class ToolRequest:
    """A model turn that called tools (with the text it wrote before them)."""

    turn: ModelTurn

    def messages(self) -> list[dict[str, Any]]:
        return [self.turn.message()]


@dataclass
class Observation:
    """One tool call's result as the model read it."""

    call_id: str
    name: str
    text: str
    structured: Any = None
    is_error: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "tool", "tool_call_id": self.call_id, "name": self.name, "content": self.text}]


@dataclass
class Unreadable:
    """A turn whose tool call could not be parsed, and the request to write it again."""

    raw: str
    error: str

    def messages(self) -> list[dict[str, Any]]:
        return [
            {"role": "assistant", "content": self.raw},
            {"role": "user", "content": f"Your tool call could not be read: {self.error}. "
                                        "Write it again as valid JSON, or answer in plain text."},
        ]


@dataclass
class AnswerRequest:
    """The host asking for the best answer from the results so far (tools are over)."""

    question: str

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": BEST_ANSWER_PROMPT.format(question=self.question)}]


@dataclass
class Reply:
    """The model's answer in plain text."""

    text: str

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "assistant", "content": self.text}]


Step = Question | ToolRequest | Observation | Unreadable | AnswerRequest | Reply


def messages(system_prompt: str, steps: list[Step]) -> list[dict[str, Any]]:
    """The chat messages for a model: the system prompt, then every step's messages in order."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
    for step in steps:
        out.extend(step.messages())
    return out
