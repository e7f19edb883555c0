"""The local transformers backend: the model's own chat template (or the built-in tool format),
token streaming, and xgrammar-constrained decoding of tool calls, all through the core decoding
loop (:mod:`servers.core.decoding`); ``bench/host.py`` compares its speed with ``model.generate``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from host.backends.base import ModelTurn, TokenCallback, ToolChoice, ToolInfo
from host.backends.formats import Dialect, detect_dialect, parse_output, render_messages, structural_tag
from servers.core.decoding import Prefilled, decoder_for

CALL_TAG = "<tool_call>"  # how a call opens in the smol and hermes dialects
CALL_THRESHOLD = 0.5  # call when the model is likelier to call than to answer (no calibration)
CALIBRATION_FILE = "calibration.json"  # beside an adapter's weights: its calibrated call threshold
CallDecision = Literal["probability", "greedy"]
log = logging.getLogger(__name__)


class Calibration(BaseModel):
    """An adapter's call threshold, chosen on validation records it never trained on
    (``agent_model.calibrate``), with the figures it was chosen by."""

    call_threshold: float = Field(gt=0, lt=1)
    balanced_accuracy: float | None = None  # at call_threshold, on the validation records
    balanced_accuracy_at_half: float | None = None  # at 0.5, the same records
    records: dict[str, int] = Field(default_factory=dict)  # validation records that call / do not
    mean_p_call: dict[str, float] = Field(default_factory=dict)  # per source/category


def calibrated_threshold(adapter: Path | None) -> float:
    """The call threshold in ``adapter``'s calibration file, else 0.5; an unreadable file is named in a
    warning and 0.5 used (a bad calibration must not stop the host)."""
    path = adapter / CALIBRATION_FILE if adapter is not None else None
    if path is None or not path.is_file():
        return CALL_THRESHOLD
    try:
        return Calibration.model_validate(json.loads(path.read_text(encoding="utf-8"))).call_threshold
    except (OSError, ValueError, ValidationError) as exc:
        log.warning("ignoring %s (%s); the call threshold is %s", path, type(exc).__name__, CALL_THRESHOLD)
        return CALL_THRESHOLD


class LocalBackend:
    """Chat completions with a causal LM loaded by ``servers.core.models.causal_lm``."""

    def __init__(self, lm: Any, *, constrained: bool = True, dialect: Dialect | None = None,
                 call_decision: CallDecision = "probability", call_threshold: float | None = None) -> None:
        self.lm = lm
        self.call_decision = call_decision
        # host.call_threshold, else the merged adapter's calibrated one, else 0.5
        self.call_threshold = call_threshold if call_threshold is not None else calibrated_threshold(
            getattr(lm, "adapter", None))
        self.decoder = decoder_for(lm)
        self.tokenizer = lm.tokenizer
        self.name = lm.name
        self.constrained = constrained
        self.parallel_calls = True  # several calls per turn; False = one (small models may not stop)
        self.repetition_penalty = 1.15  # on free text only (grammar-constrained output is left alone)
        self.dialect: Dialect = dialect or detect_dialect(self.tokenizer)
        self._call_tag_ids: list[int] = self.tokenizer(CALL_TAG, add_special_tokens=False)["input_ids"][:1]
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
        start = time.perf_counter()
        offered = tools if tool_choice != "none" else []
        prompt = self.prompt(messages, offered)
        p_call = prefilled = None
        if self.decides_by_probability(offered, tool_choice, response_format):
            # call or answer by the model's total probability of each branch, not by its single most likely
            # first token (an answer's probability is spread over many first tokens, a call's is one tag);
            # the prompt runs once: the branch decodes on from the KV cache of the pass that read P(call)
            prefilled = self.decoder.prefill(prompt)
            p_call = self.decoder.continuation_probability(prefilled, CALL_TAG)
            if prefilled.used:  # its cache could not be cut back after the tag: the branch runs the prompt again
                prefilled = None
            if p_call < self.call_threshold:
                return self._answer(prompt, max_new_tokens, temperature, on_token, p_call, start, prefilled)
            tool_choice = "required"
        grammar = None
        if response_format is not None and not offered:
            grammar = self.decoder.compile(response_format)
            tool_choice = "required"  # stop as soon as the format is complete
        elif self.constrained and offered:
            grammar = self.decoder.compile(structural_tag(offered, self.dialect, tool_choice, self.parallel_calls))
        stop = ("</tool_call>",) if self.dialect == "smol" and offered and grammar is None else ()
        decode_start = time.perf_counter()
        out = self.decoder.decode(
            prompt, grammar=grammar, max_new_tokens=max_new_tokens, temperature=temperature, on_token=on_token,
            stop=stop, stop_when_complete=tool_choice == "required", repetition_penalty=self.repetition_penalty,
            prefilled=prefilled,
        )
        seconds = time.perf_counter() - start
        raw = out.texts[0]
        if offered:
            free, calls, error = parse_output(raw, self.dialect)
        else:
            free, calls, error = raw.strip(), [], None
        return ModelTurn(
            text=free, tool_calls=calls, raw=raw, parse_error=error, prompt_tokens=out.prompt_tokens,
            completion_tokens=out.new_tokens, seconds=seconds, ttft_s=_ttft(out.ttft_s, start, decode_start),
            constrained=grammar is not None,
            p_call=p_call,
        )

    def decides_by_probability(self, offered: list[ToolInfo], tool_choice: ToolChoice,
                               response_format: dict[str, Any] | None) -> bool:
        """``auto`` with tools, constrained, in a dialect whose calls open with a tag: the decision to call
        is taken on P(call) >= ``call_threshold``, then the call (or the answer) is decoded alone."""
        return (self.call_decision == "probability" and self.constrained and bool(offered) and tool_choice == "auto"
                and response_format is None and self.dialect in ("smol", "hermes"))

    def _answer(self, prompt: str, max_new_tokens: int, temperature: float, on_token: TokenCallback | None,
                p_call: float, start: float, prefilled: Prefilled | None) -> ModelTurn:
        """The plain-text branch: free decoding that may not open with the call tag and stops before any."""
        decode_start = time.perf_counter()
        out = self.decoder.decode(prompt, max_new_tokens=max_new_tokens, temperature=temperature, on_token=on_token,
                                  stop=(CALL_TAG,), repetition_penalty=self.repetition_penalty,
                                  ban_first=self._call_tag_ids, prefilled=prefilled)
        text = out.texts[0].split(CALL_TAG, 1)[0].strip()
        return ModelTurn(text=text, raw=out.texts[0], prompt_tokens=out.prompt_tokens, completion_tokens=out.new_tokens,
                         seconds=time.perf_counter() - start, ttft_s=_ttft(out.ttft_s, start, decode_start),
                         constrained=True, p_call=p_call)


def _ttft(decode_ttft: float | None, start: float, decode_start: float) -> float | None:
    """Time to the first token of the turn: what ran before the decode (the decision pass) plus the decode's own."""
    return None if decode_ttft is None else decode_ttft + (decode_start - start)
