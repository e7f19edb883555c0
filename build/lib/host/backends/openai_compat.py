"""The OpenAI-compatible backend (vLLM, SGLang, Ollama, llama.cpp server) over httpx.

Streams ``/v1/chat/completions`` with ``tools`` and ``tool_choice``; tool-call deltas are
accumulated by ``index`` (the id and name come in the first delta, the arguments in string
pieces); tool results go back as ``role: tool`` messages with ``tool_call_id`` and ``name``,
which is what vLLM's ``--tool-call-parser hermes`` expects.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from host.backends.base import ModelTurn, TokenCallback, ToolCall, ToolChoice, ToolInfo, new_call_id
from servers.core.endpoint import EndpointClient, EndpointError


class OpenAIBackend:
    """Chat completions with tools through an OpenAI-compatible HTTP endpoint.

    Connection, authentication, model discovery and errors come from the core
    :class:`EndpointClient`; this class adds streamed tool calling.
    """

    constrained = False  # the server decides (vLLM applies its own guided decoding for tool_choice)

    def __init__(self, client: EndpointClient) -> None:
        self.client = client

    @property
    def name(self) -> str:
        return self.client.name

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
        """One streamed turn. ``response_format`` (an xgrammar structural tag) is not sent: endpoints
        differ in what they accept, so the turn is generated freely."""
        payload: dict[str, Any] = {
            "model": self.client.model_id(),
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools and tool_choice != "none":
            payload["tools"] = [t.openai_tool() for t in tools]
            payload["tool_choice"] = tool_choice
        start = time.perf_counter()
        with self.client.stream("/chat/completions", payload) as response:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                return self._from_json(json.loads(response.read()), start)
            return self._from_stream(response, start, on_token)

    def _from_stream(self, response: httpx.Response, start: float, on_token: TokenCallback | None) -> ModelTurn:
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage: dict[str, Any] = {}
        ttft = None
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                piece = delta.get("content")
                if piece:
                    ttft = ttft if ttft is not None else time.perf_counter() - start
                    text.append(piece)
                    if on_token is not None:
                        on_token(piece)
                for tc in delta.get("tool_calls") or []:
                    ttft = ttft if ttft is not None else time.perf_counter() - start
                    slot = calls.setdefault(int(tc.get("index", len(calls))), {"id": None, "name": "", "arguments": ""})
                    if tc.get("id"):
                        slot["id"] = tc["id"]
                    fn = tc.get("function") or {}
                    if fn.get("name"):
                        slot["name"] += fn["name"]
                    if fn.get("arguments") is not None:
                        args = fn["arguments"]
                        slot["arguments"] += args if isinstance(args, str) else json.dumps(args)
        tool_calls, error = _finish_calls([calls[i] for i in sorted(calls)])
        return ModelTurn(
            text="".join(text).strip(), tool_calls=tool_calls, raw="".join(text), parse_error=error,
            prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=time.perf_counter() - start, ttft_s=ttft,
        )

    def _from_json(self, data: dict[str, Any], start: float) -> ModelTurn:
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise EndpointError(f"unexpected chat completion response: {str(data)[:300]}") from exc
        raw_calls = [
            {"id": c.get("id"), "name": (c.get("function") or {}).get("name", ""),
             "arguments": (c.get("function") or {}).get("arguments", "")}
            for c in message.get("tool_calls") or []
        ]
        tool_calls, error = _finish_calls(raw_calls)
        usage = data.get("usage") or {}
        content = message.get("content") or ""
        return ModelTurn(
            text=content.strip(), tool_calls=tool_calls, raw=content, parse_error=error,
            prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=time.perf_counter() - start,
        )


def _finish_calls(raw: list[dict[str, Any]]) -> tuple[list[ToolCall], str | None]:
    calls, errors = [], []
    for slot in raw:
        args: Any = slot["arguments"]
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                errors.append(f"arguments of '{slot['name']}' are not valid JSON ({exc.msg})")
        calls.append(ToolCall(id=slot["id"] or new_call_id(), name=slot["name"], arguments=args))
    return calls, ("; ".join(errors) or None)
