"""The built-in ("smol") tool-calling format, as plain messages: what a model whose chat template
knows no tools is shown, at inference (the host's local backend) and in training (finetune SFT
data with ``tools``), so an adapter learns exactly the format it will be prompted with.

Tools go into the system prompt as JSON inside ``<tools></tools>``; an assistant's calls are
``<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>``; tool results come back in a
user turn inside ``<tool_response></tool_response>``. Input messages use the OpenAI shape
(``tool_calls`` with ``function.name`` / ``function.arguments``; role ``tool``).

This is the one implementation: the host's local backend (``host/backends/formats.py``,
dialect ``smol``) and finetune's training data (``servers/finetune/chat_format.py``) both call
:func:`smol_messages`. ``tests/finetune/test_finetune_config.py`` pins its rendering through
the model's chat template and checks that training text = host prompt + answer.
"""

from __future__ import annotations

import json
from typing import Any

SMOL_TOOLS_PROMPT = """You can call tools (functions). They are listed as JSON inside <tools></tools>:
<tools>{tools}</tools>

To call tools, reply with nothing but a JSON list of calls inside <tool_call></tool_call>, for example:
<tool_call>[{{"name": "tool_name", "arguments": {{"argument": "value"}}}}]</tool_call>
Use only the tools listed and give every required argument. Tool results come back inside
<tool_response></tool_response>. When no tool is needed, or the results answer the question,
reply in plain text without a tool call."""


def clean_schema(schema: Any, drop: tuple[str, ...] = ("title",)) -> Any:
    """A copy without ``title`` keys (noise for a model, and tokens), or whichever string-valued
    keywords ``drop`` names; a property called so stays (its value is a schema, not a string)."""
    if isinstance(schema, dict):
        return {k: clean_schema(v, drop) for k, v in schema.items() if not (k in drop and isinstance(v, str))}
    if isinstance(schema, list):
        return [clean_schema(v, drop) for v in schema]
    return schema


def prompt_schema(schema: Any) -> Any:
    """The schema as the smol prompt lists it: no ``title`` nor ``pattern`` (the grammar enforces a
    pattern; a small model reading the regex only copies it)."""
    return clean_schema(schema, ("title", "pattern"))


def tool_json(tool: dict[str, Any]) -> dict[str, Any]:
    """``{name, description, parameters}`` from an OpenAI tool (``{type: function, function: {...}}``) or a
    plain ``{name, description, parameters | input_schema}``."""
    spec = tool.get("function", tool) if isinstance(tool, dict) else {}
    params = spec.get("parameters", spec.get("input_schema", {"type": "object", "properties": {}}))
    return {"name": spec.get("name", ""), "description": spec.get("description", "") or "",
            "parameters": prompt_schema(params)}


def call_arguments(call: dict[str, Any]) -> Any:
    """A call's ``arguments`` (or ``parameters``), decoded when it is a JSON string."""
    args = call.get("arguments", call.get("parameters", {}))
    if isinstance(args, str):
        try:
            return json.loads(args)
        except json.JSONDecodeError:
            return args
    return args


def smol_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Plain ``{role, content}`` messages carrying tools, calls and results in the smol format, ready for
    any chat template. ``messages`` are OpenAI-shaped; ``tools`` are OpenAI tools or plain
    ``{name, description, parameters}`` (the host passes ``ToolInfo.openai_tool()``); no tools: calls
    and results are written as plain text."""
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
            calls = [{"name": c["function"]["name"], "arguments": call_arguments(c["function"])} for c in m["tool_calls"]]
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
        listing = json.dumps([tool_json(t) for t in tools], ensure_ascii=False)
        system = (system + "\n\n" + SMOL_TOOLS_PROMPT.format(tools=listing)).strip()
    if system:
        out.insert(0, {"role": "system", "content": system})
    return out
