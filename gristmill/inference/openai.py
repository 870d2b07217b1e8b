"""Backend on an OpenAI-compatible completions server (``vllm serve`` on a GPU node).

For clusters where the model is served apart from the pipeline. Many requests are kept in
flight by a bounded thread pool over one pooled HTTP client; transient failures (connection
errors, timeouts, 429 and 5xx answers) are retried with exponential backoff, while answers
that will not change on retry (400: prompt too long, say) fail the prompt at once. A failed
prompt yields ``""`` and a counted error, never an exception.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import ConfigError
from gristmill.inference.base import (
    BaseGenerator,
    Completion,
    GenerationParams,
    Prompt,
    token_budget,
    too_long,
)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIOptions(BaseModel):
    """``options`` of an ``openai`` generator. The API key is read from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(default="http://127.0.0.1:8000/v1", description="up to and including /v1")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY", description="environment variable holding the key (never in YAML)"
    )
    served_model: str | None = Field(default=None, description="the model name the server knows")
    concurrency: int = Field(default=32, gt=0, description="requests in flight at once")
    timeout_s: float = Field(default=300.0, gt=0, description="per request")
    max_retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=0.5, ge=0, description="first retry delay, doubled each time")
    backoff_max_s: float = Field(default=30.0, ge=0)
    context_length: int | None = Field(
        default=None,
        gt=0,
        description="cap max_tokens so prompt + output fit (vllm serve rejects more)",
    )
    tokenizer: str | None = Field(
        default=None,
        description="local tokenizer to measure text prompts for the cap (transformers)",
    )


class RequestFailedError(Exception):
    """A request that failed for good; its message says why."""


class OpenAIGenerator(BaseGenerator):
    """Completions over HTTP with bounded concurrency, retries and timeouts."""

    def __init__(self, model: str, options: OpenAIOptions | None = None) -> None:
        super().__init__()
        self.options = opts = options or OpenAIOptions()
        try:
            import httpx
        except ImportError as error:  # pragma: no cover - depends on the extras installed
            raise ConfigError("the 'openai' generator needs httpx (pip install httpx)") from error
        self._httpx = httpx
        self.model = opts.served_model or model
        self.url = opts.base_url.rstrip("/") + "/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(opts.api_key_env) if opts.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(opts.timeout_s),
            limits=httpx.Limits(
                max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency
            ),
        )
        self.pool = ThreadPoolExecutor(max_workers=opts.concurrency, thread_name_prefix="openai")
        self.tokenizer: Any = None
        if opts.tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(opts.tokenizer)
        self.retries = 0

    def _length(self, prompt: Prompt) -> int | None:
        if not isinstance(prompt, str):
            return len(prompt)
        if self.tokenizer is None:
            return None
        return len(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def _payload(self, prompt: Prompt, params: GenerationParams, max_tokens: int) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt if isinstance(prompt, str) else [int(t) for t in prompt],
            "max_tokens": max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def _delay(self, attempt: int) -> float:
        base = min(self.options.backoff_max_s, self.options.backoff_s * 2**attempt)
        return base * random.uniform(0.5, 1.0)  # jitter spreads retries of many threads

    def _request(self, body: dict) -> str:
        httpx = self._httpx
        last = "no attempt"
        for attempt in range(self.options.max_retries + 1):
            if attempt:
                self.retries += 1
                time.sleep(self._delay(attempt - 1))
            try:
                response = self.client.post(self.url, json=body)
            except httpx.HTTPError as error:  # connection refused, reset, timeout
                last = f"{type(error).__name__}: {error}"
                continue
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code != 200:
                raise RequestFailedError(f"HTTP {response.status_code}: {response.text[:200]}")
            try:
                choices = response.json()["choices"]
                return str(choices[0].get("text") or "")
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
                raise RequestFailedError(f"malformed response: {error}") from None
        raise RequestFailedError(f"gave up after {self.options.max_retries + 1} attempts: {last}")

    def _one(self, prompt: Prompt, params: GenerationParams) -> Completion:
        try:
            length = self._length(prompt)
            if length == 0:
                return Completion("", "empty prompt")
            max_tokens = params.max_tokens
            if length is not None:
                max_tokens = token_budget(length, params.max_tokens, self.options.context_length)
                if max_tokens == 0:
                    return Completion("", too_long(length, self.options.context_length))
            return Completion(self._request(self._payload(prompt, params, max_tokens)))
        except Exception as error:  # noqa: BLE001 - one prompt's failure stays its own
            return Completion("", f"{type(error).__name__}: {error}")

    def _complete(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Completion]:
        # map() keeps input order; the pool bounds how many requests are in flight.
        return list(self.pool.map(lambda p: self._one(p, params), prompts))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()
