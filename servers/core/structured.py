"""JSON answers that follow a schema, from any generator.

``chat_json(generator, messages, schema)`` returns parsed, schema-checked objects:

- the local model (:class:`LocalGenerator`) decodes under an xgrammar grammar compiled
  from the JSON schema, so every token keeps the output valid; the only way to fail is
  running out of ``max_new_tokens`` (bound string lengths with ``maxLength`` to avoid it);
- an OpenAI-compatible endpoint gets ``response_format: {"type": "json_schema", ...}``
  (vLLM, SGLang and Ollama constrain with it);
- any other generator (a scripted one in tests, a custom class) answers freely and its
  text is parsed and checked.

Each reply says whether it was constrained and, when it is unusable, why.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jsonschema
import torch

from servers.core.errors import InvalidInput
from servers.core.generate import END_OF_TURN, EndpointGenerator, Generator, LocalGenerator, truncate_at_stop

GRAMMAR_CACHE = 32


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


class _Grammars:
    """xgrammar compilers per loaded model, and compiled schemas (LRU)."""

    def __init__(self) -> None:
        self._compilers: dict[int, Any] = {}
        self._compiled: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, generator: LocalGenerator, schema: dict[str, Any]) -> Any:
        import xgrammar as xgr

        key = (id(generator.lm), json.dumps(schema, sort_keys=True))
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
            compiler = self._compilers.get(id(generator.lm))
            if compiler is None:
                tok, model = generator.lm.tokenizer, generator.lm.model
                vocab = getattr(model.config, "vocab_size", None) or len(tok)
                info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=vocab, stop_token_ids=stop_ids(tok) or None)
                compiler = self._compilers[id(generator.lm)] = xgr.GrammarCompiler(info)
            compiled = compiler.compile_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=True)
            self._compiled[key] = compiled
            if len(self._compiled) > GRAMMAR_CACHE:
                self._compiled.popitem(last=False)
            return compiled


_grammars = _Grammars()
_local_lock = threading.Lock()


def stop_ids(tokenizer: Any) -> list[int]:
    """End-of-sequence and end-of-turn token ids of a tokenizer."""
    vocab = tokenizer.get_vocab()
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    ids |= {vocab[t] for t in END_OF_TURN if t in vocab}
    return sorted(i for i in ids if i is not None)


def _local(generator: LocalGenerator, messages: list[dict[str, Any]], schema: dict[str, Any], *,
           max_new_tokens: int, temperature: float, n: int, seed: int | None) -> list[JsonReply]:
    import xgrammar as xgr
    from transformers import GenerationConfig

    lm = generator.lm
    tok = lm.tokenizer
    compiled = _grammars.get(generator, schema)
    enc = tok(generator.prompt(messages), return_tensors="pt", add_special_tokens=False).to(lm.device)
    prompt_len = enc["input_ids"].shape[1]
    context = getattr(lm.model.config, "max_position_embeddings", None)
    if context and prompt_len + max_new_tokens > context:
        reason = (f"the prompt ({prompt_len} tokens) plus max_new_tokens ({max_new_tokens}) exceeds the model's "
                  f"context of {context} tokens; shorten the inputs or use a model with a longer context")
        return [JsonReply("", None, reason, True) for _ in range(n)]
    eos = stop_ids(tok)
    sample = temperature > 0
    replies = []
    with _local_lock, torch.inference_mode(), torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for _ in range(n if sample else 1):
            config = GenerationConfig(
                max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature if sample else None,
                top_p=1.0 if sample else None, top_k=0 if sample else None, eos_token_id=eos or None,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else (eos[0] if eos else 0),
            )
            processor = xgr.contrib.hf.LogitsProcessor(compiled)  # one per generate() call
            out = lm.model.generate(input_ids=enc["input_ids"], attention_mask=enc.get("attention_mask"),
                                    generation_config=config, logits_processor=[processor])
            new = out[0, prompt_len:]
            text = tok.decode(new, skip_special_tokens=True)
            reply = parse_reply(text, schema, constrained=True)
            if not reply.ok and len(new) >= max_new_tokens:
                reply.error = (f"the reply was cut off after max_new_tokens={max_new_tokens} tokens before the JSON "
                               "was complete; raise max_new_tokens or bound string lengths in the schema")
            replies.append(reply)
    return replies if sample else replies * n


def _endpoint(generator: EndpointGenerator, messages: list[dict[str, Any]], schema: dict[str, Any], *,
              max_new_tokens: int, temperature: float, n: int, seed: int | None) -> list[JsonReply]:
    payload: dict[str, Any] = {
        "model": generator._model_id(),  # noqa: SLF001 - same package: the endpoint client's model discovery
        "messages": messages, "max_tokens": max_new_tokens, "temperature": temperature, "n": n,
        "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}},
    }
    if seed is not None:
        payload["seed"] = seed
    data = generator._request("POST", "/chat/completions", payload)  # noqa: SLF001
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
