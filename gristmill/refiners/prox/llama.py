"""Which Llama-2 tokenizer behaviour each ProX level sees, set explicitly.

The released ProX code tokenized its two levels differently, and each released model was
trained and run on the ids its own path produced:

* doc level: the *slow* SentencePiece tokenizer with ``legacy: false``. Text that follows a
  special token gets no ``▁`` prefix, so the prompt ``<s>[INST] ...`` starts ``1, [`` (29961);
* chunk level: the *fast* tokenizer of ``transformers`` 4.39, which prepends ``▁`` to every
  piece of text between special tokens (what ``legacy: true`` means), so the same opening
  starts ``1, ▁[`` (518), after the extra BOS the engine adds.

Which of the two a loaded tokenizer does depends on the installed ``transformers`` (4.x fast
tokenizers prepend, 5.x ones follow the ``legacy`` flag of the checkpoint, ``false`` for the
refining models), so inheriting it silently gives one of the models an out-of-distribution
token in every prompt. :func:`with_prefix_rule` rewrites a SentencePiece-style tokenizer's
pre-processing to the behaviour a level asks for, whatever version built it.
"""

from __future__ import annotations

import json
from typing import Any

#: The doc-level model saw the slow tokenizer with ``legacy: false``.
DOC_LEGACY = False
#: The chunk-level model saw the fast tokenizer of transformers 4.39 (``legacy: true``).
CHUNK_LEGACY = True
SPIECE_UNDERLINE = "▁"


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer``, or None (slow tokenizers, others)."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend if isinstance(backend, Tokenizer) else None


def _is_sentencepiece_style(config: dict[str, Any]) -> bool:
    """A Metaspace pre-tokenizer (non-legacy) or a ``Prepend("▁")`` normalizer (legacy).

    Those are the two forms ``transformers`` gives a converted SentencePiece (Llama) model;
    byte-level BPE and other tokenizers have neither, and no prefix rule to set.
    """
    text = json.dumps({"n": config.get("normalizer"), "p": config.get("pre_tokenizer")})
    return '"Metaspace"' in text or ('"Prepend"' in text and SPIECE_UNDERLINE in text)


def with_prefix_rule(tokenizer: Any, legacy: bool) -> Any:
    """A copy of ``tokenizer`` that handles text after special tokens as ``legacy`` says.

    ``legacy=True``: every piece of text between special tokens gets a ``▁`` prefix and
    spaces become ``▁`` (a ``Prepend`` + ``Replace`` normalizer, as transformers 4.x converts
    Llama's model for its fast tokenizer). ``legacy=False``: only the text at the very start
    of the input gets the prefix (a Metaspace pre-tokenizer with ``prepend_scheme: first``),
    as the slow tokenizer does with ``legacy: false``.

    Tokenizers that are not SentencePiece-style (byte-level BPE, word-level) have no such
    rule and are returned unchanged. A slow tokenizer (no Rust backend) cannot be rewritten;
    it is checked instead, and a mismatch is a ``ConfigError``: silently sending the wrong
    ids would change the released models' programs.
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers

    backend = _backend(tokenizer)
    if backend is None:
        _check_slow(tokenizer, legacy)
        return tokenizer
    config = json.loads(backend.to_str())
    if not _is_sentencepiece_style(config):
        return tokenizer
    copy = Tokenizer.from_str(backend.to_str())
    if legacy:
        copy.normalizer = normalizers.Sequence(
            [normalizers.Prepend(SPIECE_UNDERLINE), normalizers.Replace(" ", SPIECE_UNDERLINE)]
        )
        copy.pre_tokenizer = None
    else:
        copy.normalizer = None
        copy.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement=SPIECE_UNDERLINE, prepend_scheme="first", split=False
        )
    return copy


def _check_slow(tokenizer: Any, legacy: bool) -> None:
    """Fail when a slow Llama tokenizer does not already behave as ``legacy`` says."""
    convert = getattr(tokenizer, "convert_tokens_to_ids", None)
    encode = getattr(tokenizer, "encode", None)
    if not callable(convert) or not callable(encode):
        return
    bare, prefixed = convert("["), convert(SPIECE_UNDERLINE + "[")
    unk = getattr(tokenizer, "unk_token_id", None)
    if bare in (None, unk) or prefixed in (None, unk):
        return  # not a Llama-style vocabulary: no prefix rule to check
    ids = list(encode("<s>[INST]", add_special_tokens=False))
    expected = prefixed if legacy else bare
    if len(ids) < 2 or ids[1] != expected:
        from gristmill.errors import ConfigError

        raise ConfigError(
            f"ProX: this slow tokenizer ({type(tokenizer).__name__}) encodes '<s>[INST]' as "
            f"{ids[:3]}, but the level needs legacy={legacy} (id {expected} after <s>); "
            "load it as a fast tokenizer so the rule can be set"
        )
