"""The local transformers backend: the model's own chat template (or the built-in tool format),
token streaming, and xgrammar-constrained decoding of tool calls.

Decoding is a plain KV-cached loop (one forward per token) so that the grammar mask, the
stop conditions and the token stream are all in one place; ``bench/host.py`` compares its
speed with ``model.generate`` on the same prompt.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

import torch

from host.backends.base import ModelTurn, TokenCallback, ToolChoice
from host.backends.formats import Dialect, detect_dialect, parse_output, render_messages, structural_tag
from host.connections import ToolInfo

GRAMMAR_CACHE = 64


class LocalBackend:
    """Chat completions with a causal LM loaded by ``servers.core.models.causal_lm``."""

    def __init__(self, lm: Any, *, constrained: bool = True, dialect: Dialect | None = None) -> None:
        self.lm = lm
        self.model = lm.model
        self.tokenizer = lm.tokenizer
        self.name = lm.name
        self.constrained = constrained
        self.parallel_calls = True  # several calls per turn; False = one (small models may not stop)
        self.repetition_penalty = 1.15  # on free text only (grammar-constrained output is left alone)
        self.dialect: Dialect = dialect or detect_dialect(self.tokenizer)
        tok = self.tokenizer
        stops = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        for special in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end|>"):
            if special in tok.get_vocab():
                stops.add(tok.convert_tokens_to_ids(special))
        self.stop_ids = sorted(i for i in stops if i is not None)
        self._compiler: Any = None
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    # -- grammar -----------------------------------------------------------------------
    def _compiled(self, tag: dict[str, Any]) -> Any:
        import xgrammar as xgr

        key = json.dumps(tag, sort_keys=True)
        if key in self._grammars:
            self._grammars.move_to_end(key)
            return self._grammars[key]
        if self._compiler is None:
            vocab = getattr(self.model.config, "vocab_size", None) or len(self.tokenizer)
            info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=vocab, stop_token_ids=self.stop_ids)
            self._compiler = xgr.GrammarCompiler(info)
        compiled = self._compiler.compile_structural_tag(json.dumps(tag))
        self._grammars[key] = compiled
        if len(self._grammars) > GRAMMAR_CACHE:
            self._grammars.popitem(last=False)
        return compiled

    # -- decoding ------------------------------------------------------------------------
    def prompt(self, messages: list[dict[str, Any]], tools: list[ToolInfo]) -> str:
        return render_messages(messages, tools, self.dialect, self.tokenizer)

    def decode(
        self,
        prompt: str,
        *,
        grammar: Any = None,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_token: TokenCallback | None = None,
        stop_strings: tuple[str, ...] = (),
        seed: int | None = None,
        stop_when_complete: bool = False,
    ) -> tuple[str, int, int, float | None]:
        """Generate from ``prompt``; returns (text, prompt tokens, new tokens, time to first token).

        With a grammar, ``stop_when_complete`` ends as soon as the grammar is matched (no stop
        token needed: right for ``required`` calls; free text must end with a stop token)."""
        import xgrammar as xgr

        tok = self.tokenizer
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.lm.device)
        n_prompt = int(ids.shape[1])
        matcher = xgr.GrammarMatcher(grammar, terminate_without_stop_token=stop_when_complete) if grammar is not None else None
        bitmask = xgr.allocate_token_bitmask(1, grammar.tokenizer_info.vocab_size) if grammar is not None else None
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        out_ids: list[int] = []
        text = ""
        ttft = None
        start = time.perf_counter()
        past = None
        with self._lock, torch.inference_mode():
            for _ in range(max_new_tokens):
                out = self.model(input_ids=ids, past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[:, -1, :].float()
                if matcher is None and out_ids and self.repetition_penalty != 1.0:
                    seen = torch.tensor(sorted(set(out_ids)), device=logits.device)
                    picked = logits[0, seen]
                    logits[0, seen] = torch.where(picked > 0, picked / self.repetition_penalty,
                                                  picked * self.repetition_penalty)
                if matcher is not None:
                    matcher.fill_next_token_bitmask(bitmask)
                    xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device))
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    token = int(torch.multinomial(probs.cpu(), 1, generator=rng).item())
                else:
                    token = int(torch.argmax(logits, dim=-1).item())
                if ttft is None:
                    ttft = time.perf_counter() - start
                if token in self.stop_ids:
                    break
                if matcher is not None and not matcher.accept_token(token):
                    break  # cannot happen with a correct mask; stop rather than emit garbage
                out_ids.append(token)
                new_text = tok.decode(out_ids, skip_special_tokens=True)
                if new_text.startswith(text) and len(new_text) > len(text) and not new_text.endswith("\ufffd"):
                    if on_token is not None:
                        on_token(new_text[len(text):])
                    text = new_text
                if matcher is not None and matcher.is_terminated():
                    break
                if stop_strings and any(s in new_text for s in stop_strings):
                    break
                ids = torch.tensor([[token]], device=self.lm.device)
        text = tok.decode(out_ids, skip_special_tokens=True)
        return text, n_prompt, len(out_ids), ttft

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[ToolInfo],
        *,
        tool_choice: ToolChoice = "auto",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_token: TokenCallback | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelTurn:
        """One assistant turn; ``response_format`` (an xgrammar structural tag) constrains a
        turn without tools, e.g. to answers that quote a retrieved sentence."""
        offered = tools if tool_choice != "none" else []
        prompt = self.prompt(messages, offered)
        grammar = None
        if response_format is not None and not offered:
            grammar = self._compiled(response_format)
            tool_choice = "required"  # stop as soon as the format is complete
        elif self.constrained and offered:
            grammar = self._compiled(structural_tag(offered, self.dialect, tool_choice, self.parallel_calls))
        stop = ("</tool_call>",) if self.dialect == "smol" and offered and grammar is None else ()
        start = time.perf_counter()
        raw, n_prompt, n_new, ttft = self.decode(
            prompt, grammar=grammar, max_new_tokens=max_new_tokens, temperature=temperature,
            on_token=on_token, stop_strings=stop, stop_when_complete=tool_choice == "required",
        )
        seconds = time.perf_counter() - start
        if offered:
            free, calls, error = parse_output(raw, self.dialect)
        else:
            free, calls, error = raw.strip(), [], None
        return ModelTurn(
            text=free, tool_calls=calls, raw=raw, parse_error=error, prompt_tokens=n_prompt,
            completion_tokens=n_new, seconds=seconds, ttft_s=ttft, constrained=grammar is not None,
        )
