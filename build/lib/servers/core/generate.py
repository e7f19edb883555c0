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

from servers.core.decoding import decoder_for
from servers.core.endpoint import EndpointClient, EndpointError
from servers.core.errors import ConfigError, InvalidInput
from servers.core.models import LoadedLM, causal_lm
from servers.core.settings import Settings
from servers.core.text import truncate_at_stop

__all__ = ["EndpointClient", "EndpointError", "EndpointGenerator", "Generator", "LocalGenerator", "get_generator", "truncate_at_stop"]


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


class LocalGenerator:
    """Generation with a causal LM held in this process (the core decoding loop)."""

    def __init__(self, lm: LoadedLM) -> None:
        self.lm = lm
        self.name = lm.name
        self.decoder = decoder_for(lm)

    def prompt(self, messages: list[dict[str, Any]]) -> str:
        """The exact text the model sees (chat template with the generation prompt)."""
        return self.decoder.prompt(messages)

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
        sample = temperature > 0
        out = self.decoder.decode(
            self.prompt(messages), max_new_tokens=max_new_tokens, temperature=temperature,
            n=n if sample else 1, seed=seed, stop=tuple(stop or ()),
        )
        texts = [truncate_at_stop(t, stop) for t in out.texts]
        return texts if sample else texts * n


class EndpointGenerator:
    """Generation through an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(self, client: EndpointClient) -> None:
        self.client = client

    @property
    def name(self) -> str:
        return self.client.name

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
        base = self.client.base_url
        texts: list[str] = []
        while len(texts) < n:
            payload: dict[str, Any] = {
                "model": self.client.model_id(),
                "messages": messages,
                "max_tokens": max_new_tokens,
                "temperature": temperature,
                "n": n - len(texts),
            }
            if stop:
                payload["stop"] = stop
            if seed is not None:
                payload["seed"] = seed + len(texts)
            choices = self.client.request("POST", "/chat/completions", payload).get("choices")
            if not isinstance(choices, list) or not choices:
                raise EndpointError(f"the endpoint {base}/chat/completions returned no choices")
            choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
            for choice in choices:
                try:
                    content = choice["message"]["content"]
                except (KeyError, TypeError) as exc:
                    raise EndpointError(f"the endpoint {base} returned a choice without message.content: {choice!r:.200}") from exc
                texts.append(truncate_at_stop(content or "", stop))
        return texts[:n]

    def close(self) -> None:
        self.client.close()


_generators: dict[tuple[Any, ...], Generator] = {}
_generators_lock = threading.Lock()


def get_generator(settings: Settings) -> Generator:
    """The configured generator (cached): the endpoint when ``models.endpoint`` is set, else the local LM."""
    m = settings.models
    if m.endpoint:
        if not m.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"models.endpoint must be an http(s) URL (got {m.endpoint!r})")
        key: tuple[Any, ...] = ("endpoint", m.endpoint, m.endpoint_model, m.endpoint_api_key_env)
        with _generators_lock:
            if key not in _generators:
                client = EndpointClient(m.endpoint, m.endpoint_model, os.environ.get(m.endpoint_api_key_env))
                _generators[key] = EndpointGenerator(client)
            return _generators[key]
    lm = causal_lm(m.causal_lm, settings)  # cached by the model layer
    key = ("local", id(lm))
    with _generators_lock:
        if key not in _generators or getattr(_generators[key], "lm", None) is not lm:
            _generators[key] = LocalGenerator(lm)
        return _generators[key]
