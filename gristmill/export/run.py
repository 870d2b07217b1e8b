"""``export_corpus``: curated outputs → training sequences with a loss mask, as a resumable job.

An export is a job on the run driver over its directory ``OUT`` (its lock, markers and
``run.json`` live in ``OUT/_run/``), in two steps:

1. ``tokenise``, on the workers (a process pool or a Dask cluster): each input task is
   tokenised into ``OUT/_run/tokenised/TASK.parquet`` (see ``export.tokenise``). This is the
   expensive part, and a task tokenised once is never tokenised again, even after a kill.
2. ``write``, in this process: the task files are streamed in task order through the packer
   (see ``export.pack`` for the split and truncate modes) into ``sequences.parquet``,
   ``tokens.bin``, ``loss_mask.bin`` and ``index.npy``, each under a temporary name and
   renamed into place, then ``meta.json`` (see ``export.writer``). The batches are replayed as
   they were read, so the files are byte for byte those of a sequential export, whatever the
   executor and its number of workers.

Documents go out in training order: every one but the cooldown documents first, then the
cooldown ones (MeCo trains them last); ``meta.json`` says where each phase starts
(``phase_rows``), and packed rows record their phase.

``meta.json`` accounts for every token:
``tokens_in == tokens_written - tokens_repeated + tokens_dropped``, with
nothing dropped unless truncation was asked for.

What decides the bytes decides when work is done again. The options (the tokenizer file's
content and path, which ``meta.json`` records, the BOS and EOS ids, the phase, the batch size,
``seq_len`` and the pack mode) make the export's fingerprint: a rerun with other options into
the same directory is refused unless asked to overwrite it. Each tokenise unit records the
version of its input (URL, row groups, size, modification time), so that an input that changed
is tokenised again; the write step's fingerprint covers the options and every input's version,
in order. A rerun of a complete export does nothing; a rerun after a kill tokenises
only the tasks that had not completed, and a rerun after a failure only the failed ones. Once
the export is complete the per-task files are removed (the markers and ``run.json`` stay).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from gristmill.errors import ConfigError, GristmillError
from gristmill.executors.base import Executor
from gristmill.executors.local import LocalExecutor
from gristmill.export.pack import PACK_MODES, Packer, PackMode
from gristmill.export.sequences import (
    BOS_CANDIDATES,
    EOS_CANDIDATES,
    Sequence,
    special_token_id,
)
from gristmill.export.tokenise import (
    Tokeniser,
    TokeniseTask,
    tokenise_task,
    tokenised_batches,
)
from gristmill.export.writer import (
    DOCUMENT_SCHEMA,
    PACKED_SCHEMA,
    PARQUET_FILE,
    ExportFiles,
    export_complete,
)
from gristmill.io.base import ShardTask
from gristmill.io.filesystem import exists, filesystem, join, remove
from gristmill.io.formats import open_reader
from gristmill.models import EXPORT_TOKENIZER
from gristmill.runs.driver import RunDriver
from gristmill.runs.phases import digest
from gristmill.runs.steps import Step, Unit, UnitResult
from gristmill.stages.taggers.meco import CONDITIONING, COOLDOWN
from gristmill.stages.taggers.tokens import load_tokenizer

__all__ = [
    "DOCUMENT_SCHEMA",
    "PACKED_SCHEMA",
    "PARQUET_FILE",
    "ExportIncompleteError",
    "ExportOptions",
    "ExportSummary",
    "export_corpus",
]

TOKENISE_STEP = "tokenise"
WRITE_STEP = "write"
WRITE_UNIT = "export"
#: Where the tokenise step writes its per-task files, under ``OUT/_run/``.
TOKENISED_DIR = "tokenised"
PHASES = ("all", "conditioning", "cooldown")


@dataclass(frozen=True)
class ExportOptions:
    tokenizer: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    seq_len: int | None = None
    pack_mode: PackMode = "split"
    phase: Literal["all", "conditioning", "cooldown"] = "all"
    batch_size: int = 1024


@dataclass
class ExportSummary:
    """Counts of an export; ``tokens`` were written, ``tokens_dropped`` lost to truncation.

    ``tasks`` input tasks make the export; ``tasks_run`` of them were tokenised by this call
    (the others by an earlier, interrupted one); ``already_complete`` when nothing was to do.
    """

    documents: int
    sequences: int
    tokens: int
    tokens_dropped: int
    output: Path
    tokens_in: int
    tasks: int = 0
    tasks_run: int = 0
    already_complete: bool = False


class ExportIncompleteError(GristmillError):
    """Some input tasks could not be tokenised (or the files not written); the rest is kept,
    and a rerun of the same export finishes it."""


def _tokenizer_file(options: ExportOptions) -> Path:
    """The tokenizer given, or the bundled byte-level BPE (``gristmill/models/bpe_8k``)."""
    found = Path(options.tokenizer) if options.tokenizer else EXPORT_TOKENIZER
    return found / "tokenizer.json" if found.is_dir() else found


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read the tokenizer ({error.strerror or error})"
        ) from None


def _file_version(url: str) -> tuple[int, str | None]:
    """A file's size and modification time (as its file system reports it)."""
    fs, path = filesystem(url)
    info = fs.info(path)
    changed = next(
        (info[key] for key in ("mtime", "LastModified", "last_modified", "updated") if key in info),
        None,
    )
    return int(info.get("size", 0) or 0), None if changed is None else str(changed)


