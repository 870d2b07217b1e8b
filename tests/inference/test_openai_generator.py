"""The openai backend against a real HTTP completions server on 127.0.0.1.

The server is a real ``ThreadingHTTPServer`` answering the OpenAI completions protocol from
the transformers backend on the tiny model, so the client's output must equal what that
backend generates directly.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.completions_server import CompletionsServer

from gristmill.inference import GenerationParams, GeneratorConfig, create_generator

pytest.importorskip("torch")
pytest.importorskip("httpx")

PROMPTS = [
    "Alice was beginning to get very tired of sitting by her sister",
    "We the People of the United States",
    "The game began development in 2010",
    "Rainbows appear in the sky",
    "Congress shall make no law",
    "Down the rabbit hole",
]
PARAMS = GenerationParams(max_tokens=10)


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path):
    gen = create_generator(GeneratorConfig(backend="transformers", model=str(tiny_model_dir)))
    yield gen
    gen.close()


def client(base_url: str, **options):
    return create_generator(
        GeneratorConfig(backend="openai", model="tiny", options={"base_url": base_url, **options})
    )


def test_outputs_equal_the_served_backend_with_bounded_concurrency(backend):
    expected = [backend.generate([p], PARAMS)[0] for p in PROMPTS]
    with CompletionsServer(backend) as server:
        gen = client(server.base_url, concurrency=3)
        try:
            got = gen.generate(PROMPTS, PARAMS)
        finally:
            gen.close()
    assert got == expected
    assert gen.errors == 0
    assert server.requests == len(PROMPTS)
    assert 1 <= server.max_in_flight <= 3


def test_token_id_prompts_go_over_the_wire(backend):
    ids = backend.tokenizer(PROMPTS[0])["input_ids"]
    with CompletionsServer(backend) as server:
        gen = client(server.base_url)
        try:
            got = gen.generate([ids], PARAMS)
        finally:
            gen.close()
    assert got == backend.generate([PROMPTS[0]], PARAMS)


def test_transient_failures_are_retried_with_backoff(backend):
    with CompletionsServer(backend, fail_first=3) as server:
        gen = client(server.base_url, concurrency=1, max_retries=4, backoff_s=0.01)
        try:
            got = gen.generate(PROMPTS[:2], PARAMS)
        finally:
            gen.close()
    assert got == [backend.generate([p], PARAMS)[0] for p in PROMPTS[:2]]
    assert gen.errors == 0 and gen.retries == 3
    assert server.requests == 2 + 3


def test_rejected_prompt_fails_alone_without_retry(backend):
    too_long = "word " * 1500  # the server's context is 2048: prompt + max_tokens overflow
    with CompletionsServer(backend, context=2048) as server:
        gen = client(server.base_url, max_retries=3, backoff_s=0.01)
        try:
            done = gen.complete([PROMPTS[0], too_long], GenerationParams(max_tokens=1000))
        finally:
            gen.close()
    assert done[0].ok and done[0].text
    assert not done[1].ok and done[1].text == "" and "400" in (done[1].error or "")
    assert gen.errors == 1 and gen.retries == 0
    assert server.requests == 2


def test_client_side_context_cap_keeps_long_prompts_servable(backend, tiny_model_dir: Path):
    ids = backend.tokenizer("word " * 900)["input_ids"]
    with CompletionsServer(backend, context=2048) as server:
        gen = client(server.base_url, context_length=2048, tokenizer=str(tiny_model_dir))
        try:
            done = gen.complete([ids, "word " * 900], GenerationParams(max_tokens=2000))
        finally:
            gen.close()
    assert all(c.ok for c in done), done


def test_unreachable_server_counts_errors_and_does_not_raise():
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gen = client(f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.0, timeout_s=2)
    try:
        done = gen.complete(PROMPTS[:3], PARAMS)
    finally:
        gen.close()
    assert [c.text for c in done] == ["", "", ""]
    assert all("gave up after 2 attempts" in (c.error or "") for c in done)
    assert gen.errors == 3
