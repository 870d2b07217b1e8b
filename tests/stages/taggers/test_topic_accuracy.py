"""Topic accuracy on a held-out set of real documents labelled by reading, printed, with a floor;
the heads' recipes reproduce the shipped heads; a head over a local transformers model; and the
tagger's handling of empty input, bad topic or head files and its generate mode.

The sets (``tests/data/topic/``, built by ``scripts/build_topic_sets.py``, described in
``tests/data/SOURCES.md``): 1,024 training documents (C4 web pages, other halves of the
specialised files, GSM8K rows 100-139, HumanEval prompts, later Shakespeare plays) and 546
held-out ones (DCLM and HPLT web pages, cc_net, RedPajama, arXiv, USPTO, NIH, GSM8K rows 0-29,
MT-Bench, Spanish Stack Overflow, Alice, Coriolanus, the Constitution's later articles, WikiText
articles), every one given one of the 18 topics of ``gristmill/templates/topics.yaml`` by a
person who read it. No held-out text is in the training set (checked below).
"""

from __future__ import annotations

import gzip
import json
import sys
import tomllib
from collections import Counter, defaultdict
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import gristmill
from gristmill.classifiers.topic_head import Labelled, encoder_config, train_head
from gristmill.embeddings import EncoderConfig
from gristmill.errors import ConfigError
from gristmill.stages.taggers.topic import DEFAULT_TOPICS, TopicTagger, clean_phrase, load_topics
from gristmill.stages.taggers.topic_head import (
    BUNDLED_HEADS,
    DEFAULT_HEAD,
    HeadFeatures,
    HeadInput,
    TopicHead,
    model_identity,
)

#: Held-out accuracy of the default head (WordLlama's static table), measured 0.683 on the 546
#: documents (the issue asked for 0.85; docs/topic.md says why this set does not reach it and
#: what would).
STATIC_FLOOR = 0.65
#: The bundled wordllama+minilm head on the same set, measured 0.736 (slow: MiniLM).
MINILM_HEAD_FLOOR = 0.70
#: MiniLM zero-shot on the same set, measured 0.540 (slow: about 20 s on two cores).
ZERO_SHOT_FLOOR = 0.50

REPO = Path(__file__).resolve().parents[3]


