"""ProX refinement stages: ``prox_doc``, ``prox_chunk`` and ``prox`` (both, in sequence).

Each stage builds the prompts of every document of the batch, generates them in ONE call
(so vLLM's continuous batching sees the whole batch), executes the programs with the safe
executor, and records per document, kept or dropped:

* ``prox_doc_program`` / ``prox_chunk_program``: the program (chunk outputs merged as
  upstream stores them), so every decision can be audited and diffed against upstream;
* ``prox_errors``: program errors plus failed generations, added up across both stages;
* ``prox_status``: what happened, one of ``keep_doc``, ``drop_doc``, ``gen_failed``
  (doc level: no output, the document is kept as upstream keeps it on empty output),
  ``unchanged``/``edited`` (chunk program applied), ``discarded`` (too many errors: the
  document is kept intact), ``drop_ratio``, ``drop_short``, ``drop_empty``;
* ``prox_chunks`` (chunk level) and ``prox_doc_truncated`` (doc level): what the model saw.

Dropped documents go to the rejects writer with their program and status, and keep their
original text there. ``programmer: rule`` writes the programs with the rule programmer
instead of a model, so refinement runs on a CPU with no model at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from gristmill.core.columns import with_column
from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.registry import register_stage
from gristmill.core.resources import Resources
from gristmill.inference.base import (
    Completion,
    GenerationParams,
    Generator,
    GeneratorConfig,
    Prompt,
)
from gristmill.inference.factory import check_options, create_generator
from gristmill.refiners.prox.executor import (
    Branch,
    Mode,
    RefineResult,
    apply_chunk_programs,
    execute_program,
    merge_chunk_programs,
    whole_document,
)
from gristmill.refiners.prox.llama import CHUNK_LEGACY, DOC_LEGACY, with_prefix_rule
from gristmill.refiners.prox.prompts import (
    CHUNK_MAX_NEW_TOKENS,
    CHUNK_TOKEN_BUDGET,
    DOC_MAX_NEW_TOKENS,
    DOC_MAX_PROMPT_TOKENS,
    Chunk,
    DocPrompt,
    DocPromptBuilder,
    build_chunk_prompts_batch,
)
from gristmill.refiners.prox.rule_programmer import RuleProgrammer

TEXT = "text"
DOC_PROGRAM = "prox_doc_program"
CHUNK_PROGRAM = "prox_chunk_program"
ERRORS = "prox_errors"
STATUS = "prox_status"
CHUNKS = "prox_chunks"
TRUNCATED = "prox_doc_truncated"
GEN_FAILED = "gen_failed"
#: Documents per prompt-building slice: the first slice is small so that generation starts
#: at once, the next ones double up to the last size, so per-call costs stay low.
SLICES = (8, 16, 32, 64)

T = TypeVar("T")


class ProxStageParams(FilterParams):
    """Parameters shared by both levels."""

    programmer: Literal["model", "rule"] = Field(
        default="model",
        description="model: a refining LM writes the programs; rule: rules do (CPU)",
    )
    generator: GeneratorConfig | None = Field(
        default=None, description="the refining model and backend (programmer: model)"
    )
    tokenizer: str | None = Field(
        default=None, description="tokenizer for prompt building; default: the generator's own"
    )
    executor: Mode = Field(
        default="compat", description="compat: as released; strict: clean calls only"
    )
    tokenizer_legacy: bool = Field(
        default=False,
        description="Llama-2 prefix rule after special tokens: true puts '▁' before the text "
        "after <s> (the chunk model's), false does not (the doc model's); see docs/prox.md",
    )

    @model_validator(mode="after")
    def _needs_generator(self) -> ProxStageParams:
        if self.programmer == "model":
            if self.generator is None:
                raise ValueError("programmer 'model' needs a 'generator' (or use programmer: rule)")
            check_options(self.generator)
        return self


class ProxDocParams(ProxStageParams):
    tokenizer_legacy: bool = Field(
        default=DOC_LEGACY,
        description="Llama-2 prefix rule after special tokens: false (as the released doc "
        "model saw, the slow tokenizer) puts no '▁' before '[INST]'",
    )
    max_prompt_tokens: int = Field(
        default=DOC_MAX_PROMPT_TOKENS, gt=0, description="right truncation"
    )
    max_new_tokens: int = Field(default=DOC_MAX_NEW_TOKENS, gt=0)


class ProxChunkParams(ProxStageParams):
    tokenizer_legacy: bool = Field(
        default=CHUNK_LEGACY,
        description="Llama-2 prefix rule after special tokens: true (as the released chunk "
        "model saw, transformers 4.39's fast tokenizer) puts '▁' before '[INST]'",
    )
    chunk_token_budget: int = Field(
        default=CHUNK_TOKEN_BUDGET, gt=0, description="per chunk, BOS counted"
    )
    max_new_tokens: int = Field(default=CHUNK_MAX_NEW_TOKENS, gt=0)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One document through one level: the columns it gets, and whether it survives."""

    text: str | None
    program: str | None
    errors: int
    status: str
    dropped: bool
    extra: Any = None  # prox_chunks or prox_doc_truncated


