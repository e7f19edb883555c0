"""Text generation behind one small interface: a local causal LM or an OpenAI-compatible endpoint.

``get_generator(settings)`` returns the endpoint generator when ``models.endpoint``
is set (vLLM, SGLang, Ollama, ...), else a :class:`LocalGenerator` over
``models.causal_lm`` loaded by :mod:`servers.core.models`. Both answer
``chat(messages, ...) -> list[str]`` with only the newly generated text.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol, runtime_checkable

import httpx
import torch

from servers.core.errors import ConfigError, InvalidInput, QuiverError
from servers.core.models import LoadedLM, causal_lm
from servers.core.settings import Settings, load_settings

# End-of-turn tokens of common chat formats (ChatML, Llama 3, Phi); generation stops at any of them.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>")


class EndpointError(QuiverError):
    """The configured generation endpoint failed or answered something unusable."""


@runtime_checkable
class Generator(Protocol):
    """Anything that turns chat messages into ``n`` completions."""

    name: str

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        n: int = 1,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[str]: ...


def _check_args(messages: list[dict[str, Any]], max_new_tokens: int, temperature: float, n: int) -> None:
    if not messages:
        raise InvalidInput("messages is empty; pass at least one {'role': ..., 'content': ...} message")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise InvalidInput(f"messages[{i}] must be a dict with 'role' and 'content'")
    if max_new_tokens < 1:
        raise InvalidInput(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
    if temperature < 0:
        raise InvalidInput(f"temperature must be >= 0 (got {temperature})")
    if n < 1:
        raise InvalidInput(f"n must be >= 1 (got {n})")


def truncate_at_stop(text: str, stop: list[str] | None) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop or []:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


class _StopOnStrings:
    """A stopping criterion: a sequence is done once its new text contains a stop string."""

    def __init__(self, tokenizer: Any, stop: list[str], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.prompt_len = prompt_len
        # enough trailing tokens to contain the longest stop string, plus slack
        self.window = max((len(s) for s in self.stop), default=1) + 8

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        done = []
        for row in input_ids:
            tail = self.tokenizer.decode(row[self.prompt_len :][-self.window :], skip_special_tokens=True)
            done.append(any(s in tail for s in self.stop))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class LocalGenerator:
    """Generation with a transformers causal LM held in this process."""

    def __init__(self, lm: LoadedLM) -> None:
        self.lm = lm
        self.name = lm.name
        self._lock = threading.Lock()  # one generate() at a time: shared RNG state, bounded memory
        tok = lm.tokenizer
        vocab = tok.get_vocab()
        ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        ids |= {vocab[t] for t in END_OF_TURN if t in vocab}
        self._eos = sorted(ids)
        self._pad = tok.pad_token_id if tok.pad_token_id is not None else (self._eos[0] if self._eos else 0)

    def prompt(self, messages: list[dict[str, Any]]) -> str:
        """The exact text the model sees (chat template with the generation prompt)."""
        return self.lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        n: int = 1,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """``n`` completions (greedy when ``temperature == 0``), cut at the first stop string."""
        _check_args(messages, max_new_tokens, temperature, n)
        from transformers import GenerationConfig, StoppingCriteriaList

        tok = self.lm.tokenizer
        enc = tok(self.prompt(messages), return_tensors="pt", add_special_tokens=False).to(self.lm.device)
        prompt_len = enc["input_ids"].shape[1]
        sample = temperature > 0
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=1.0 if sample else None,
            top_k=0 if sample else None,
            num_return_sequences=n if sample else 1,
            eos_token_id=self._eos or None,
            pad_token_id=self._pad,
        )
        criteria = StoppingCriteriaList([_StopOnStrings(tok, stop, prompt_len)]) if stop else None
        with self._lock, torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            if seed is not None:
                torch.manual_seed(seed)
            out = self.lm.model.generate(
                input_ids=enc["input_ids"],
                attention_mask=enc.get("attention_mask"),
                generation_config=config,
                stopping_criteria=criteria,
            )
        texts = [truncate_at_stop(t, stop) for t in tok.batch_decode(out[:, prompt_len:], skip_special_tokens=True)]
        return texts if sample else texts * n

    def _rng_devices(self) -> list[int]:
        if self.lm.device.startswith("cuda"):
            return [torch.cuda.current_device()]
        return []


class EndpointGenerator:
    """Generation through an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0), headers=headers, transport=transport)

    @property
    def name(self) -> str:
        return self.model or f"endpoint {self.base_url}"

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = self._client.request(method, url, json=payload)
        except httpx.TimeoutException as exc:
            raise EndpointError(f"the generation endpoint {url} timed out ({exc}); retry, or use a smaller max_new_tokens") from exc
        except httpx.HTTPError as exc:
            raise EndpointError(
                f"cannot reach the generation endpoint {url} ({type(exc).__name__}: {exc}); start the server "
                "or fix models.endpoint in the config (unset it to generate with the local model)"
            ) from exc
        if response.status_code >= 400:
            body = " ".join(response.text.split())[:500]
            hint = "; check the API key (models.endpoint_api_key_env)" if response.status_code in (401, 403) else ""
            raise EndpointError(f"the generation endpoint {url} answered HTTP {response.status_code}: {body}{hint}")
        try:
            data = response.json()
        except ValueError as exc:
            raise EndpointError(f"the generation endpoint {url} returned non-JSON: {response.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise EndpointError(f"the generation endpoint {url} returned {type(data).__name__}, expected a JSON object")
        return data

    def _model_id(self) -> str:
        """The configured model, else the first one the endpoint lists (vLLM serves one)."""
        if self.model is None:
            models = self._request("GET", "/models").get("data") or []
            if not models or not isinstance(models[0], dict) or "id" not in models[0]:
                raise EndpointError(f"the endpoint {self.base_url} lists no models; set models.endpoint_model")
            self.model = str(models[0]["id"])
        return self.model

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        n: int = 1,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """``n`` completions from the endpoint; asks again if it returns fewer choices (Ollama ignores n)."""
        _check_args(messages, max_new_tokens, temperature, n)
        texts: list[str] = []
        while len(texts) < n:
            payload: dict[str, Any] = {
                "model": self._model_id(),
                "messages": messages,
                "max_tokens": max_new_tokens,
                "temperature": temperature,
                "n": n - len(texts),
            }
            if stop:
                payload["stop"] = stop
            if seed is not None:
                payload["seed"] = seed + len(texts)
            choices = self._request("POST", "/chat/completions", payload).get("choices")
            if not isinstance(choices, list) or not choices:
                raise EndpointError(f"the endpoint {self.base_url}/chat/completions returned no choices")
            choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
            for choice in choices:
                try:
                    content = choice["message"]["content"]
                except (KeyError, TypeError) as exc:
                    raise EndpointError(f"the endpoint {self.base_url} returned a choice without message.content: {choice!r:.200}") from exc
                texts.append(truncate_at_stop(content or "", stop))
        return texts[:n]

    def close(self) -> None:
        self._client.close()


_generators: dict[tuple[Any, ...], Generator] = {}
_generators_lock = threading.Lock()


def get_generator(settings: Settings | None = None) -> Generator:
    """The configured generator (cached): the endpoint when ``models.endpoint`` is set, else the local LM."""
    settings = settings if settings is not None else load_settings()
    m = settings.models
    if m.endpoint:
        if not m.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"models.endpoint must be an http(s) URL (got {m.endpoint!r})")
        key: tuple[Any, ...] = ("endpoint", m.endpoint, m.endpoint_model, m.endpoint_api_key_env)
        with _generators_lock:
            if key not in _generators:
                _generators[key] = EndpointGenerator(m.endpoint, m.endpoint_model, os.environ.get(m.endpoint_api_key_env))
            return _generators[key]
    lm = causal_lm(m.causal_lm, settings)  # cached by the model layer
    key = ("local", id(lm))
    with _generators_lock:
        if key not in _generators:
            _generators[key] = LocalGenerator(lm)
        return _generators[key]