def _check(options: ExportOptions) -> None:
    if options.seq_len is not None and options.seq_len < 2:
        raise ConfigError("seq_len must be at least 2 (BOS and EOS)")
    if options.pack_mode not in PACK_MODES:
        raise ConfigError(
            f"pack_mode must be one of {', '.join(PACK_MODES)}, not {options.pack_mode!r}"
        )
    if options.phase not in PHASES:
        raise ConfigError(f"phase must be one of {', '.join(PHASES)}, not {options.phase!r}")
    if options.batch_size < 1:
        raise ConfigError(f"batch_size must be positive, not {options.batch_size}")


@dataclass
class Writing:
    """What the write step needs: the task files in order, packing, and what meta.json says."""

    directory: str
    task_files: list[str]
    vocab_size: int
    bos_id: int
    eos_id: int
    seq_len: int | None
    pack_mode: PackMode
    phase: str
    tokenizer: str


def _phase_batches(
    task_files: list[str], cooldown: bool, left: list[int]
) -> Iterator[tuple[list[Sequence], list[str | None]]]:
    """The tokenised batches in task order, only the cooldown documents or only the others;
    ``left[0]`` counts the documents left out (so a pass with nothing to do can be skipped)."""
    for url in task_files:
        for sequences, phases in tokenised_batches(url):
            keep = [(p == COOLDOWN) == cooldown for p in phases]
            left[0] += len(keep) - sum(keep)
            if all(keep):
                yield sequences, phases
            elif any(keep):
                yield (
                    [s for s, k in zip(sequences, keep, strict=True) if k],
                    [p for p, k in zip(phases, keep, strict=True) if k],
                )


def write_export(shared: Writing, _payload: Any) -> dict[str, Any]:
    """Stream the tokenised tasks through the packer into the export's files; meta.json last.

    Documents are written in training order: every document but the cooldown ones first, in
    input order, then the cooldown documents (MeCo trains them last), so one export of
    ``--phase all`` can be trained front to back. Packed rows never mix the two: the packer
    is flushed between them, and every row records its phase.
    """
    packer = Packer(shared.seq_len, shared.pack_mode) if shared.seq_len else None
    documents = tokens_in = last_length = 0
    ranges: dict[str, list[int]] = {}
    with ExportFiles(shared.directory, shared.vocab_size, packed=packer is not None) as files:
        cooldown_documents = [0]
        for cooldown in (False, True):
            if cooldown and not cooldown_documents[0]:
                break
            start, seen = files.sequences, set()
            batches = _phase_batches(shared.task_files, cooldown, cooldown_documents)
            for sequences, phases in batches:
                documents += len(sequences)
                tokens_in += sum(len(s.ids) for s in sequences)
                seen.update(phases)
                if packer is None:
                    last_length = files.write_documents(sequences, phases)
                    continue
                label = COOLDOWN if cooldown else (CONDITIONING if CONDITIONING in seen else None)
                rows = [row for s in sequences for row in packer.add(s)]
                last_length = files.write_rows(rows, label) or last_length
            if packer is not None:
                label = COOLDOWN if cooldown else (CONDITIONING if CONDITIONING in seen else None)
                last_length = files.write_rows(list(packer.flush()), label) or last_length
            for phase in sorted(p for p in seen if p is not None):
                ranges[phase] = [start, files.sequences]
        dropped = packer.dropped if packer else 0
        repeated = packer.repeated if packer else 0
        if tokens_in != files.tokens - repeated + dropped:  # the accounting meta.json promises
            raise RuntimeError(
                f"export lost tokens: {tokens_in} in, {files.tokens} written "
                f"({repeated} of them repeated prefixes), {dropped} dropped"
            )
        meta = files.commit(
            {
                "format": "gristmill-tokens-v1",
                "vocab_size": shared.vocab_size,
                "bos_id": shared.bos_id,
                "eos_id": shared.eos_id,
                "documents": documents,
                "packed": packer is not None,
                "seq_len": shared.seq_len,
                "pack_mode": shared.pack_mode if packer else None,
                # The last packed row is kept short rather than padded: no pad id, no loss.
                "padded": False,
                "last_row_length": last_length if packer else None,
                "phase": shared.phase,
                "tokens_in": tokens_in,
                "tokens_written": files.tokens,
                "tokens_dropped": dropped,
                # BOS + prefix tokens written again at continuation rows (repeat_prefix).
                "tokens_repeated": repeated,
                # Training order: [first, end) sequence (or packed row) index of each phase.
                "phase_order": [p for p in (CONDITIONING, COOLDOWN) if p in ranges],
                "phase_rows": ranges,
                "tokenizer": shared.tokenizer,
                "sequence": "[BOS] + tok(meco_prefix) + tok(text) + [EOS]",
                "loss_mask": "0 on BOS and prefix tokens, 1 on text tokens and EOS",
            }
        )
    return {
        "docs_read": documents,
        "documents": documents,
        "sequences": meta["sequences"],
        "tokens": meta["tokens"],
        "tokens_in": tokens_in,
        "tokens_dropped": dropped,
    }


