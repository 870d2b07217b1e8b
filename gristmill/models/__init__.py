"""Models shipped with gristmill (package data, each with the config and recipe that made it),
and the fastText runtime that reads them (``fasttext_model``).

``bpe_8k/`` is the byte-level BPE that ``gristmill export`` uses when no tokenizer is given
(trained on ``data_samples/`` by ``scripts/train_export_tokenizer.py``)."""

from pathlib import Path

#: The export's default tokenizer: byte-level BPE, 8,192 tokens, BOS ``<|begin_of_text|>``
#: and EOS ``<|end_of_text|>`` (named in the ``tokenizer_config.json`` beside it).
EXPORT_TOKENIZER = Path(__file__).resolve().parent / "bpe_8k" / "tokenizer.json"
