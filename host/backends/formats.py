"""Tool-calling dialects for local models: how tools go into the prompt, how calls come out,
and the structural tag that constrains decoding to schema-valid calls.

* ``smol``: the built-in format (SmolLM2 was trained on it; used for any model whose chat
  template knows no tools): tools as JSON in ``<tools></tools>`` in the system prompt, calls
  as ``<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>``, results as
  ``<tool_response>...</tool_response>`` in a user turn. Rendered by
  :func:`servers.core.tool_prompt.smol_messages`, the one implementation finetune trains with.
* ``hermes``: the model's own chat template rendered with ``tools=`` (Qwen2.5/3, Hermes,
  most recent instruct models); one ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``
  per call.
* ``json``: templates with tools but no ``<tool_call>`` tag (Llama 3.x): a bare JSON object
  ``{"name": ..., "parameters": ...}``.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal

from host.backends.base import ToolCall, ToolInfo, new_call_id
from servers.core.tool_prompt import call_arguments, clean_schema, smol_messages

Dialect = Literal["smol", "hermes", "json"]

TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def detect_dialect(tokenizer: Any) -> Dialect:
    template = str(getattr(tokenizer, "chat_template", "") or "")
    if "tools" not in template:
        return "smol"
    return "hermes" if "<tool_call>" in template else "json"


# ---------------------------------------------------------------- prompts

def render_messages(
    messages: list[dict[str, Any]], tools: list[ToolInfo], dialect: Dialect, tokenizer: Any
) -> str:
    """The prompt text for the model (generation prompt included)."""
    if dialect == "smol":
        smol = smol_messages(messages, [t.openai_tool() for t in tools])
        return tokenizer.apply_chat_template(smol, add_generation_prompt=True, tokenize=False)
    converted = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [
                {"type": "function", "function": {"name": c["function"]["name"], "arguments": call_arguments(c["function"])}}
                for c in m["tool_calls"]
            ]
            converted.append({"role": "assistant", "content": m.get("content") or "", "tool_calls": calls})
        else:
            converted.append({k: v for k, v in m.items() if k in ("role", "content", "name", "tool_call_id")})
    return tokenizer.apply_chat_template(
        converted, tools=[t.openai_tool() for t in tools] or None, add_generation_prompt=True, tokenize=False
    )


# ---------------------------------------------------------------- parsing

def parse_output(text: str, dialect: Dialect, known: set[str] | None = None) -> tuple[str, list[ToolCall], str | None]:
    """Split model output into (free text, tool calls, parse error or None)."""
    calls: list[ToolCall] = []
    errors: list[str] = []
    blocks = TOOL_CALL_RE.findall(text)
    free = TOOL_CALL_RE.sub("", text).strip()
    if not blocks and dialect == "json":
        stripped = text.strip()
        if stripped.startswith("{") and '"name"' in stripped:
            blocks, free = [stripped], ""
    for block in blocks:
        try:
            value = json.loads(block)
        except json.JSONDecodeError as exc:
            errors.append(f"tool call is not valid JSON ({exc.msg} at char {exc.pos}): {block[:200]}")
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                errors.append(f"tool call must be an object with 'name' and 'arguments': {json.dumps(item)[:200]}")
                continue
            calls.append(ToolCall(id=new_call_id(), name=item["name"], arguments=call_arguments(item)))
    return free, calls, ("; ".join(errors) or None)


# ---------------------------------------------------------------- constrained decoding

ROOT_DEF = "root"  # a tool schema that refers to itself (``"$ref": "#"``) moves under this name in the root's $defs


def _renamed_refs(node: Any, prefix: str) -> Any:
    """``node`` with every local ``$ref`` (``#/$defs/X`` or ``#/definitions/X``) pointing at
    ``#/$defs/{prefix}X``, and the tool schema's own root (``#``) at ``#/$defs/{prefix}root``."""
    if isinstance(node, dict):
        out = {k: _renamed_refs(v, prefix) for k, v in node.items()}
        ref = node.get("$ref")
        if ref == "#":
            out["$ref"] = f"#/$defs/{prefix}{ROOT_DEF}"
        elif isinstance(ref, str):
            for local in ("#/$defs/", "#/definitions/"):
                if ref.startswith(local):
                    out["$ref"] = f"#/$defs/{prefix}{ref[len(local):]}"
        return out
    if isinstance(node, list):
        return [_renamed_refs(v, prefix) for v in node]
    return node


def _hoisted(tools: list[ToolInfo]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each tool's argument schema, and the definitions they use gathered for the root of the
    combined schema: a ``$ref`` resolves from the root of the whole grammar's schema, where a
    tool's own ``$defs`` (pydantic's nested models, e.g. rerank's documents) are not. A schema that
    refers to its own root (a recursive tree: ``"$ref": "#"``) becomes a definition itself."""
    schemas, defs = [], {}
    for i, tool in enumerate(tools):
        schema = clean_schema(tool.input_schema)
        local = {**schema.pop("definitions", {}), **schema.pop("$defs", {})} if isinstance(schema, dict) else {}
        prefix = f"t{i}_"
        renamed = _renamed_refs(schema, prefix)
        if _refers_to_root(schema):
            defs[f"{prefix}{ROOT_DEF}"] = renamed
            renamed = {"$ref": f"#/$defs/{prefix}{ROOT_DEF}"}
        schemas.append(renamed)
        defs.update({f"{prefix}{name}": _renamed_refs(d, prefix) for name, d in local.items()})
    return schemas, defs


def _refers_to_root(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == "#" or any(_refers_to_root(v) for v in node.values())
    return isinstance(node, list) and any(_refers_to_root(v) for v in node)


def _call_schema(name: str, arguments: dict[str, Any], key: str = "arguments") -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, key: arguments},
        "required": ["name", key],
        "additionalProperties": False,
    }


def structural_tag(tools: list[ToolInfo], dialect: Dialect, tool_choice: str, parallel: bool = True) -> dict[str, Any]:
    """An xgrammar structural tag: ``required`` = at least one schema-valid call, nothing else;
    ``auto`` = free text until ``<tool_call>``, then schema-valid JSON up to the closing tag."""
    ws = {"max_whitespace_cnt": 2}
    if dialect == "smol":
        schemas, defs = _hoisted(tools)
        items: dict[str, Any] = {"anyOf": [_call_schema(t.name, a) for t, a in zip(tools, schemas, strict=True)]}
        array: dict[str, Any] = {"type": "array", "items": items, "minItems": 1}
        if not parallel:
            array["maxItems"] = 1
        if defs:
            array["$defs"] = defs
        tag = {"type": "tag", "begin": "<tool_call>", "content": {"type": "json_schema", "json_schema": array, **ws},
               "end": "</tool_call>"}
        if tool_choice == "required":
            fmt: dict[str, Any] = tag
        else:
            fmt = {"type": "triggered_tags", "triggers": ["<tool_call>"], "tags": [tag], "stop_after_first": True}
    elif dialect == "hermes":
        tags = [
            {
                "type": "tag",
                "begin": f'<tool_call>\n{{"name": "{t.name}", "arguments": ',
                "content": {"type": "json_schema", "json_schema": clean_schema(t.input_schema), **ws},
                "end": "}\n</tool_call>",
            }
            for t in tools
        ]
        fmt = {"type": "triggered_tags", "triggers": ["<tool_call>"], "tags": tags,
               "at_least_one": tool_choice == "required", "stop_after_first": not parallel}
    else:
        schemas, defs = _hoisted(tools)
        schema: dict[str, Any] = {"anyOf": [_call_schema(t.name, a, "parameters")
                                            for t, a in zip(tools, schemas, strict=True)]}
        if defs:
            schema["$defs"] = defs
        fmt = {"type": "json_schema", "json_schema": schema, **ws}
    return {"type": "structural_tag", "format": copy.deepcopy(fmt)}
