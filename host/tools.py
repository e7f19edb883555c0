"""What the host does with tool definitions: validate arguments, pre-select the relevant few, and
the :class:`ToolView` strategy that decides how the tools are offered to the model."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import jsonschema
import numpy as np

from host.backends.base import ToolInfo

Embed = Callable[[list[str]], np.ndarray]  # texts -> L2-normalized rows


def validate_arguments(tool: ToolInfo, arguments: Any) -> str | None:
    """None when ``arguments`` satisfy the tool's ``inputSchema``, else a message for the model. A null
    optional argument counts as left out (Quiver's schemas list optional arguments without null;
    its servers accept null for them)."""
    if not isinstance(arguments, dict):
        return f"arguments for '{tool.name}' must be a JSON object, got {type(arguments).__name__}"
    required = tool.input_schema.get("required") or []
    arguments = {k: v for k, v in arguments.items() if v is not None or k in required}
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

    def __init__(self, embed: Embed) -> None:
        self.embed = embed
        self._cache: dict[str, np.ndarray] = {}

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            vecs = self.embed(missing)
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
        query = self.embed([question])[0]
        scores = tool_vecs @ query
        order = np.argsort(-scores, kind="stable")
        return [(tools[i], float(scores[i])) for i in order]

    def select(self, question: str, tools: list[ToolInfo], k: int, texts: dict[str, str] | None = None) -> list[ToolInfo]:
        if len(tools) <= k:
            return list(tools)
        return [t for t, _ in self.rank(question, tools, texts)[:k]]


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _properties(tool: ToolInfo) -> dict[str, Any]:
    return tool.input_schema.get("properties") or {}


def drop_unused_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without the ``$defs`` entries nothing refers to (after arguments were removed)."""
    defs = schema.get("$defs")
    if not defs:
        return schema
    body = {k: v for k, v in schema.items() if k != "$defs"}
    kept: dict[str, Any] = {}
    text = json.dumps(body)
    while True:  # a kept definition may refer to others
        more = {k: v for k, v in defs.items() if k not in kept and f"#/$defs/{k}\"" in text}
        if not more:
            break
        kept.update(more)
        text = json.dumps([body, kept])
    if kept:
        body["$defs"] = {k: defs[k] for k in defs if k in kept}
    return body


def pin_arguments(tool: ToolInfo, pinned: dict[str, Any], slim: bool = False) -> ToolInfo:
    """The tool as offered to the model when some arguments are fixed by the host (e.g. the
    knowledge base name): those leave the schema and are added back at call time. ``slim``
    also drops optional arguments (they keep their defaults): small models fill fewer wrong.
    Definitions (``$defs``) only the removed arguments used are dropped too."""
    props = _properties(tool)
    fixed = [k for k in pinned if k in props]
    required = [r for r in tool.input_schema.get("required") or [] if r not in fixed]
    if not fixed and not (slim and len(required) < len(props)):
        return tool
    schema = dict(tool.input_schema)
    schema["properties"] = {k: v for k, v in props.items() if k not in fixed and (not slim or k in required)}
    schema["required"] = required
    return replace(tool, input_schema=drop_unused_defs(schema))


SCALAR_TYPES = {"string", "integer", "number", "boolean"}
NO_REQUIRED_KEEP = 4  # scalar arguments the small view keeps for a tool that requires none


def _is_scalar(prop: dict[str, Any]) -> bool:
    if prop.get("type") in SCALAR_TYPES:
        return True
    options = prop.get("anyOf")
    return bool(options) and all(o.get("type") in SCALAR_TYPES | {"null"} and "$ref" not in o for o in options)


def small_model_view(tool: ToolInfo) -> ToolInfo:
    """The tool as a small local model is shown it (the view the shipped adapter was trained on):
    required arguments only (:func:`pin_arguments` with ``slim``); a tool that requires none keeps
    its first four scalar arguments (alternatives such as ``parse_document``'s path or content).
    Optional arguments keep their server-side defaults."""
    if tool.input_schema.get("required"):
        return pin_arguments(tool, {}, slim=True)
    props = _properties(tool)
    schema = dict(tool.input_schema)
    schema["properties"] = dict([(k, v) for k, v in props.items() if _is_scalar(v)][:NO_REQUIRED_KEEP])
    return replace(tool, input_schema=drop_unused_defs(schema))


@dataclass
class ToolView:
    """How the connected tools are offered to the model for one question.

    By default: all of them, or the ``preselect`` most similar to the question when there are
    more (small models choose far better among a few). A host can narrow the view: ``only``
    these tool names; ``notes`` appended to a tool's description (and ranked by instead of its
    own text); ``pinned`` arguments the host fills in itself (hidden from the model, added back
    to every call); ``slim`` schemas without optional arguments; ``small``: the small-model view
    (:func:`small_model_view`, what the shipped SmolLM2 adapter was trained on).
    """

    preselect: int
    embed: Embed | None = None  # needed only when pre-selection has to rank
    only: set[str] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    pinned: dict[str, Any] = field(default_factory=dict)
    slim: bool = False
    small: bool = False
    _selector: ToolSelector | None = field(default=None, repr=False)

    def offer(self, question: str, tools: list[ToolInfo]) -> list[ToolInfo]:
        """The tools to offer for ``question``, as the model will see them."""
        tools = [t for t in tools if self.only is None or t.name in self.only]
        tools = [replace(t, description=f"{t.description} {self.notes[t.name]}") if t.name in self.notes else t
                 for t in tools]
        if len(tools) > self.preselect:
            if self._selector is None:
                if self.embed is None:
                    raise ValueError("ToolView needs an embed function to pre-select among many tools")
                self._selector = ToolSelector(self.embed)
            tools = self._selector.select(question, tools, self.preselect, texts=self.notes)
        tools = [pin_arguments(t, self.pinned, self.slim) for t in tools]
        return [small_model_view(t) for t in tools] if self.small else tools

    def arguments(self, tool: ToolInfo, arguments: Any) -> Any:
        """A call's arguments with the pinned ones the tool takes added back."""
        if not isinstance(arguments, dict):
            return arguments
        return {**arguments, **{k: v for k, v in self.pinned.items() if k in _properties(tool)}}
