"""Tool-calling dialects for local models: how tools go into the prompt, how calls come out,
and the structural tag that constrains decoding to schema-valid calls.

* ``smol``: the built-in format (SmolLM2 was trained on it; used for any model whose chat
  template knows no tools): tools as JSON in ``<tools></tools>`` in the system prompt, calls
  as ``<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>``, results as
  ``<tool_response>...</tool_response>`` in a user turn.
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

Dialect = Literal["smol", "hermes", "json"]

SMOL_TOOLS_PROMPT = """You can call tools (functions). They are listed as JSON inside <tools></tools>:
<tools>{tools}</tools>

To call tools, reply with nothing but a JSON list of calls inside <tool_call></tool_call>, for example:
<tool_call>[{{"name": "tool_name", "arguments": {{"argument": "value"}}}}]</tool_call>
Use only the tools listed and give every required argument. Tool results come back inside
<tool_response></tool_response>. When no tool is needed, or the results answer the question,
reply in plain text without a tool call."""

TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def detect_dialect(tokenizer: Any) -> Dialect:
    template = str(getattr(tokenizer, "chat_template", "") or "")
    if "tools" not in template:
        return "smol"
    return "hermes" if "<tool_call>" in template else "json"


def clean_schema(schema: Any) -> Any:
    """A copy without ``title`` keys (noise for a model, and tokens)."""
    if isinstance(schema, dict):
        return {k: clean_schema(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]
    return schema


def _tool_json(tool: ToolInfo) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": clean_schema(tool.input_schema)}


def _arguments(call: dict[str, Any]) -> Any:
    args = call.get("arguments", call.get("parameters", {}))
    if isinstance(args, str):
        try:
            return json.loads(args)
        except json.JSONDecodeError:
            return args
    return args


# ---------------------------------------------------------------- prompts

def render_messages(
    messages: list[dict[str, Any]], tools: list[ToolInfo], dialect: Dialect, tokenizer: Any
) -> str:
    """The prompt text for the model (generation prompt included)."""
    if dialect == "smol":
        return tokenizer.apply_chat_template(_smol_messages(messages, tools), add_generation_prompt=True, tokenize=False)
    converted = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [
                {"type": "function", "function": {"name": c["function"]["name"], "arguments": _arguments(c["function"])}}
                for c in m["tool_calls"]
            ]
            converted.append({"role": "assistant", "content": m.get("content") or "", "tool_calls": calls})
        else:
            converted.append({k: v for k, v in m.items() if k in ("role", "content", "name", "tool_call_id")})
    return tokenizer.apply_chat_template(
        converted, tools=[t.openai_tool() for t in tools] or None, add_generation_prompt=True, tokenize=False
    )


def _smol_messages(messages: list[dict[str, Any]], tools: list[ToolInfo]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    system = ""
    pending: list[str] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            system = (system + "\n\n" + (m.get("content") or "")).strip()
            continue
        if role == "tool":
            if tools:
                pending.append(f"<tool_response>\n{m.get('content') or ''}\n</tool_response>")
            else:  # no tools offered: plain text, or a small model copies the tags into its answer
                pending.append(f"Result of {m.get('name') or 'the tool'}:\n{m.get('content') or ''}")
            continue
        if pending:
            out.append({"role": "user", "content": "\n".join(pending)})
            pending = []
        if role == "assistant" and m.get("tool_calls"):
            calls = [{"name": c["function"]["name"], "arguments": _arguments(c["function"])} for c in m["tool_calls"]]
            text = (m.get("content") or "").strip()
            if tools:
                body = f"<tool_call>{json.dumps(calls, ensure_ascii=False)}</tool_call>"
            else:
                body = "; ".join(f"(called {c['name']} with {json.dumps(c['arguments'], ensure_ascii=False)})" for c in calls)
            out.append({"role": "assistant", "content": f"{text}\n{body}".strip()})
        else:
            out.append({"role": role, "content": m.get("content") or ""})
    if pending:
        out.append({"role": "user", "content": "\n".join(pending)})
    if tools:
        listing = json.dumps([_tool_json(t) for t in tools], ensure_ascii=False)
        system = (system + "\n\n" + SMOL_TOOLS_PROMPT.format(tools=listing)).strip()
    if system:
        out.insert(0, {"role": "system", "content": system})
    return out


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
            calls.append(ToolCall(id=new_call_id(), name=item["name"], arguments=_arguments(item)))
    return free, calls, ("; ".join(errors) or None)


# ---------------------------------------------------------------- constrained decoding

def _call_schema(tool: ToolInfo) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": clean_schema(tool.input_schema)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def structural_tag(tools: list[ToolInfo], dialect: Dialect, tool_choice: str, parallel: bool = True) -> dict[str, Any]:
    """An xgrammar structural tag: ``required`` = at least one schema-valid call, nothing else;
    ``auto`` = free text until ``<tool_call>``, then schema-valid JSON up to the closing tag."""
    ws = {"max_whitespace_cnt": 2}
    if dialect == "smol":
        items: dict[str, Any] = {"anyOf": [_call_schema(t) for t in tools]}
        array = {"type": "array", "items": items, "minItems": 1}
        if not parallel:
            array["maxItems"] = 1
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
        schema = {"anyOf": [
            {"type": "object", "properties": {"name": {"const": t.name}, "parameters": clean_schema(t.input_schema)},
             "required": ["name", "parameters"], "additionalProperties": False}
            for t in tools
        ]}
        fmt = {"type": "json_schema", "json_schema": schema, **ws}
    return {"type": "structural_tag", "format": copy.deepcopy(fmt)}
