"""One training conversation, kept in the host's own message format (what its loop appends and
its transcripts store), and rendered by the ``smol`` dialect (``servers.core.tool_prompt``, which the
finetune server trains with; a test checks it against the host's local backend) so that the training
text is byte-identical to the prompt the host builds at inference."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from host.connections import ToolInfo
from host.loop import SYSTEM_PROMPT
from servers.core.tool_prompt import smol_messages

Split = Literal["train", "test"]


class Example(BaseModel):
    """A conversation: system, user, then assistant turns (calls or the answer) and tool results."""

    id: str
    source: Literal["bfcl", "quiver", "trace"]
    category: str
    split: Split
    group: str = Field(description="the split unit: a BFCL id, a fact, topic or phrasing template")
    question: str = Field(description="the user's question (leak check, stats)")
    tools: list[dict[str, Any]] = Field(description="offered tools: name, description, input_schema")
    messages: list[dict[str, Any]]

    def tool_infos(self) -> list[ToolInfo]:
        return [ToolInfo(name=t["name"], server=t.get("server", ""), remote_name=t["name"],
                         description=t["description"], input_schema=t["input_schema"]) for t in self.tools]

    def smol_messages(self) -> list[dict[str, str]]:
        """Plain ChatML messages in the ``smol`` dialect (tools in the system prompt, calls and
        results as tagged text), exactly as the host converts them (and the finetune server's trainer)."""
        return smol_messages(self.messages, self.openai_tools())

    def text(self, tokenizer: Any) -> str:
        """The whole conversation as the model reads it (the training text)."""
        return tokenizer.apply_chat_template(self.smol_messages(), tokenize=False)

    def openai_tools(self) -> list[dict[str, Any]]:
        return [t.openai_tool() for t in self.tool_infos()]

    def calls(self) -> list[list[dict[str, Any]]]:
        """The calls of each assistant turn that calls tools: ``[[{"name", "arguments"}]]``."""
        out = []
        for m in self.messages:
            if m["role"] == "assistant" and m.get("tool_calls"):
                out.append([{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                            for c in m["tool_calls"]])
        return out

    def turns(self) -> list[tuple[list[dict[str, str]], dict[str, str]]]:
        """(prompt messages, assistant message) for every assistant turn, in the smol dialect."""
        smol = self.smol_messages()
        return [(smol[:i], m) for i, m in enumerate(smol) if m["role"] == "assistant"]


def tool_dict(tool: ToolInfo) -> dict[str, Any]:
    return {"name": tool.name, "server": tool.server, "description": tool.description,
            "input_schema": tool.input_schema}


def record_tools(record: dict[str, Any]) -> list[ToolInfo]:
    """The tools a dataset record offered (the inverse of :func:`tool_dict`)."""
    return [ToolInfo(t["name"], t.get("server", ""), t["name"], t["description"], t["input_schema"])
            for t in record["tools"]]


class Builder:
    """Appends turns in the shape the host's loop gives them (``ModelTurn.message()``, tool messages)."""

    def __init__(self, system: str = SYSTEM_PROMPT) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        self._ids = 0

    def user(self, text: str) -> Builder:
        self.messages.append({"role": "user", "content": text})
        return self

    def call(self, calls: list[dict[str, Any]], thought: str = "") -> list[str]:
        ids = []
        entries = []
        for c in calls:
            self._ids += 1
            ids.append(f"call_{self._ids}")
            entries.append({"id": ids[-1], "type": "function", "function": {
                "name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}})
        self.messages.append({"role": "assistant", "content": thought or None, "tool_calls": entries})
        return ids

    def result(self, call_id: str, name: str, text: str) -> Builder:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": text})
        return self

    def answer(self, text: str) -> Builder:
        self.messages.append({"role": "assistant", "content": text})
        return self