class ExportJob:
    """One export: its inputs and options resolved, checked and fingerprinted up front."""

    def __init__(self, inputs: list[str], output: str | Path, options: ExportOptions) -> None:
        _check(options)
        self.options = options
        self.output = str(output).rstrip("/") or str(output)
        self.tokenizer_file = _tokenizer_file(options)
        tokenizer = load_tokenizer(str(self.tokenizer_file))
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.bos_id = special_token_id(
            tokenizer,
            options.bos_token,
            kind="bos",
            tokenizer_file=self.tokenizer_file,
            candidates=BOS_CANDIDATES,
        )
        self.eos_id = special_token_id(
            tokenizer,
            options.eos_token,
            kind="eos",
            tokenizer_file=self.tokenizer_file,
            candidates=EOS_CANDIDATES,
        )
        # A curated output directory lists as its data files: _run/, _rejects/ and
        # temporaries are never read.
        self.reader = open_reader(inputs, batch_size=options.batch_size)
        self.tasks: list[ShardTask] = self.reader.plan()
        versions = {url: _file_version(url) for url in dict.fromkeys(t.url for t in self.tasks)}
        self.versions = {
            task.task_id: (task.url, *(task.row_groups or (None, None)), *versions[task.url])
            for task in self.tasks
        }
        tokenising = {
            "tokenizer": str(self.tokenizer_file),
            "tokenizer_sha256": _file_digest(self.tokenizer_file),
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "phase": options.phase,
            "batch_size": options.batch_size,
        }
        packing = {"seq_len": options.seq_len, "pack_mode": options.pack_mode}
        self.settings = {**tokenising, **packing}
        # The options: an export directory made with others is refused (unless overwritten).
        self.fingerprint = digest("export", tokenising, packing)
        # Each task's input version is part of its unit (recorded in its marker, compared by
        # ``still_valid``): an input that changed is tokenised again.
        self.tokenise_fingerprint = digest(TOKENISE_STEP, tokenising)
        # The files depend on every option and on every input, in order.
        self.write_fingerprint = digest(
            WRITE_STEP, self.fingerprint, [self.versions[t.task_id] for t in self.tasks]
        )

    # -- places ------------------------------------------------------------------------------
    def tokenised_dir(self, driver: RunDriver) -> str:
        return join(driver.layout.run_dir, TOKENISED_DIR)

    # -- the job -----------------------------------------------------------------------------
    def run(
        self,
        executor: Executor,
        *,
        overwrite: bool = False,
        progress: bool = False,
        console: Console | None = None,
    ) -> ExportSummary:
        driver = RunDriver(
            self.output, executor, overwrite=overwrite, progress=progress, console=console
        )
        with driver:
            self._check_previous(driver.layout.previous_run())
            driver.claim(
                self.fingerprint,
                {
                    "job": "export",
                    "inputs": [task.url for task in self.tasks],
                    "options": asdict(self.options),
                    "settings": self.settings,
                },
                what="export",
            )
            tokenise = self._tokenise_step(driver)
            done = driver.layout.completed(WRITE_STEP, WRITE_UNIT, self.write_fingerprint)
            if done is not None and export_complete(self.output):
                remove(self.tokenised_dir(driver))  # if a kill left them
                driver.write_failures()
                return self._summary(done, tasks_run=0, already_complete=True)
            tokenised = driver.run_step(tokenise)
            if tokenised.failed:
                driver.write_failures()
                raise self._incomplete(driver, len(tokenised.failed))
            written = self._write(driver, [tokenise.shared.output_url(t) for t in self.tasks])
            if not written.ok:
                driver.write_failures()
                raise ExportIncompleteError(
                    f"export incomplete: every input task is tokenised, but writing the files "
                    f"failed ({written.error}; details in {driver.layout.failures_path}); run "
                    "the same export again to retry the writing"
                )
            remove(self.tokenised_dir(driver))
            driver.write_failures()
        return self._summary(written.value, tasks_run=len(tokenised.ran))

    def _check_previous(self, previous: dict[str, Any] | None) -> None:
        """Refuse, saying why, a directory that holds something else than this export."""
        if previous is None or previous.get("fingerprint") == self.fingerprint:
            return
        if previous.get("job") != "export":
            raise ConfigError(
                f"{self.output} holds the output of a pipeline run or another job, not an "
                "export; pass --overwrite to replace it, or choose another output"
            )
        before = previous.get("settings") or {}
        changed = [
            "the tokenizer's content"
            if key == "tokenizer_sha256"
            else f"{key} {value!r} (was {before[key]!r})"
            for key, value in self.settings.items()
            if key in before and before[key] != value
        ]
        raise ConfigError(
            f"{self.output} holds an export made with other options"
            + (f": {', '.join(changed)}" if changed else "")
            + "; pass --overwrite to replace it, or choose another output"
        )

    def _tokenise_step(self, driver: RunDriver) -> Step:
        shared = Tokeniser(
            self.reader,
            self.tokenised_dir(driver),
            str(self.tokenizer_file),
            self.bos_id,
            self.eos_id,
            self.options.phase,
        )
        layout = driver.layout

        def kept(unit: Unit) -> bool:
            """The task's file is there, tokenised from its input as it is now."""
            done = layout.completed(TOKENISE_STEP, unit.key, self.tokenise_fingerprint) or {}
            version = unit.payload.version
            return done.get("input") == list(version) and exists(
                shared.output_url(unit.payload.task)
            )

        return Step(
            key=TOKENISE_STEP,
            title="export: tokenise",
            fingerprint=self.tokenise_fingerprint,
            units=[
                Unit(task.task_id, task.url, TokeniseTask(task, self.versions[task.task_id]))
                for task in self.tasks
            ],
            work=tokenise_task,
            shared=shared,
            still_valid=kept,
        )

    def _write(self, driver: RunDriver, task_files: list[str]) -> UnitResult:
        """The write step, in this process (it streams every task in order, once)."""
        writing = Writing(
            directory=self.output,
            task_files=task_files,
            vocab_size=self.vocab_size,
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            seq_len=self.options.seq_len,
            pack_mode=self.options.pack_mode,
            phase=self.options.phase,
            tokenizer=str(self.tokenizer_file),
        )
        # Its marker is only half the story (the files might have been removed since), so
        # the step always runs when the export is not already complete.
        remove(driver.layout.marker_path(WRITE_STEP, WRITE_UNIT))
        step = Step(
            key=WRITE_STEP,
            title="export: write",
            fingerprint=self.write_fingerprint,
            units=[Unit(WRITE_UNIT, self.output, None)],
            work=write_export,
            shared=writing,
            in_driver=True,
        )
        (result,) = driver.run_step(step).results
        return result

    def _incomplete(self, driver: RunDriver, count: int) -> ExportIncompleteError:
        first = driver.failures[0]
        return ExportIncompleteError(
            f"export incomplete: {count} of {len(self.tasks)} input tasks could not be "
            f"tokenised (first: {first.error}; all in {driver.layout.failures_path}). The "
            "tasks that completed are kept: fix or remove the failed inputs and run the same "
            "export again"
        )

    def _summary(
        self, value: dict[str, Any], *, tasks_run: int, already_complete: bool = False
    ) -> ExportSummary:
        return ExportSummary(
            documents=int(value.get("documents", 0)),
            sequences=int(value.get("sequences", 0)),
            tokens=int(value.get("tokens", 0)),
            tokens_dropped=int(value.get("tokens_dropped", 0)),
            output=Path(self.output),
            tokens_in=int(value.get("tokens_in", 0)),
            tasks=len(self.tasks),
            tasks_run=tasks_run,
            already_complete=already_complete,
        )


def export_corpus(
    inputs: list[str],
    output: str | Path,
    options: ExportOptions,
    *,
    executor: Executor | None = None,
    overwrite: bool = False,
    progress: bool = False,
    console: Console | None = None,
) -> ExportSummary:
    """Tokenise every document of ``inputs`` into ``output`` (Parquet + token files).

    ``executor`` runs the tokenisation (default: this process); the files are the same with
    any executor. A rerun resumes an interrupted export and does nothing for a complete one;
    ``overwrite`` replaces an export made with other inputs or options, which is otherwise
    refused (``ConfigError``). Raises ``ExportIncompleteError`` when some input could not be
    tokenised: the others are kept for the rerun.
    """
    job = ExportJob(list(inputs), output, options)
    return job.run(
        executor or LocalExecutor(workers=1),
        overwrite=overwrite,
        progress=progress,
        console=console,
    )
