"""The one local decoding loop, used by every local text generation (``LocalGenerator`` for the
servers, the host's local chat backend).

A plain KV-cached loop, one forward pass per token, so that the chat template, the stop
conditions (end-of-turn tokens, stop strings, a finished grammar), grammar-constrained
decoding (xgrammar token masks), sampling and token streaming are all in one place.
``n`` samples decode together as one batch.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servers.core.errors import InvalidInput, TooLarge

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from servers.core.models import LoadedLM

# End-of-turn tokens of common chat formats (ChatML, Llama 3, Phi); decoding stops at any of them.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>")
GRAMMAR_CACHE = 64
# A prompt this many times longer (in characters) than the context cannot fit: refused before tokenizing it.
MAX_CHARS_PER_TOKEN = 64


@dataclass
class Decoded:
    """What one :meth:`Decoder.decode` call produced."""

    texts: list[str]  # one per sample, special tokens removed, not cut at stop strings
    prompt_tokens: int
    new_tokens: int  # over all samples
    ttft_s: float | None  # time to the first new token


@dataclass
class Prefilled:
    """A prompt already run through the model: its tokens, KV cache and next-token logits, so that
    :meth:`Decoder.decode` continues from it instead of running the prompt again (the host reads its
    call probability from the same pass). Decoding extends the cache, so it serves one decode;
    ``used`` is then true (also when a continuation was scored on a cache that cannot be cut back)."""

    prompt: str
    ids: list[int]
    cache: Any
    logits: Any  # [1, vocab] float logits of the token after the prompt
    used: bool = False


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's end-of-sequence id plus every end-of-turn token it knows."""
    vocab = tokenizer.get_vocab()
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    ids |= {vocab[t] for t in END_OF_TURN if t in vocab}
    return sorted(i for i in ids if i is not None)


