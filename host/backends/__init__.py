"""Chat backends for the host: a local transformers model or an OpenAI-compatible endpoint."""

from __future__ import annotations

import os

from host.backends.base import ChatBackend, ModelTurn, ToolCall
from host.backends.local import LocalBackend
from host.backends.openai_compat import OpenAIBackend
from servers.core.endpoint import EndpointClient
from servers.core.models import causal_lm
from servers.core.settings import Settings

__all__ = ["ChatBackend", "ModelTurn", "ToolCall", "make_backend"]


def make_backend(
    settings: Settings,
    *,
    model: str | None = None,
    endpoint: str | None = None,
    constrained: bool | None = None,
) -> ChatBackend:
    """The endpoint backend when an endpoint is given or configured, else the local model (with
    ``models.adapter`` merged in: by default the shipped tool-calling adapter on the shipped SmolLM2)."""
    url = endpoint or settings.models.endpoint
    if url:
        key = os.environ.get(settings.models.endpoint_api_key_env)
        return OpenAIBackend(EndpointClient(url, model or settings.models.endpoint_model, key))
    lm = causal_lm(model, settings, adapter=settings.models.adapter)
    use = settings.host.constrained if constrained is None else constrained
    return LocalBackend(lm, constrained=use, dialect=settings.host.dialect, call_decision=settings.host.call_decision,
                        call_threshold=settings.host.call_threshold)
