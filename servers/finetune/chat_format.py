"""Chat templates for training: assistant-only masks that really mask, and an end-of-turn token
that is really learned.

TRL computes the assistant mask from ``{% generation %}`` markers in the chat template. Most
shipped templates have none (SmolLM2's ChatML has none), and a template without them either
fails or, worse, trains on nothing or everything. :func:`training_template` returns a template
with markers that renders *exactly* like the model's own (checked on probe conversations), and
:func:`check_masking` verifies on real rows that the mask covers assistant text and the
end-of-turn token and nothing of the prompt.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from servers.core.tool_prompt import smol_messages

CHATML_TRAINING = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' and default_system %}"
    "{{ '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
DEFAULT_SYSTEM_RE = re.compile(r"<\|im_start\|>system(?:\\n|\n)(.*?)<\|im_end\|>", re.DOTALL)

PROBES: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"},
     {"role": "assistant", "content": "6"}],
]


class TemplateChoice(BaseModel):
    template: str | None = Field(description="the template to train with; None = the model's own")
    source: str = Field(description="model (already has markers), quiver-chatml, trl, or none")
    tool_dialect: str = Field(description="native (the template renders tools) or smol (Quiver's tool format)")
    assistant_only: bool = Field(description="whether assistant-only masking is possible with this template")
    note: str = ""


def supports_tools(tokenizer: Any) -> bool:
    from trl.chat_template_utils import supports_tool_calling

    try:
        return bool(supports_tool_calling(tokenizer))
    except Exception:
        return False


def _renders_same(tokenizer: Any, template: str) -> bool:
    for probe in PROBES:
        for gen in (False, True):
            msgs = probe if not gen else probe[:-1]
            try:
                a = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
                b = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen, chat_template=template)
            except Exception:
                return False
            if a != b:
                return False
    return True


def training_template(tokenizer: Any) -> TemplateChoice:
    """Pick a chat template with generation markers that renders like the model's own."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    own = tokenizer.chat_template
    dialect = "native" if supports_tools(tokenizer) else "smol"
    if own and has_generation_markers(own):
        return TemplateChoice(template=None, source="model", tool_dialect=dialect, assistant_only=True)
    if own and "<|im_start|>" in str(own) and dialect == "smol":
        match = DEFAULT_SYSTEM_RE.search(str(own))
        default_system = match.group(1) if match else ""
        default_system = default_system.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        candidate = "{% set default_system = '" + default_system + "' %}" + CHATML_TRAINING
        if _renders_same(tokenizer, candidate):
            return TemplateChoice(template=candidate, source="quiver-chatml", tool_dialect=dialect, assistant_only=True)
    if own:
        try:
            patched = get_training_chat_template(tokenizer)
        except (ValueError, Exception):  # noqa: B014 - TRL raises ValueError for templates it cannot patch
            patched = None
        if patched:
            return TemplateChoice(template=patched, source="trl", tool_dialect=dialect, assistant_only=True)
    return TemplateChoice(
        template=None, source="none", tool_dialect=dialect, assistant_only=False,
        note="the chat template has no {% generation %} markers and none could be derived: the loss covers the "
        "whole conversation (prompts included); give the model a template with markers to train on answers only",
    )


def to_training_messages(row: dict[str, Any], dialect: str) -> dict[str, Any]:
    """A `messages` (+ `tools`) row as the trainer will see it: smol rows carry tools inside the messages."""
    if dialect == "smol" and ("tools" in row or any(m.get("tool_calls") or m.get("role") == "tool"
                                                     for m in row["messages"])):
        return {"messages": smol_messages(row["messages"], row.get("tools") or None)}
    out = {"messages": [_plain(m) for m in row["messages"]]}
    if row.get("tools"):
        out["tools"] = row["tools"]
    return out


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    keep = ("role", "content", "tool_calls", "name", "tool_call_id")
    return {k: v for k, v in message.items() if k in keep and v is not None}


class MaskCheck(BaseModel):
    rows_checked: int
    assistant_only: bool
    template_source: str
    tool_dialect: str
    eos_token: str | None
    end_of_turn_learned: bool = Field(description="every assistant turn's masked span ends with the end-of-turn token")
    prompt_tokens_masked: bool = Field(description="no prompt/user/system token is inside the loss mask")
    masked_fraction: float = Field(description="share of tokens that carry loss")
    problems: list[str] = Field(default_factory=list)
    example: str = Field(default="", description="the first row rendered, loss-bearing spans in [[...]]")


def check_masking(tokenizer: Any, rows: list[dict[str, Any]], limit: int = 20) -> MaskCheck:
    """Render up to ``limit`` `messages` rows with the training template and check the loss mask."""
    choice = training_template(tokenizer)
    problems: list[str] = []
    eot_ok, prompt_ok = True, True
    masked = total = 0
    example = ""
    eos = tokenizer.eos_token
    if choice.note:
        problems.append(choice.note)
    checked = 0
    for row in rows[:limit]:
        conv = to_training_messages(row, choice.tool_dialect)
        if not choice.assistant_only:
            break
        out = tokenizer.apply_chat_template(
            conv["messages"], tools=conv.get("tools"), tokenize=True, return_dict=True,
            return_assistant_tokens_mask=True, chat_template=choice.template,
        )
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        checked += 1
        masked += sum(mask)
        total += len(mask)
        spans = _spans(mask)
        n_assistant = sum(1 for m in conv["messages"] if m["role"] == "assistant")
        if len(spans) != n_assistant:
            prompt_ok = False
            problems.append(f"row {checked}: {len(spans)} loss spans for {n_assistant} assistant turns")
        for start, end in spans:
            last = tokenizer.decode(ids[end - 1 : end])
            if eos and last.strip() != eos:
                eot_ok = False
            text = tokenizer.decode(ids[start:end])
            if "<|im_start|>" in text or "user\n" in text[:6]:
                prompt_ok = False
        if not example:
            example = _render_spans(tokenizer, ids, spans)
    if not eot_ok:
        problems.append(f"an assistant turn's loss span does not end with the end-of-turn token {eos!r}: "
                        "the model would not learn to stop")
    return MaskCheck(
        rows_checked=checked, assistant_only=choice.assistant_only, template_source=choice.source,
        tool_dialect=choice.tool_dialect, eos_token=eos, end_of_turn_learned=eot_ok and checked > 0,
        prompt_tokens_masked=prompt_ok and checked > 0, masked_fraction=round(masked / total, 4) if total else 0.0,
        problems=problems, example=example[:2000],
    )


def _spans(mask: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    return spans


def _render_spans(tokenizer: Any, ids: list[int], spans: list[tuple[int, int]]) -> str:
    parts, pos = [], 0
    for start, end in spans:
        parts.append(tokenizer.decode(ids[pos:start]))
        parts.append("[[" + tokenizer.decode(ids[start:end]) + "]]")
        pos = end
    parts.append(tokenizer.decode(ids[pos:]))
    return "".join(parts)
