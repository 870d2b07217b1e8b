"""A tiny templatizer: the session's tiny Llama taught a few query -> JSON answers.

The random tiny Llama only produces garbage, which tests the failure accounting but never the
success path. A few seconds of training on three real queries (from ``tests/data/queries``)
makes the same model answer them exactly, greedily, through any backend: one valid template,
one with a broken ``<fi>`` tag, one that copies its query. Every other query still gets
garbage. Nothing is mocked: the stage runs the real engine on real weights.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.instructions.bank import validate_template
from gristmill.instructions.templatize import DESCRIPTION, ERROR, N_FI, TEMPLATE

#: (query, the answer the model is taught); queries are real NQ-open questions.
TAUGHT: list[tuple[str, str]] = [
    (
        "who plays the joker in the dark knight",
        json.dumps(
            {
                "template": "who plays <fi>name of a character</fi> in <fi>title of a film</fi>",
                "compatible_document_description": "A cast list or review of a film that "
                "names the actor who plays a given character.",
            }
        ),
    ),
    (
        "who wrote the book the hobbit",
        json.dumps(
            {
                "template": "who wrote <fi>title of a book",
                "compatible_document_description": "A review of a book naming its author.",
            }
        ),
    ),
    (
        "when was the eiffel tower built",
        json.dumps(
            {
                "template": "when was the eiffel tower built",
                "compatible_document_description": "A history of a landmark.",
            }
        ),
    ),
]


def teach_templatizer(base: Path, out: Path, steps: int = 400) -> Path:
    """Copy the tiny model at ``base`` to ``out`` and train it on ``TAUGHT`` until each
    answer is memorised (loss below 0.01), so greedy decoding reproduces it."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    shutil.copytree(base, out, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = LlamaForCausalLM.from_pretrained(out)
    examples = []
    for query, answer in TAUGHT:
        prompt = tokenizer(query)["input_ids"]  # with BOS, as the backends send a text prompt
        target = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + target + [tokenizer.eos_token_id]])
        labels = ids.clone()
        labels[0, : len(prompt)] = -100
        examples.append((ids, labels))
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        worst = 0.0
        for ids, labels in examples:
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
            worst = max(worst, loss.item())
        if worst < 0.01:
            break
    model.save_pretrained(out)
    return out


def templatizer_queries(data_dir: Path) -> list[str | None]:
    """The three taught queries, real queries the model was never taught, and bad rows."""
    with gzip.open(data_dir / "queries" / "nq_open_dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        untaught = [json.loads(next(fh))["question"] for _ in range(3)]
    return [q for q, _ in TAUGHT] + untaught + [None, "   "]


def check_templatized(out: pa.Table, sent: list[str | None], stage: Any) -> None:
    assert out.num_rows == len(sent)  # no row is ever lost
    assert out.column("text").to_pylist() == sent
    templates = out.column(TEMPLATE).to_pylist()
    errors = out.column(ERROR).to_pylist()
    # the taught valid answer comes out whole, checked and counted
    assert templates[0] == "who plays <fi>name of a character</fi> in <fi>title of a film</fi>"
    assert out.column(N_FI)[0].as_py() == 2
    assert out.column(DESCRIPTION)[0].as_py().startswith("A cast list or review of a film")
    assert errors[0] is None
    assert validate_template(templates[0], sent[0]) is None
    # the taught bad answers fail with their reasons, the row kept with null template
    assert templates[1] is None and "never closed" in errors[1]
    assert templates[2] is None and "identical to its query" in errors[2]
    # garbage from the untrained queries is a counted failure, never a crash
    for row in (3, 4, 5):
        assert templates[row] is None and errors[row]
    assert errors[6] == "empty query" and errors[7] == "empty query"
    counters = stage.stats.counters
    assert counters["templates"] == 1
    assert counters["prompts"] == 6  # empty queries are never sent
    assert sum(v for k, v in counters.items() if k.startswith("failed: ")) == 7