def read_set(data: Path, name: str) -> list[dict[str, str]]:
    with gzip.open(data / "topic" / f"{name}.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def accuracy_report(rows: list[dict[str, str]], predicted: list[str], mode: str) -> float:
    """Print accuracy per origin file and per topic, and return the overall accuracy."""
    by_file: dict[str, Counter[bool]] = defaultdict(Counter)
    by_topic: dict[str, Counter[bool]] = defaultdict(Counter)
    for row, got in zip(rows, predicted, strict=True):
        by_file[Path(row["file"]).name][got == row["topic"]] += 1
        by_topic[row["topic"]][got == row["topic"]] += 1
    for name, counts in [*sorted(by_file.items()), *sorted(by_topic.items())]:
        print(f"  {name:45s} {counts[True]:3d}/{counts[True] + counts[False]:3d}")
    accuracy = sum(c[True] for c in by_file.values()) / len(rows)
    print(f"topic accuracy ({mode}): {accuracy:.3f} on {len(rows)} held-out labelled documents")
    return accuracy


@pytest.fixture(scope="module")
def static_tagger() -> TopicTagger:
    stage = TopicTagger()
    stage.setup()
    return stage


def test_static_topic_accuracy_on_held_out_set(static_tagger: TopicTagger, data_dir: Path) -> None:
    rows = read_set(data_dir, "eval")
    assert len(rows) >= 300
    assert {row["topic"] for row in rows} == {name for name, _ in load_topics()}
    out = static_tagger.process(pa.table({"text": [row["text"] for row in rows]}))
    accuracy = accuracy_report(rows, out.column("topic").to_pylist(), "wordllama head")
    print(f"(floor {STATIC_FLOOR})")
    assert accuracy >= STATIC_FLOOR
    scores = np.array(out.column("topic_score").to_pylist())
    assert ((scores > 0) & (scores <= 1)).all()


@pytest.mark.slow
def test_zero_shot_topic_accuracy_on_held_out_set(data_dir: Path) -> None:
    rows = read_set(data_dir, "eval")
    stage = TopicTagger(mode="zero_shot", encoder={"threads": 2})
    stage.setup()
    out = stage.process(pa.table({"text": [row["text"] for row in rows]}))
    accuracy = accuracy_report(rows, out.column("topic").to_pylist(), "zero_shot MiniLM")
    assert accuracy >= ZERO_SHOT_FLOOR


def test_training_and_held_out_sets_do_not_overlap(data_dir: Path) -> None:
    train, held_out = read_set(data_dir, "train"), read_set(data_dir, "eval")
    assert len(train) >= 1000
    assert not {row["text"] for row in train} & {row["text"] for row in held_out}
    assert not {row["id"] for row in train} & {row["id"] for row in held_out}
    web = {"olmo_c4-en_sample_1000.json.gz"}
    assert {Path(row["file"]).name for row in train if row["file"].startswith("web/")} == web
    assert not any(Path(row["file"]).name in web for row in held_out)


def test_shipped_head_is_what_its_recipe_trains() -> None:
    """scripts/train_topic_head.py on tests/data/topic/train.jsonl.gz gives the bundled head."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train_topic_head
    finally:
        sys.path.remove(str(REPO / "scripts"))
    shipped = TopicHead.load()
    rebuilt = train_topic_head.train()
    assert rebuilt.labels == shipped.labels == [name for name, _ in load_topics()]
    assert rebuilt.inputs == shipped.inputs
    assert [i.max_tokens for i in shipped.inputs] == [256]
    np.testing.assert_allclose(rebuilt.weights, shipped.weights, atol=1e-3)
    np.testing.assert_allclose(rebuilt.bias, shipped.bias, atol=1e-3)


@pytest.mark.slow
def test_minilm_head_is_what_its_recipe_trains_and_beats_the_default(data_dir: Path) -> None:
    """The bundled wordllama+minilm head: rebuilt from its recipe (MiniLM runs on torch, so the
    rebuilt weights agree to a tolerance), and its held-out accuracy, printed, with a floor."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train_topic_head
    finally:
        sys.path.remove(str(REPO / "scripts"))
    shipped = TopicHead.load("wordllama+minilm")
    assert [i.encoder.partition(":")[0] for i in shipped.inputs] == ["static", "minilm"]
    rebuilt = train_topic_head.train("wordllama+minilm")
    assert rebuilt.inputs == shipped.inputs
    np.testing.assert_allclose(rebuilt.weights, shipped.weights, atol=0.05)
    rows = read_set(data_dir, "eval")
    stage = TopicTagger(head="wordllama+minilm")
    stage.setup()
    out = stage.process(pa.table({"text": [row["text"] for row in rows]}))
    accuracy = accuracy_report(rows, out.column("topic").to_pylist(), "wordllama+minilm head")
    print(f"(floor {MINILM_HEAD_FLOOR})")
    assert accuracy >= MINILM_HEAD_FLOOR


def test_a_head_over_a_local_transformers_model(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """A head trained over a local model folder (a tiny Llama here), run by the stage through
    that folder; without the folder's config the stage says what it needs, and the folder's
    name, not its backend or location, must match."""
    rows = read_set(data_dir, "train")[:60]
    config = {"backend": "transformers", "path": str(tiny_model_dir), "max_tokens": 32}
    labelled = Labelled([row["text"] for row in rows], [row["topic"] for row in rows])
    head = train_head(labelled, load_topics(), [encoder_config(config)])
    assert head.inputs == [HeadInput(f"transformers:{tiny_model_dir}", 32)]
    head.save(tmp_path / "mine.npz")
    stage = TopicTagger(head=str(tmp_path / "mine.npz"), encoder=config)
    stage.setup()
    out = stage.process(pa.table({"text": [rows[0]["text"], None]}))
    assert out.column("topic")[0].as_py() in head.labels
    assert out.column("topic")[1].as_py() is None
    assert 0 < out.column("topic_score")[0].as_py() <= 1
    with pytest.raises(ConfigError, match="give encoder: with the backend"):
        TopicTagger(head=str(tmp_path / "mine.npz")).setup()
    with pytest.raises(ConfigError, match=r"trained on .*transformers.* embeddings"):
        TopicTagger(head=str(tmp_path / "mine.npz"), encoder={"backend": "static"}).setup()
    assert model_identity(f"vllm:/gpu/models/{tiny_model_dir.name}/") == model_identity(
        f"transformers:{tiny_model_dir}"
    )
    gpu = TopicTagger(head=str(tmp_path / "mine.npz"), encoder={"backend": "vllm", "path": "/m"})
    assert gpu.resources.gpus == 1


@pytest.mark.parametrize("mode", ["head", pytest.param("zero_shot", marks=pytest.mark.slow)])
def test_empty_null_and_huge_documents(mode: str) -> None:
    stage = TopicTagger(mode=mode)
    stage.setup()
    table = pa.table({"id": ["a", "b", "c", "d"], "text": [None, "", "   ", "word " * 2_000_000]})
    out = stage.process(table)
    assert out.column("topic").to_pylist()[:3] == [None, None, None]
    assert out.column("topic")[3].as_py() is not None
    assert out.column("topic_score").to_pylist()[:3] == [None, None, None]


def test_min_score_turns_unsure_rows_into_other(static_tagger: TopicTagger) -> None:
    texts = ["Preheat the oven, mix flour, butter and sugar, and bake the cake.", "ok"]
    sure = static_tagger.process(pa.table({"text": texts}))
    unsure = TopicTagger(min_score=0.99)
    unsure.setup()
    out = unsure.process(pa.table({"text": texts}))
    assert sure.column("topic").to_pylist()[0] == "food & drink"
    assert out.column("topic").to_pylist() == ["other", "other"]
    assert out.column("topic_score").to_pylist() == sure.column("topic_score").to_pylist()


def test_topics_feed_meco_topic_conditioning(static_tagger: TopicTagger) -> None:
    """MeCo's topic prefix reads the ``topic`` column as the head mode writes it."""
    from gristmill.stages.taggers.meco import MecoConditioner

    texts = ["Preheat the oven, mix flour, butter and sugar, and bake the cake.", None]
    tagged = static_tagger.process(pa.table({"id": ["a", "b"], "text": texts}))
    out = MecoConditioner(metadata_type="topic", cooldown_fraction=0.0).process(tagged)
    assert out.column("meco_prefix").to_pylist() == ["Topic: food & drink\n\n", None]


def test_head_files_and_options_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "head.npz"
    bad.write_bytes(b"not a numpy file")
    with pytest.raises(ConfigError, match="not a topic head file"):
        TopicHead.load(bad)
    head = TopicHead.load()
    narrow = TopicHead(head.weights[:, :128], head.bias, head.labels, head.inputs)
    narrow.save(tmp_path / "narrow.npz")
    with pytest.raises(ConfigError, match="128-wide vectors, its encoders give 256"):
        TopicTagger(head=str(tmp_path / "narrow.npz")).setup()
    with pytest.raises(ConfigError, match=r"reads 1 encoder.*gives 2"):
        HeadFeatures(head.inputs, [EncoderConfig(backend="static")] * 2)
    with pytest.raises(ConfigError, match="mode zero_shot"):
        TopicTagger(topics="my_topics.yaml")
    with pytest.raises(ConfigError, match="head is for mode head"):
        TopicTagger(mode="zero_shot", head="h.npz")
    with pytest.raises(ConfigError, match="list of encoders is for mode head"):
        TopicTagger(mode="zero_shot", encoder=[{"backend": "static"}])


def test_earlier_head_files_and_mode_name_still_work(
    static_tagger: TopicTagger, tmp_path: Path
) -> None:
    """A head file written before heads could read several encoders (one ``encoder`` name,
    one ``max_tokens``) and ``mode: static``, the head mode's earlier name, give the same
    topics as today's."""
    head = TopicHead.load()
    with (tmp_path / "earlier.npz").open("wb") as handle:
        np.savez(
            handle,
            weights=head.weights,
            bias=head.bias,
            labels=np.array(head.labels, dtype=np.str_),
            encoder=np.array("wordllama/l2_supercat_256", dtype=np.str_),
            max_tokens=np.array(256, dtype=np.int64),
        )
    assert TopicHead.load(tmp_path / "earlier.npz").inputs == head.inputs
    earlier = TopicTagger(mode="static", head=str(tmp_path / "earlier.npz"))
    assert earlier.params.mode == "head"
    earlier.setup()
    texts = ["Preheat the oven, mix flour, butter and sugar, and bake the cake.", "Stocks fell."]
    table = pa.table({"text": texts})
    assert earlier.process(table).equals(static_tagger.process(table))


def test_zero_shot_takes_any_shared_encoder() -> None:
    """zero_shot embeds through ``gristmill.embeddings``: here the static table (no torch),
    reading the topic's ``max_tokens``; a GPU backend asks the executor for a GPU."""
    stage = TopicTagger(mode="zero_shot", encoder={"backend": "static"}, max_tokens=64)
    assert stage.encoder_config().max_tokens == 64 and stage.resources.gpus == 0
    stage.setup()
    texts = ["Preheat the oven, mix flour, butter and sugar, and bake the cake.", None]
    out = stage.process(pa.table({"text": texts}))
    assert out.column("topic").to_pylist()[1] is None
    assert -1.0 <= out.column("topic_score")[0].as_py() <= 1.0
    gpu = TopicTagger(mode="zero_shot", encoder={"backend": "vllm", "path": "/models/e5"})
    assert gpu.resources.gpus == 1


def test_topic_files_are_checked(tmp_path: Path) -> None:
    topics = load_topics()
    assert 15 <= len(topics) <= 25
    assert all(texts and texts[0].startswith(name) for name, texts in topics)
    bad = tmp_path / "topics.yaml"
    bad.write_text("topics: {a: 1}\n")
    with pytest.raises(ConfigError, match="expected 'topics:'"):
        load_topics(bad)
    with pytest.raises(ConfigError, match="generator"):
        TopicTagger(mode="generate")


def test_default_topics_and_head_ship_with_the_package() -> None:
    """The default list and head are package data found by importlib.resources, not paths into
    the repo, so a wheel or non-editable install has them; the root templates/ keeps no copy."""
    packaged = resources.files("gristmill.templates").joinpath("topics.yaml")
    assert packaged.is_file() and packaged == DEFAULT_TOPICS
    package_dir = Path(gristmill.__file__).resolve().parent
    assert Path(str(DEFAULT_TOPICS)).resolve() == package_dir / "templates" / "topics.yaml"
    assert Path(str(DEFAULT_HEAD)).resolve() == package_dir / "models" / "topic_head.npz"
    assert load_topics() == load_topics(package_dir / "templates" / "topics.yaml")
    root = package_dir.parent
    assert not (root / "templates" / "topics.yaml").exists()
    assert "gristmill/templates" in (root / "templates" / "README.md").read_text("utf-8")
    config = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))
    package_data = config["tool"]["setuptools"].get("package-data", {})
    patterns = package_data.get("gristmill.templates", []) + package_data.get("*", [])
    assert any(fnmatch("topics.yaml", pattern) for pattern in patterns), (
        "pyproject.toml must list gristmill.templates *.yaml as package data"
    )
    model_patterns = package_data.get("gristmill.models", [])
    for name in BUNDLED_HEADS.values():
        assert (package_dir / "models" / name).is_file()
        assert any(fnmatch(name, pattern) for pattern in model_patterns)


def test_generated_phrases_are_cleaned() -> None:
    assert clean_phrase('"Physics Textbook."\nmore text') == "physics textbook"
    assert clean_phrase("Phrase: a very long answer with many words") == "a very long answer"
    assert clean_phrase("   ") is None


def test_generate_mode_through_the_transformers_backend(tiny_model_dir: Path) -> None:
    """MeCo's LM keyphrase mode end to end on a tiny random Llama: at most 4 words or null."""
    stage = TopicTagger(
        mode="generate",
        generator={"backend": "transformers", "model": str(tiny_model_dir)},
        max_input_chars=400,
    )
    stage.setup()
    try:
        table = pa.table({"text": ["A recipe for bread with flour and water.", None, ""]})
        out = stage.process(table)
    finally:
        stage.teardown()
    topics = out.column("topic").to_pylist()
    assert topics[1:] == [None, None]
    assert topics[0] is None or 1 <= len(topics[0].split()) <= 4
    assert out.column("topic_score").null_count == 3