def _load_tokenizer(path: str) -> Any:
    try:
        from transformers import AutoTokenizer
    except ImportError as error:  # pragma: no cover - depends on the extras installed
        from gristmill.errors import ConfigError

        raise ConfigError("ProX prompt building needs transformers for the tokenizer") from error
    return AutoTokenizer.from_pretrained(path)


class _ProxLevel(Filter):
    """What both levels share: set-up, the batch flow, the columns and the counters."""

    params: ProxStageParams
    requires = (TEXT,)
    program_column: ClassVar[str] = ""
    extra_field: ClassVar[pa.Field]

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.generator: Generator | None = None
        self.tokenizer: Any = None
        self.rules: RuleProgrammer | None = None
        self._ready = False

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        cfg = self.params.generator
        on_gpu = self.params.programmer == "model" and cfg is not None and cfg.backend == "vllm"
        return Resources(cpus=1.0, gpus=1.0 if on_gpu else 0.0)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (
            pa.field(self.program_column, pa.string()),
            pa.field(ERRORS, pa.int32()),
            pa.field(STATUS, pa.string()),
            self.extra_field,
            *super().produced_fields(),
        )

    # -- lifecycle --------------------------------------------------------------------
    def setup(self) -> None:
        """Load the model once per worker; reuse the engine's tokenizer when it has one."""
        if self._ready:
            return
        if self.params.programmer == "rule":
            self.rules = RuleProgrammer()
        else:
            cfg = self.params.generator
            assert cfg is not None  # checked by the parameters
            self.generator = create_generator(cfg)
            own = getattr(self.generator, "tokenizer", None)
            if self.params.tokenizer is not None or own is None:
                own = _load_tokenizer(self.params.tokenizer or cfg.model)
            self.tokenizer = with_prefix_rule(own, self.params.tokenizer_legacy)
        self._ready = True

    def attach(self, generator: Generator, tokenizer: Any = None) -> None:
        """Use an engine created elsewhere instead of loading one in ``setup``.

        For sharing one engine between stages or with a benchmark's baseline; ``tokenizer``
        defaults to the engine's own.
        """
        self.generator = generator
        own = tokenizer if tokenizer is not None else generator.tokenizer  # type: ignore[attr-defined]
        self.tokenizer = with_prefix_rule(own, self.params.tokenizer_legacy)
        self._ready = True

    def teardown(self) -> None:
        if self.generator is not None:
            self.generator.close()
        self.generator, self.tokenizer, self.rules = None, None, None
        self._ready = False

    # -- the batch flow ---------------------------------------------------------------
    def _generate(self, batches: Iterator[Sequence[Prompt]], max_tokens: int) -> list[Completion]:
        """All prompts of the batch in one engine run, greedy as upstream.

        ``batches`` builds the prompts slice by slice while the engine already generates
        the slices before (see ``Generator.complete_stream``).
        """
        assert self.generator is not None
        params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
        completions = self.generator.complete_stream(batches, params)
        self.stats.count("prompts", len(completions))
        self.stats.count("generation_errors", sum(1 for c in completions if not c.ok))
        return completions

    def _refine(self, texts: list[str | None]) -> list[Outcome]:
        raise NotImplementedError

    def judge(self, batch: pa.Table) -> Verdict:
        """Run the programs: the refined batch (text and program columns) and the verdict."""
        self.setup()
        texts = batch.column(TEXT).to_pylist()
        outcomes = self._refine(texts)
        text_type = batch.schema.field(TEXT).type
        refined = with_column(batch, TEXT, pa.array([o.text for o in outcomes], text_type))
        previous = (
            refined.column(ERRORS).to_pylist()
            if ERRORS in refined.column_names
            else [0] * len(outcomes)
        )
        errors = [(p or 0) + o.errors for p, o in zip(previous, outcomes, strict=True)]
        columns = {
            self.program_column: pa.array([o.program for o in outcomes], pa.string()),
            ERRORS: pa.array(errors, pa.int32()),
            STATUS: pa.array([o.status for o in outcomes], pa.string()),
            self.extra_field.name: pa.array([o.extra for o in outcomes], self.extra_field.type),
        }
        for name, values in columns.items():
            refined = with_column(refined, name, values)
        self.stats.count("errors", sum(o.errors for o in outcomes))  # = prox_errors added here
        self.stats.count_values("status", (o.status for o in outcomes))
        keep = pa.array([not o.dropped for o in outcomes], pa.bool_())
        reasons = pc.if_else(keep, pa.scalar(None, pa.string()), columns[STATUS])
        return Verdict(keep, reasons, edited=refined)