class Decoder:
    """Prompts and decoding for one loaded causal LM; one decode at a time (a lock per model)."""

    def __init__(self, lm: LoadedLM) -> None:
        self.lm = lm
        self.tokenizer = lm.tokenizer
        self.model = lm.model
        self.stop_ids = stop_token_ids(self.tokenizer)
        # transformers renamed the KV-cache argument (past_key_values -> cache); use what this version takes
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._pad = self.stop_ids[0] if self.stop_ids else 0
        self._compiler: Any = None
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._grammar_lock = threading.Lock()
        self._lock = threading.Lock()

    def prompt(self, messages: list[dict[str, Any]], **template: Any) -> str:
        """The exact text the model sees: its chat template with the generation prompt."""
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **template)

    def context_tokens(self) -> int | None:
        """The model's context length in tokens (prompt plus new tokens), when its config says."""
        value = getattr(self.model.config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a prompt (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def compile(self, structural_tag: dict[str, Any]) -> Any:
        """An xgrammar structural tag compiled for this tokenizer (cached, most recent first)."""
        return self._grammar("tag", structural_tag)

    def compile_json_schema(self, schema: dict[str, Any]) -> Any:
        """A grammar admitting exactly the JSON values of ``schema`` (no extra whitespace; cached)."""
        return self._grammar("schema", schema)

    def _grammar(self, kind: str, spec: dict[str, Any]) -> Any:
        import xgrammar as xgr

        key = kind + json.dumps(spec, sort_keys=True)
        with self._grammar_lock:
            if key in self._grammars:
                self._grammars.move_to_end(key)
                return self._grammars[key]
            if self._compiler is None:
                vocab = getattr(self.model.config, "vocab_size", None) or len(self.tokenizer)
                info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=vocab, stop_token_ids=self.stop_ids)
                self._compiler = xgr.GrammarCompiler(info)
            if kind == "tag":
                compiled = self._compiler.compile_structural_tag(json.dumps(spec))
            else:
                compiled = self._compiler.compile_json_schema(json.dumps(spec), any_whitespace=False, strict_mode=True)
            self._grammars[key] = compiled
            if len(self._grammars) > GRAMMAR_CACHE:
                self._grammars.popitem(last=False)
            return compiled

    def prefill(self, prompt: str) -> Prefilled:
        """Run ``prompt`` through the model once and keep its KV cache (see :class:`Prefilled`)."""
        import torch

        context = self.context_tokens()
        if context and len(prompt) > context * MAX_CHARS_PER_TOKEN:
            raise _too_long(f"{len(prompt):,} characters", context, 0)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise InvalidInput("prefill needs a non-empty prompt")
        if context and len(ids) > context:
            raise _too_long(f"{len(ids):,} tokens", context, 0)
        with self._lock, torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.lm.device), use_cache=True)
        return Prefilled(prompt=prompt, ids=ids, cache=getattr(out, self._cache_arg), logits=out.logits[:, -1, :].float())

    def continuation_probability(self, prompt: str | Prefilled, continuation: str) -> float:
        """P(``continuation`` comes next after ``prompt``), its tokens teacher-forced in one forward pass
        (e.g. how likely the model is to open a tool call: ``continuation="<tool_call>"``). Given a
        :class:`Prefilled` prompt, only the continuation runs, and the cache is left as it was."""
        import torch

        tok = self.tokenizer
        tail = tok(continuation, add_special_tokens=False)["input_ids"]
        if isinstance(prompt, Prefilled):
            if prompt.used or not tail:
                raise InvalidInput("continuation_probability needs an unused prefilled prompt and a continuation")
            context = self.context_tokens()
            if context and len(prompt.ids) + len(tail) > context:
                raise _too_long(f"{len(prompt.ids) + len(tail):,} tokens", context, 0)
            logp = [torch.log_softmax(prompt.logits[0], dim=-1)[tail[0]]]
            if len(tail) > 1:
                with self._lock, torch.inference_mode():
                    out = self.model(input_ids=torch.tensor([tail[:-1]], device=self.lm.device), use_cache=True,
                                     **{self._cache_arg: prompt.cache})
                    try:  # back to the prompt alone (negative: tokens to drop)
                        prompt.cache.crop(-(len(tail) - 1))
                    except (AttributeError, ValueError, NotImplementedError):
                        prompt.used = True  # a cache that cannot be cut back: decode() runs the prompt again
                steps = torch.log_softmax(out.logits[0].float(), dim=-1)
                logp += [steps[i, t] for i, t in enumerate(tail[1:])]
            return float(torch.exp(sum(logp)))
        head = tok(prompt, add_special_tokens=False)["input_ids"]  # tokenized apart, as decode() continues a prompt
        if not head or not tail:
            raise InvalidInput("continuation_probability needs a prompt and a non-empty continuation")
        context = self.context_tokens()
        if context and len(head) + len(tail) > context:
            raise _too_long(f"{len(head) + len(tail):,} tokens", context, 0)
        ids = torch.tensor([head + tail], device=self.lm.device)
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, len(head) - 1:-1].float()
        logp = torch.log_softmax(logits, dim=-1)
        return float(torch.exp(sum(logp[i, t] for i, t in enumerate(tail))))

    def decode(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        n: int = 1,
        seed: int | None = None,
        stop: tuple[str, ...] | list[str] = (),
        grammar: Any = None,
        stop_when_complete: bool = False,
        repetition_penalty: float = 1.0,
        on_token: Callable[[str], None] | None = None,
        ban_first: Sequence[int] = (),
        prefilled: Prefilled | None = None,
    ) -> Decoded:
        """Generate up to ``max_new_tokens`` after ``prompt``: greedy at temperature 0, else sampled
        (seeded when ``seed`` is given); ``n`` samples at once. A sample ends at an end-of-turn token
        or once its text contains a ``stop`` string. With a ``grammar`` (from :meth:`compile`; one
        sample only) every token is masked to what the grammar allows, and ``stop_when_complete``
        ends as soon as it is matched. ``repetition_penalty`` applies to unconstrained tokens;
        ``on_token`` receives the text as it grows (one sample only); ``ban_first``: token ids the first
        token may not be (an answer that must not open with a tool-call tag); ``prefilled``: this prompt
        already run by :meth:`prefill` (one sample; its cache is extended, so it serves once)."""
        import torch

        if n < 1 or max_new_tokens < 1:
            raise InvalidInput(f"n and max_new_tokens must be >= 1 (got {n}, {max_new_tokens})")
        if grammar is not None and n != 1:
            raise InvalidInput("grammar-constrained decoding takes one sample at a time (n = 1)")
        if prefilled is not None and (prefilled.used or prefilled.prompt != prompt or n != 1):
            raise InvalidInput("a prefilled prompt continues one decode of the same prompt, once")
        tok = self.tokenizer
        device = self.lm.device
        context = self.context_tokens()
        if context and len(prompt) > context * MAX_CHARS_PER_TOKEN:
            raise _too_long(f"{len(prompt):,} characters", context, max_new_tokens)
        if prefilled is not None:
            ids = torch.tensor([prefilled.ids], device=device)
        else:
            ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
        n_prompt = int(ids.shape[1])
        if context and n_prompt + max_new_tokens > context:
            raise _too_long(f"{n_prompt:,} tokens", context, max_new_tokens)
        ids = ids.repeat(n, 1)
        matcher = bitmask = xgr = None
        if grammar is not None:
            import xgrammar as xgr

            matcher = xgr.GrammarMatcher(grammar, terminate_without_stop_token=stop_when_complete)
            bitmask = xgr.allocate_token_bitmask(1, grammar.tokenizer_info.vocab_size)
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        out_ids: list[list[int]] = [[] for _ in range(n)]
        texts = [""] * n
        done = [False] * n
        seen: torch.Tensor | None = None
        ttft = None
        start = time.perf_counter()
        past = None
        with self._lock, torch.inference_mode():
            for step in range(max_new_tokens):
                if step == 0 and prefilled is not None:  # the prompt's pass is done: continue from its cache
                    prefilled.used = True
                    past, logits = prefilled.cache, prefilled.logits.clone()
                else:
                    out = self.model(input_ids=ids, use_cache=True, **{self._cache_arg: past})
                    past = getattr(out, self._cache_arg)
                    logits = out.logits[:, -1, :].float()
                if step == 0 and ban_first:
                    logits[:, list(ban_first)] = float("-inf")
                if matcher is None and seen is not None and repetition_penalty != 1.0:
                    penalized = torch.where(logits > 0, logits / repetition_penalty, logits * repetition_penalty)
                    logits = torch.where(seen, penalized, logits)
                if matcher is not None:
                    matcher.fill_next_token_bitmask(bitmask)
                    xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device))
                    if not bool(torch.isfinite(logits).any()):  # the grammar allows no token of this vocabulary
                        break
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1).cpu()
                    tokens = torch.multinomial(probs, 1, generator=rng).squeeze(1).tolist()
                else:
                    tokens = torch.argmax(logits, dim=-1).tolist()
                if ttft is None:
                    ttft = time.perf_counter() - start
                for row, token in enumerate(tokens):
                    if done[row]:
                        continue
                    if token in self.stop_ids or (matcher is not None and not matcher.accept_token(token)):
                        done[row] = True  # a rejected token cannot happen with a correct mask: stop, emit nothing
                        continue
                    out_ids[row].append(token)
                    text = tok.decode(out_ids[row], skip_special_tokens=True)
                    if text.startswith(texts[row]) and len(text) > len(texts[row]) and not text.endswith("\ufffd"):
                        if on_token is not None and n == 1:
                            on_token(text[len(texts[row]):])
                        texts[row] = text
                    if (matcher is not None and matcher.is_terminated()) or any(s and s in text for s in stop):
                        done[row] = True
                if all(done):
                    break
                if repetition_penalty != 1.0 and matcher is None:
                    if seen is None:
                        seen = torch.zeros_like(logits, dtype=torch.bool)
                    seen[torch.arange(n, device=logits.device), torch.tensor(tokens, device=logits.device)] = True
                ids = torch.tensor([[t if not done[r] else self._pad] for r, t in enumerate(tokens)], device=device)
        final = [tok.decode(row, skip_special_tokens=True) for row in out_ids]
        return Decoded(texts=final, prompt_tokens=n_prompt, new_tokens=sum(map(len, out_ids)), ttft_s=ttft)


def _too_long(size: str, context: int, max_new_tokens: int) -> TooLarge:
    return TooLarge(
        f"the prompt ({size}) plus {max_new_tokens} new tokens does not fit the model's context of {context} "
        "tokens; shorten the inputs (question, documents, instructions) or configure a model with a longer context"
    )


_decoders: dict[int, Decoder] = {}
_decoders_lock = threading.Lock()


def decoder_for(lm: LoadedLM) -> Decoder:
    """The decoder of a loaded model (one per model, so its lock and grammar cache are shared)."""
    with _decoders_lock:
        found = _decoders.get(id(lm))
        if found is None or found.lm is not lm:
            found = _decoders[id(lm)] = Decoder(lm)
        return found
