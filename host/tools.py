"""What the host does with tool definitions: validate arguments, pre-select the relevant few."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import numpy as np

from host.connections import ToolInfo


def validate_arguments(tool: ToolInfo, arguments: Any) -> str | None:
    """None when ``arguments`` satisfy the tool's ``inputSchema``, else a message for the model."""
    if not isinstance(arguments, dict):
        return f"arguments for '{tool.name}' must be a JSON object, got {type(arguments).__name__}"
    try:
        validator_cls = jsonschema.validators.validator_for(tool.input_schema, default=jsonschema.Draft202012Validator)
        errors = sorted(validator_cls(tool.input_schema).iter_errors(arguments), key=lambda e: list(e.path))
    except jsonschema.SchemaError:
        return None  # a broken schema is the server's problem; let it judge the call
    if not errors:
        return None
    parts = []
    for err in errors[:3]:
        where = "/".join(str(p) for p in err.path) or "arguments"
        parts.append(f"{where}: {err.message}")
    required = tool.input_schema.get("required") or []
    hint = f" (required: {', '.join(required)})" if required else ""
    return f"invalid arguments for '{tool.name}': " + "; ".join(parts) + hint


def tool_text(tool: ToolInfo) -> str:
    """The text embedded for pre-selection: name words, description, parameter names."""
    props = (tool.input_schema.get("properties") or {}).keys()
    return f"{tool.remote_name.replace('_', ' ')}: {tool.description} ({', '.join(props)})"


class ToolSelector:
    """Pre-selects the tools most similar to a question (cosine over MiniLM embeddings).

    Small models choose far better among a few tools than among dozens; embeddings of tool
    texts are cached by content.
    """

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self._cache: dict[str, np.ndarray] = {}

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            vecs = self.embedder.encode(missing, normalize_embeddings=True, convert_to_numpy=True)
            for text, vec in zip(missing, vecs, strict=True):
                self._cache[text] = vec
        return np.stack([self._cache[t] for t in texts])

    def rank(
        self, question: str, tools: list[ToolInfo], texts: dict[str, str] | None = None
    ) -> list[tuple[ToolInfo, float]]:
        """Tools by similarity to the question; ``texts`` replaces a tool's text (host notes)."""
        if not tools:
            return []
        texts = texts or {}
        tool_vecs = self._embed([texts.get(t.name) or tool_text(t) for t in tools])
        query = self.embedder.encode([question], normalize_embeddings=True, convert_to_numpy=True)[0]
        scores = tool_vecs @ query
        order = np.argsort(-scores, kind="stable")
        return [(tools[i], float(scores[i])) for i in order]

    def select(self, question: str, tools: list[ToolInfo], k: int, texts: dict[str, str] | None = None) -> list[ToolInfo]:
        if len(tools) <= k:
            return list(tools)
        return [t for t, _ in self.rank(question, tools, texts)[:k]]


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
