"""The local transformers backend: the model's own chat template (or the built-in tool format),
token streaming, and xgrammar-constrained decoding of tool calls, all through the core decoding
loop (:mod:`servers.core.decoding`); ``bench/host.py`` compares its speed with ``model.generate``.
"""

from __future__ import annotations

import time
from typing import Any

from host.backends.base import ModelTurn, TokenCallback, ToolChoice, ToolInfo
from host.backends.formats import Dialect, detect_dialect, parse_output, render_messages, structural_tag
from servers.core.decoding import decoder_for


class LocalBackend:
    """Chat completions with a causal LM loaded by ``servers.core.models.causal_lm``."""

    def __init__(self, lm: Any, *, constrained: bool = True, dialect: Dialect | None = None) -> None:
        self.lm = lm
        self.decoder = decoder_for(lm)
        self.tokenizer = lm.tokenizer
        self.name = lm.name
        self.constrained = constrained
        self.parallel_calls = True  # several calls per turn; False = one (small models may not stop)
        self.repetition_penalty = 1.15  # on free text only (grammar-constrained output is left alone)
        self.dialect: Dialect = dialect or detect_dialect(self.tokenizer)
        self.parameters = sum(p.numel() for p in lm.model.parameters()) if hasattr(lm.model, "parameters") else 0

    @property
    def small_model(self) -> bool:
        """Under 1B parameters: offered the small tool view when ``host.tool_view`` is auto."""
        return 0 < self.parameters < 1_000_000_000

    def prompt(self, messages: list[dict[str, Any]], tools: list[ToolInfo]) -> str:
        return render_messages(messages, tools, self.dialect, self.tokenizer)

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
            grammar = self.decoder.compile(response_format)
            tool_choice = "required"  # stop as soon as the format is complete
        elif self.constrained and offered:
            grammar = self.decoder.compile(structural_tag(offered, self.dialect, tool_choice, self.parallel_calls))
        stop = ("</tool_call>",) if self.dialect == "smol" and offered and grammar is None else ()
        start = time.perf_counter()
        out = self.decoder.decode(
            prompt, grammar=grammar, max_new_tokens=max_new_tokens, temperature=temperature, on_token=on_token,
            stop=stop, stop_when_complete=tool_choice == "required", repetition_penalty=self.repetition_penalty,
        )
        seconds = time.perf_counter() - start
        raw = out.texts[0]
        if offered:
            free, calls, error = parse_output(raw, self.dialect)
        else:
            free, calls, error = raw.strip(), [], None
        return ModelTurn(
            text=free, tool_calls=calls, raw=raw, parse_error=error, prompt_tokens=out.prompt_tokens,
            completion_tokens=out.new_tokens, seconds=seconds, ttft_s=out.ttft_s, constrained=grammar is not None,
        )
