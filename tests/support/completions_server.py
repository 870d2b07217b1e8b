"""A real OpenAI-compatible completions server on 127.0.0.1, backed by a real generator.

Serves ``POST /v1/completions`` (text or token-id prompt, one per request, as ``vllm serve``
accepts them) from any gristmill ``Generator`` (the tests use the transformers backend on
the tiny model). Like ``vllm serve`` it answers 400 when prompt + max_tokens overflow the
context. It can be told to answer 503 to its first requests, to exercise client retries,
and it records how many requests were in flight at once.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gristmill.inference import GenerationParams, Generator


class CompletionsServer:
    """Start with ``with CompletionsServer(gen) as server:``; ``server.base_url`` ends in /v1."""

    def __init__(self, generator: Generator, *, context: int = 2048, fail_first: int = 0):
        self.generator = generator
        self.context = context
        self.fail_first = fail_first
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()  # the model itself runs one request at a time
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> CompletionsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            if self.requests <= self.fail_first:
                return 503, {"error": {"message": "warming up"}}
        prompt = body.get("prompt")
        if not isinstance(prompt, (str, list)):
            return 400, {"error": {"message": "prompt must be a string or a list of token ids"}}
        max_tokens = int(body.get("max_tokens", 16))
        length = (
            len(prompt)
            if isinstance(prompt, list)
            else len(
                self.generator.tokenizer(prompt)["input_ids"]  # type: ignore[attr-defined]
            )
        )
        if length + max_tokens > self.context:
            message = f"This model's maximum context length is {self.context} tokens"
            return 400, {"error": {"message": message}}
        params = GenerationParams(
            max_tokens=max_tokens,
            temperature=float(body.get("temperature", 0.0)),
            top_p=float(body.get("top_p", 1.0)),
            stop=tuple(body.get("stop") or ()),
        )
        with self._model_lock:
            done = self.generator.complete([prompt], params)[0]
        if not done.ok:
            return 500, {"error": {"message": done.error}}
        return 200, {
            "object": "text_completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "text": done.text, "finish_reason": "length"}],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if self.path.rstrip("/") != "/v1/completions":
                        status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                    else:
                        size = int(self.headers.get("Content-Length", 0))
                        try:
                            body = json.loads(self.rfile.read(size) or b"{}")
                            status, payload = server._answer(body)
                        except ValueError as error:
                            status, payload = 400, {"error": {"message": str(error)}}
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