def _slices(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items``, sized by :data:`SLICES`, the last size repeated."""
    start, sizes = 0, iter(SLICES)
    size = next(sizes)
    while start < len(items):
        yield items[start : start + size]
        start += size
        size = next(sizes, size)


def _has_words(text: str | None) -> bool:
    return bool(text) and bool(text.split())  # type: ignore[union-attr]


def _dropped_empty(text: str | None) -> Outcome:
    """Null, empty or whitespace-only text: nothing to refine (upstream would crash)."""
    return Outcome(text, "", 0, Branch.DROP_EMPTY.value, True, None)


@register_stage
class ProxDoc(_ProxLevel):
    """ProX document level: a program decides keep or drop; the text is never edited."""

    name = "prox_doc"
    Params = ProxDocParams  # type: ignore[assignment]
    params: ProxDocParams
    program_column = DOC_PROGRAM
    extra_field = pa.field(TRUNCATED, pa.bool_())
    _doc_prompts: DocPromptBuilder | None = None

    def _refine(self, texts: list[str | None]) -> list[Outcome]:
        todo = [i for i, t in enumerate(texts) if _has_words(t)]
        docs = [str(texts[i]) for i in todo]
        programs: list[str]
        failed: list[bool]
        truncated: list[bool | None]
        if self.params.programmer == "rule":
            assert self.rules is not None
            programs = [self._rule_program(t) for t in docs]
            failed = [False] * len(docs)
            truncated = [None] * len(docs)
        else:
            prompts: list[DocPrompt] = []
            done = self._generate(self._token_ids(docs, prompts), self.params.max_new_tokens)
            assert len(prompts) == len(done) == len(docs)  # the generator built them all
            self.stats.count("truncated_prompts", sum(p.truncated for p in prompts))
            programs = [c.text.strip(" ") for c in done]
            failed = [not c.ok for c in done]
            truncated = [p.truncated for p in prompts]
        out = [_dropped_empty(t) for t in texts]
        for k, i in enumerate(todo):
            result = execute_program(docs[k], programs[k], "doc", self.params.executor)
            status = GEN_FAILED if failed[k] else result.branch.value
            errors = result.errors + int(failed[k])
            out[i] = Outcome(texts[i], programs[k], errors, status, result.dropped, truncated[k])
        return out

    def teardown(self) -> None:
        self._doc_prompts = None
        super().teardown()

    def _token_ids(self, docs: list[str], built: list[DocPrompt]) -> Iterator[list[Prompt]]:
        """The prompt ids of ``docs``, slice by slice; every prompt built is kept in ``built``."""
        builder = self._builder()
        for part in _slices(docs):
            prompts = builder.build(part)
            built.extend(prompts)
            yield [p.token_ids for p in prompts]

    def _builder(self) -> DocPromptBuilder:
        """One builder per tokenizer, so its characters-per-token estimate carries over."""
        builder = self._doc_prompts
        if builder is None or builder.tokenizer is not self.tokenizer:
            builder = DocPromptBuilder(self.tokenizer, self.params.max_prompt_tokens)
            self._doc_prompts = builder
        return builder

    def _rule_program(self, text: str) -> str:
        """Drop a document when the chunk rules would leave nothing worth keeping of it."""
        assert self.rules is not None
        chunk = execute_program(text, self.rules.program(text), "chunk", self.params.executor)
        return "drop_doc()" if chunk.dropped else "keep_doc()"


@register_stage
class ProxChunk(_ProxLevel):
    """ProX chunk level: line removals and string normalisations, then keep/drop rules."""

    name = "prox_chunk"
    Params = ProxChunkParams  # type: ignore[assignment]
    params: ProxChunkParams
    program_column = CHUNK_PROGRAM
    extra_field = pa.field(CHUNKS, pa.int32())

    def _refine(self, texts: list[str | None]) -> list[Outcome]:
        todo = [i for i, t in enumerate(texts) if _has_words(t)]
        docs = [str(texts[i]) for i in todo]
        out = [_dropped_empty(t) for t in texts]
        if self.params.programmer == "rule":
            assert self.rules is not None
            for k, i in enumerate(todo):
                span = [whole_document(docs[k])]
                programs = self.rules.programs(docs[k], span)
                result = apply_chunk_programs(docs[k], span, programs, self.params.executor)
                out[i] = self._outcome(texts[i], result, merge_chunk_programs(programs), 0, 1)
            return out
        chunked: list[list[Chunk]] = []
        done = self._generate(self._chunk_prompts(docs, chunked), self.params.max_new_tokens)
        assert len(chunked) == len(docs)  # the generator built them all
        self.stats.count("oversized_chunks", sum(c.oversized for cs in chunked for c in cs))
        offset = 0
        for k, i in enumerate(todo):
            chunks = chunked[k]
            mine = done[offset : offset + len(chunks)]
            offset += len(chunks)
            programs = [c.text for c in mine]
            failed = sum(1 for c in mine if not c.ok)
            result = apply_chunk_programs(docs[k], chunks, programs, self.params.executor)
            merged = merge_chunk_programs(programs)
            out[i] = self._outcome(texts[i], result, merged, failed, len(chunks))
        return out

    def _chunk_prompts(self, docs: list[str], chunked: list[list[Chunk]]) -> Iterator[list[Prompt]]:
        """The chunk prompts of ``docs``, slice by slice; their chunks are kept in ``chunked``."""
        for part in _slices(docs):
            chunks = build_chunk_prompts_batch(part, self.tokenizer, self.params.chunk_token_budget)
            chunked.extend(chunks)
            yield [c.token_ids for cs in chunks for c in cs]

    def _outcome(
        self, original: str | None, result: RefineResult, program: str, failed: int, chunks: int
    ) -> Outcome:
        if result.branch is Branch.APPLIED:
            status = "edited" if result.edited else "unchanged"
        else:
            status = result.branch.value
        self.stats.count("calls", result.calls)
        # Dropped documents keep their original text: the rejects show what was dropped.
        text = original if result.dropped else result.text
        return Outcome(text, program, result.errors + failed, status, result.dropped, chunks)


class ProxParams(FilterParams):
    """Both levels in one stage; the doc and chunk models are separate checkpoints."""

    programmer: Literal["model", "rule"] = "model"
    doc_generator: GeneratorConfig | None = None
    chunk_generator: GeneratorConfig | None = None
    doc_tokenizer: str | None = None
    chunk_tokenizer: str | None = None
    doc_tokenizer_legacy: bool = Field(
        default=DOC_LEGACY, description="prox_doc's tokenizer_legacy (false, as released)"
    )
    chunk_tokenizer_legacy: bool = Field(
        default=CHUNK_LEGACY, description="prox_chunk's tokenizer_legacy (true, as released)"
    )
    executor: Mode = "compat"
    doc_max_new_tokens: int = Field(default=DOC_MAX_NEW_TOKENS, gt=0)
    chunk_max_new_tokens: int = Field(default=CHUNK_MAX_NEW_TOKENS, gt=0)

    # The levels only judge; ``mode`` (drop or annotate) is the combined stage's to apply.
    def doc_params(self) -> ProxDocParams:
        return ProxDocParams(
            mode="drop",
            programmer=self.programmer,
            generator=self.doc_generator,
            tokenizer=self.doc_tokenizer,
            tokenizer_legacy=self.doc_tokenizer_legacy,
            executor=self.executor,
            max_new_tokens=self.doc_max_new_tokens,
        )

    def chunk_params(self) -> ProxChunkParams:
        return ProxChunkParams(
            mode="drop",
            programmer=self.programmer,
            generator=self.chunk_generator,
            tokenizer=self.chunk_tokenizer,
            tokenizer_legacy=self.chunk_tokenizer_legacy,
            executor=self.executor,
            max_new_tokens=self.chunk_max_new_tokens,
        )

    @model_validator(mode="after")
    def _levels_valid(self) -> ProxParams:
        self.doc_params()
        self.chunk_params()
        return self


@register_stage
class Prox(Filter):
    """``prox_doc`` then ``prox_chunk`` on the documents the first keeps, as upstream.

    One verdict for both levels, so ``mode`` works as for any filter: ``drop`` rejects what
    either level drops, ``annotate`` adds ``keep_prox`` and drops nothing. Every row gets every
    column of both levels; those the doc level drops never reach the chunk level, so their
    chunk columns are null and their text is as it came.
    """

    name = "prox"
    Params = ProxParams  # type: ignore[assignment]
    params: ProxParams
    requires = (TEXT,)

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.doc = ProxDoc(self.params.doc_params())
        self.chunk = ProxChunk(self.params.chunk_params())

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        return self.doc.resources.combine(self.chunk.resources)

    def _level_fields(self) -> tuple[pa.Field, ...]:
        fields: dict[str, pa.Field] = {}
        for stage in (self.doc, self.chunk):
            for f in stage.produced_fields():
                fields[f.name] = f
        return tuple(fields.values())

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (*self._level_fields(), *super().produced_fields())

    def setup(self) -> None:
        self.doc.setup()
        self.chunk.setup()

    def teardown(self) -> None:
        self.doc.teardown()
        self.chunk.teardown()

    def _absorb(self, level: str, stage: _ProxLevel) -> None:
        """Fold a level's counters into this stage's, prefixed by level."""
        stats = stage.reset_stats()
        for key, value in stats.counters.items():
            self.stats.count(f"{level}_{key}", value)
        for key, hist in stats.histograms.items():
            self.stats.histograms.setdefault(f"{level}_{key}", type(hist)()).update(hist)

    def judge(self, batch: pa.Table) -> Verdict:
        first = self.doc.judge(batch)
        refined = batch if first.edited is None else first.edited
        passed = np.asarray(
            pc.fill_null(first.keep, False).to_numpy(zero_copy_only=False), dtype=bool
        )
        onward = refined.filter(pa.array(passed))
        # No call to the chunk level (nor its engine) when the doc level left nothing.
        second = self.chunk.judge(onward) if onward.num_rows else None
        self._absorb("doc", self.doc)
        self._absorb("chunk", self.chunk)
        chunked = self._with_all_columns(onward if second is None else _edited(onward, second))
        stopped = self._with_all_columns(refined.filter(pa.array(~passed)))
        positions = np.concatenate([np.flatnonzero(passed), np.flatnonzero(~passed)])
        order = pa.array(np.argsort(positions, kind="stable"))
        parts = [chunked, stopped.select(chunked.column_names)]
        edited = pa.concat_tables(parts, promote_options="default").take(order)
        keep = passed.copy()
        reasons = first.reasons
        if second is not None:
            chunk_keep = pc.fill_null(second.keep, False).to_numpy(zero_copy_only=False)
            keep[passed] = np.asarray(chunk_keep, dtype=bool)
            assert first.reasons is not None and second.reasons is not None  # levels give them
            stopped_reasons = _array(first.reasons).filter(pa.array(~passed))
            reasons = pa.concat_arrays([_array(second.reasons), stopped_reasons]).take(order)
        return Verdict(pa.array(keep, pa.bool_()), reasons, edited=edited)

    def _with_all_columns(self, table: pa.Table) -> pa.Table:
        """Both levels' columns, null where a level did not see the rows."""
        for field in self._level_fields():
            if field.name not in table.column_names:
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        return table


def _edited(table: pa.Table, verdict: Verdict) -> pa.Table:
    return table if verdict.edited is None else verdict.edited


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values
