"""vLLM's pooling runner as an encoder (vllm-cpu) on a tiny XLM-R built here: token states
agree with the transformers backend on the same folder, and ``template_match``, the topic
tagger's zero-shot mode and a topic head trained through transformers run on them. Excluded
from the default run (``-m vllm``): starting an engine takes about a minute."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from gristmill.classifiers.topic_head import (  # noqa: E402
    Labelled,
    encoder_config,
    read_labelled,
    train_head,
)
from gristmill.core.phase import run_in_memory  # noqa: E402
from gristmill.embeddings import EncoderConfig, create_encoder  # noqa: E402
from gristmill.instructions.match import FI_MATCHES, TemplateMatch  # noqa: E402
from gristmill.stages.taggers.topic import TopicTagger, load_topics  # noqa: E402

TEXTS = [
    "The rainbow is caused by refraction of sunlight in water droplets.",
    "We the People of the United States, in Order to form a more perfect Union",
    "",
]
OPTIONS = {
    "dtype": "float32",
    "enforce_eager": True,
    "engine_args": {"compilation_config": {"mode": 0}},
}


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.tiny_encoder import build_tiny_xlmr

    return build_tiny_xlmr(tmp_path_factory.mktemp("tiny_xlmr"))


def test_vllm_token_states_match_transformers_and_feed_the_matcher(
    tiny_xlmr: Path, tmp_path: Path
) -> None:
    config = EncoderConfig(backend="vllm", path=str(tiny_xlmr), max_tokens=128, options=OPTIONS)
    engine = create_encoder(config)
    reference = create_encoder(EncoderConfig(backend="transformers", path=str(tiny_xlmr)))
    ours, theirs = engine.token_states(TEXTS), reference.token_states(TEXTS)
    assert not ours.mask[2].any()
    for row in range(2):
        a = ours.states[row][ours.mask[row]]
        b = theirs.states[row][theirs.mask[row]]
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-3)
    np.testing.assert_allclose(engine.encode(TEXTS[:2]), reference.encode(TEXTS[:2]), atol=2e-3)
    engine.close()
    table = pa.table({"text": TEXTS})
    stage = TemplateMatch(
        encoder=config.model_dump(), index_dir=str(tmp_path / "idx"), threshold=-1.0
    )
    stage.use_phase_result(run_in_memory(stage.corpus_phase(), [table]))
    stage.setup()
    assert [len(m) for m in stage.process(table).column(FI_MATCHES).to_pylist()] == [6, 6, 0]

    # The topic tagger's zero-shot mode on the same engine (the per-process encoder cache
    # hands it the matcher's): the same similarities as the transformers backend gives.
    on_vllm = TopicTagger(mode="zero_shot", encoder=config.model_dump())
    on_cpu = TopicTagger(
        mode="zero_shot", encoder={"backend": "transformers", "path": str(tiny_xlmr)}
    )
    assert on_vllm.resources.gpus == 1 and on_cpu.resources.gpus == 0
    on_vllm.setup()
    on_cpu.setup()
    np.testing.assert_allclose(on_vllm.scores(TEXTS[:2]), on_cpu.scores(TEXTS[:2]), atol=2e-3)
    topics = on_vllm.process(table).column("topic").to_pylist()
    assert topics[2] is None and all(t in on_vllm._names for t in topics[:2])

    # A topic head trained over the folder through transformers runs through vLLM: the head
    # records the folder's name, not the backend, and both give the same vectors.
    data = Path(__file__).resolve().parents[1] / "data" / "topic" / "train.jsonl.gz"
    labelled = read_labelled([str(data)])
    labelled = Labelled(labelled.texts[:60], labelled.topics[:60])
    cpu_config = {"backend": "transformers", "path": str(tiny_xlmr), "max_tokens": 128}
    head = train_head(labelled, load_topics(), [encoder_config(cpu_config)])
    head.save(tmp_path / "head.npz")
    head_on_vllm = TopicTagger(head=str(tmp_path / "head.npz"), encoder=config.model_dump())
    head_on_cpu = TopicTagger(head=str(tmp_path / "head.npz"), encoder=cpu_config)
    assert head_on_vllm.resources.gpus == 1
    head_on_vllm.setup()
    head_on_cpu.setup()
    vectors = [tagger._features.vectors(TEXTS[:2]) for tagger in (head_on_vllm, head_on_cpu)]
    np.testing.assert_allclose(*vectors, atol=2e-3)
    np.testing.assert_allclose(
        head_on_vllm.scores(TEXTS[:2]), head_on_cpu.scores(TEXTS[:2]), atol=0.05
    )
