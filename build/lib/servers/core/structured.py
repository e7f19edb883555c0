"""JSON answers that follow a schema, from any generator.

``chat_json(generator, messages, schema)`` returns parsed, schema-checked objects:

- the local model (:class:`LocalGenerator`) decodes with the core decoding loop under an
  xgrammar grammar compiled from the JSON schema, so every token keeps the output valid; the only way to fail is
  running out of ``max_new_tokens`` (bound string lengths with ``maxLength`` to avoid it);
- an OpenAI-compatible endpoint gets ``response_format: {"type": "json_schema", ...}``
  (vLLM, SGLang and Ollama constrain with it);
- any other generator (a scripted one in tests, a custom class) answers freely and its
  text is parsed and checked.

Each reply says whether it was constrained and, when it is unusable, why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonschema

from servers.core.errors import InvalidInput
from servers.core.generate import EndpointGenerator, Generator, LocalGenerator
from servers.core.text import truncate_at_stop


@dataclass
class JsonReply:
    """One completion: the text, the parsed value when it is valid, else the reason it is not."""

    text: str
    value: Any | None
    error: str | None
    constrained: bool

    @property
    def ok(self) -> bool:
        return self.error is None


def check_schema(schema: dict[str, Any]) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidInput(f"the JSON schema is invalid: {exc.message}") from exc


def parse_reply(text: str, schema: dict[str, Any], *, constrained: bool) -> JsonReply:
    """Parse the first JSON value in ``text`` and check it against ``schema``."""
    stripped = text.strip()
    start = min((i for i in (stripped.find("{"), stripped.find("[")) if i != -1), default=-1)
    if start == -1:
        return JsonReply(text, None, "the reply holds no JSON object", constrained)
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped[start:])
    except json.JSONDecodeError as exc:
        return JsonReply(text, None, f"the reply is not valid JSON ({exc.msg} at character {exc.pos})", constrained)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "the object"
        return JsonReply(text, None, f"the reply does not match the schema: {where}: {errors[0].message}", constrained)
    return JsonReply(text, value, None, constrained)


def _local(generator: LocalGenerator, messages: list[dict[str, Any]], schema: dict[str, Any], *,
           max_new_tokens: int, temperature: float, n: int, seed: int | None) -> list[JsonReply]:
    decoder = generator.decoder  # the core decoding loop, with the schema's grammar
    prompt = decoder.prompt(messages)
    prompt_len = decoder.count_tokens(prompt)
    context = getattr(decoder.model.config, "max_position_embeddings", None)
    if context and prompt_len + max_new_tokens > context:
        reason = (f"the prompt ({prompt_len} tokens) plus max_new_tokens ({max_new_tokens}) exceeds the model's "
                  f"context of {context} tokens; shorten the inputs or use a model with a longer context")
        return [JsonReply("", None, reason, True) for _ in range(n)]
    grammar = decoder.compile_json_schema(schema)
    sample = temperature > 0
    replies = []
    for i in range(n if sample else 1):  # one sample at a time under a grammar; sample i is seeded seed + i
        out = decoder.decode(prompt, grammar=grammar, max_new_tokens=max_new_tokens, temperature=temperature,
                             seed=None if seed is None else seed + i)
        reply = parse_reply(out.texts[0], schema, constrained=True)
        if not reply.ok and out.new_tokens >= max_new_tokens:
            reply.error = (f"the reply was cut off after max_new_tokens={max_new_tokens} tokens before the JSON "
                           "was complete; raise max_new_tokens or bound string lengths in the schema")
        replies.append(reply)
    return replies if sample else replies * n


def _endpoint(generator: EndpointGenerator, messages: list[dict[str, Any]], schema: dict[str, Any], *,
              max_new_tokens: int, temperature: float, n: int, seed: int | None) -> list[JsonReply]:
    payload: dict[str, Any] = {
        "model": generator.client.model_id(),
        "messages": messages, "max_tokens": max_new_tokens, "temperature": temperature, "n": n,
        "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}},
    }
    if seed is not None:
        payload["seed"] = seed
    data = generator.client.request("POST", "/chat/completions", payload)
    texts = [((c.get("message") or {}).get("content") or "") for c in data.get("choices") or [] if isinstance(c, dict)]
    replies = [parse_reply(t, schema, constrained=True) for t in texts]
    while len(replies) < n:  # servers that ignore n
        replies += _endpoint(generator, messages, schema, max_new_tokens=max_new_tokens, temperature=temperature,
                             n=1, seed=None if seed is None else seed + len(replies))
    return replies[:n]


def chat_json(
    generator: Generator,
    messages: list[dict[str, Any]],
    schema: dict[str, Any],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    n: int = 1,
    seed: int | None = None,
) -> list[JsonReply]:
    """``n`` replies to ``messages`` as JSON following ``schema`` (constrained where the generator allows)."""
    check_schema(schema)
    if max_new_tokens < 1 or n < 1 or temperature < 0:
        raise InvalidInput("max_new_tokens and n must be >= 1 and temperature >= 0")
    kwargs = {"max_new_tokens": max_new_tokens, "temperature": temperature, "n": n, "seed": seed}
    if isinstance(generator, LocalGenerator):
        return _local(generator, messages, schema, **kwargs)
    if isinstance(generator, EndpointGenerator):
        return _endpoint(generator, messages, schema, **kwargs)
    texts = generator.chat(messages, **kwargs)
    return [parse_reply(truncate_at_stop(t, None), schema, constrained=False) for t in texts]
