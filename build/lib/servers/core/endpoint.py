"""The client of an OpenAI-compatible HTTP endpoint (vLLM, SGLang, Ollama, llama.cpp server):
connection, authentication, model discovery, streaming and errors that say what to fix.
``EndpointGenerator`` (the servers' text generation) and the host's chat backend both use it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from servers.core.errors import QuiverError, Timeout
from servers.core.text import one_line


class EndpointError(QuiverError):
    """The configured generation endpoint failed or answered something unusable."""


class EndpointTimeout(EndpointError, Timeout):
    """The endpoint did not answer within the time limit."""


class EndpointClient:
    """HTTP calls to ``BASE/v1/...`` with an optional bearer key; the model defaults to the first listed."""

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

    def _failure(self, url: str, exc: httpx.HTTPError) -> EndpointError:
        if isinstance(exc, httpx.TimeoutException):
            return EndpointTimeout(f"the generation endpoint {url} timed out ({exc}); retry, or use a smaller max_new_tokens")
        return EndpointError(
            f"cannot reach the generation endpoint {url} ({type(exc).__name__}: {exc}); start the server "
            "or fix models.endpoint in the config (unset it to generate with the local model)"
        )

    @staticmethod
    def _status_error(url: str, status: int, body: str) -> EndpointError:
        hint = "; check the API key (models.endpoint_api_key_env)" if status in (401, 403) else ""
        return EndpointError(f"the generation endpoint {url} answered HTTP {status}: {one_line(body, 500)}{hint}")

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON request; the JSON object answered, or :class:`EndpointError`."""
        url = self.base_url + path
        try:
            response = self._client.request(method, url, json=payload)
        except httpx.HTTPError as exc:
            raise self._failure(url, exc) from exc
        if response.status_code >= 400:
            raise self._status_error(url, response.status_code, response.text)
        try:
            data = response.json()
        except ValueError as exc:
            raise EndpointError(f"the generation endpoint {url} returned non-JSON: {response.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise EndpointError(f"the generation endpoint {url} returned {type(data).__name__}, expected a JSON object")
        return data

    @contextlib.contextmanager
    def stream(self, path: str, payload: dict[str, Any]) -> Iterator[httpx.Response]:
        """A POST whose response is read as it arrives (server-sent events)."""
        url = self.base_url + path
        try:
            with self._client.stream("POST", url, json=payload) as response:
                if response.status_code >= 400:
                    raise self._status_error(url, response.status_code, response.read().decode("utf-8", "replace"))
                yield response
        except httpx.HTTPError as exc:
            raise self._failure(url, exc) from exc

    def model_id(self) -> str:
        """The configured model, else the first one the endpoint lists (vLLM serves one)."""
        if self.model is None:
            models = self.request("GET", "/models").get("data") or []
            if not models or not isinstance(models[0], dict) or "id" not in models[0]:
                raise EndpointError(f"the endpoint {self.base_url} lists no models; set models.endpoint_model")
            self.model = str(models[0]["id"])
        return self.model

    def close(self) -> None:
        self._client.close()
