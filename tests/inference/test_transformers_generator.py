"""The transformers backend on the tiny random Llama: batching, prompt forms, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.inference import GenerationParams, GeneratorConfig, create_generator

pytest.importorskip("torch")

PROMPTS = [
    "Alice was beginning to get very tired of sitting by her sister on the bank",
    "We the People of the United States, in Order to form a more perfect Union",
    "The game began development in 2010",
    "Hi",
]


@pytest.fixture(scope="module")
def generator(tiny_model_dir: Path):
    gen = create_generator(
        GeneratorConfig(
            backend="transformers", model=str(tiny_model_dir), options={"batch_size": 3}
        )
    )
    yield gen
    gen.close()


def test_batched_greedy_output_matches_one_prompt_at_a_time(generator):
    params = GenerationParams(max_tokens=12)
    together = generator.generate(PROMPTS, params)
    alone = [generator.generate([p], params)[0] for p in PROMPTS]
    assert together == alone
    assert all(together)  # a random model still emits tokens
    assert generator.errors == 0


def test_token_id_prompts_are_sent_as_is(generator):
    params = GenerationParams(max_tokens=8)
    ids = generator.tokenizer(PROMPTS[0])["input_ids"]
    assert ids[0] == generator.tokenizer.bos_token_id  # text prompts get the engine's BOS
    assert generator.generate([ids], params) == generator.generate([PROMPTS[0]], params)


def test_overlong_and_empty_prompts_yield_empty_output_and_count_errors(generator):
    before = generator.errors
    too_long = "word " * 3000  # > 2048 tokens: no room left in the context
    done = generator.complete([too_long, PROMPTS[1], [], ""], GenerationParams(max_tokens=6))
    assert not done[0].ok and done[0].text == "" and "context" in (done[0].error or "")
    assert done[1].ok and done[1].text
    assert not done[2].ok and done[2].text == ""  # no token ids at all
    assert done[3].ok  # empty text still has the BOS the tokenizer adds
    assert generator.errors - before == sum(1 for c in done if not c.ok)


def test_stop_strings_cut_the_output(generator):
    full = generator.generate([PROMPTS[0]], GenerationParams(max_tokens=16))[0]
    stop = full[3:6]
    cut = generator.generate([PROMPTS[0]], GenerationParams(max_tokens=16, stop=(stop,)))[0]
    assert cut == full[: full.find(stop)]


def test_unknown_option_is_a_config_error_naming_it(tiny_model_dir: Path):
    with pytest.raises(ConfigError, match="batch_sise"):
        create_generator(
            GeneratorConfig(
                backend="transformers", model=str(tiny_model_dir), options={"batch_sise": 2}
            )
        )


def test_a_stream_of_batches_is_one_call_over_all_their_prompts(generator):
    params = GenerationParams(max_tokens=8)
    before = generator.prompts
    streamed = generator.complete_stream(iter([[PROMPTS[0]], [], PROMPTS[1:]]), params)
    assert streamed == generator.complete(PROMPTS, params)
    assert generator.prompts - before == 2 * len(PROMPTS)
