"""A pipeline run: its stages cut into passes at each stage with a corpus-wide phase.

A pipeline without such a stage is one pass over every task, from the input to the output. A
stage that needs the whole run first (``Stage.corpus_phase``) starts a new pass, unless its
phase reads no document (``CorpusPhase.reads_documents``: a template bank's index); such a
phase runs before the first pass and its stage stays inside whatever pass it falls in:

1. the pass before it runs over every task and writes ``_run/passes/NN/`` (its rejects go to
   ``_rejects/pass-NN/``), so that the expensive stages before a cut run once;
2. the stage's phase runs over that output (map, reduce, finish: ``runs.phases``) and the
   stage receives its decision;
3. the next pass starts with that stage and reads the previous pass's output; the last pass
   writes OUTPUT itself.

A task that fails in any step is left out of every later step and reported; the whole-run
decisions are made over the tasks that got there, and the report and ``stats.json`` say so.
Every step is resumable: each pass's fingerprint includes the decisions before it, so a rerun
reuses whatever is still valid (a pass, a map) and redoes what depends on a decision that
changed, e.g. when a failed file comes back and the cut is recomputed with it. Once every
task has its output, the intermediate copies are removed; the decisions and markers stay, so
a rerun of a complete output does nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from gristmill.core.chain import StageChain
from gristmill.core.stats import PipelineStats
from gristmill.errors import InputError
from gristmill.executors.base import Executor
from gristmill.io.base import Reader, ShardTask, Writer
from gristmill.io.filesystem import exists, join, remove
from gristmill.io.parquet import ParquetReader, ParquetWriter
from gristmill.runs.driver import RunDriver, StepOutcome
from gristmill.runs.phases import PhaseRun, PhaseSource, digest
from gristmill.runs.report import RunReport, print_report
from gristmill.runs.shard import ShardPass, run_shard
from gristmill.runs.steps import Step, Unit


@dataclass(frozen=True)
class Pass:
    """Stages ``[start, stop)``; ``phase`` when the first one has a corpus-wide phase."""

    number: int
    start: int
    stop: int
    phase: bool


def phased_stages(chain: StageChain, *, reading: bool | None = None) -> list[int]:
    """Positions of the stages with a corpus-wide phase: those that read documents (True),
    those that read none (False), or all of them (None)."""
    found = []
    for index, stage in enumerate(chain.stages):
        phase = stage.corpus_phase()
        if phase is not None and reading in (None, phase.reads_documents):
            found.append(index)
    return found


def split_passes(chain: StageChain) -> list[Pass]:
    phased = phased_stages(chain, reading=True)
    cuts = sorted({0, len(chain.stages), *phased})
    if len(cuts) == 1:  # no stages at all: one pass that copies the input
        return [Pass(1, 0, 0, False)]
    return [
        Pass(n, start, stop, start in phased)
        for n, (start, stop) in enumerate(itertools.pairwise(cuts), start=1)
    ]


def validate_inputs(chain: StageChain, reader: Reader, tasks: list[ShardTask]) -> None:
    """Check the stages against the first readable input of each format, before any task.

    An unreadable file is not an error here: its task fails and is reported while the others
    run. A missing column, though, is the pipeline's problem and stops the run at once.
    """
    checked: set[str] = set()
    for task in tasks:
        if task.format in checked:
            continue
        try:
            schema = reader.schema(task)
        except InputError:
            continue
        chain.validate(schema, source=task.url)
        checked.add(task.format)


@dataclass
class Source:
    """What a pass reads: the run's input (with ``--limit``) or the previous pass's output."""

    reader: Reader
    tasks: list[ShardTask]
    limit: int | None


class PipelineRun:
    """One run of a pipeline's passes and phases on the run driver."""

    def __init__(
        self,
        chain: StageChain,
        reader: Reader,
        writer: Writer,
        *,
        rejects: bool = True,
        spec: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> None:
        self.chain = chain
        self.reader = reader
        self.writer = writer
        self.rejects = rejects
        self.spec = spec or chain.spec()
        self.limit = limit
        self.passes = split_passes(chain)
        #: Phases that read no document: run once, before the first pass.
        self.upfront = phased_stages(chain, reading=False)
        self.labels = chain.stage_labels
        self.base = chain.fingerprint(limit=limit)
        #: Each pass's stages, one chain per pass for the whole run (set up once in-process).
        self.chains = {p.number: chain.part(p.start, p.stop) for p in self.passes}

    # -- the run -------------------------------------------------------------------------------
    def run(
        self,
        executor: Executor,
        *,
        overwrite: bool = False,
        progress: bool = True,
        console: Console | None = None,
    ) -> RunReport:
        self.driver = RunDriver(
            self.writer.path, executor, overwrite=overwrite, progress=progress, console=console
        )
        with self.driver:
            self.tasks = self.reader.plan()
            validate_inputs(self.chain, self.reader, self.tasks)
            self.driver.claim(self.base, {"pipeline": self.spec}, what="pipeline or --limit")
            self.sources = {task.task_id: task.url for task in self.tasks}
            self.phase_runs = {
                self.labels[index]: PhaseRun(
                    self.labels[index],
                    self.chain.stages[index].corpus_phase(),  # type: ignore[arg-type]
                    self.driver.layout,
                    self.base,
                )
                for index in phased_stages(self.chain)
            }
            try:
                report = self._run_passes()
            finally:
                for chain in self.chains.values():
                    chain.teardown()  # what ran in this process (workers=1) lets its models go
            self.driver.write_failures()
        if progress:
            print_report(report, self.driver.console)
        return report

    def _pass_fingerprint(self, part: Pass, decisions: dict[str, Any]) -> str:
        """A pass's output depends on the decisions of the phases of its stages and of every
        stage before (a cut phase is its first stage's; an upfront one may be any of them)."""
        before = {
            label: decisions[label]
            for label in self.phase_runs
            if self.labels.index(label) < part.stop
        }
        return digest(self.base, "pass", part.number, before)

    def _pass_key(self, part: Pass) -> str:
        return f"pass-{part.number:02d}"

    def _title(self, part: Pass) -> str:
        labels = self.labels[part.start : part.stop]
        stages = f"{labels[0]} … {labels[-1]}" if len(labels) > 1 else (labels or ["copy"])[0]
        if len(self.passes) == 1:
            return stages
        return f"pass {part.number} of {len(self.passes)}: {stages}"

    def _run_passes(self) -> RunReport:
        source = Source(self.reader, self.tasks, self.limit)
        decisions: dict[str, Any] = {}
        outcomes: list[StepOutcome] = []
        phases: dict[str, dict[str, Any]] = {}
        ran: set[str] = set()
        not_run: list[str] = []
        complete = self._saved_decisions_if_complete()
        if complete is not None:
            return self._report_complete(complete)
        # The phases that read no document first (their source keeps the input's --limit: its
        # map reads nothing anyway); then, at each cut, the phase of the pass it starts.
        for index in self.upfront:
            decided = self._decide(self.labels[index], source, decisions, phases, ran)
            if decided is None:
                not_run = [self._title(p) for p in self.passes]
                break
            source = decided
        for part in self.passes if not not_run else []:
            if part.phase:
                decided = self._decide(self.labels[part.start], source, decisions, phases, ran)
                if decided is None:
                    not_run += [self._title(p) for p in self.passes[part.number - 1 :]]
                    break
                source = decided
            outcome = self.driver.run_step(self._pass_step(part, source, decisions))
            outcomes.append(outcome)
            ran.update(r.key for r in outcome.ran)
            source = self._next_source(part, source, outcome)
        self.driver.record(
            decisions=decisions,
            output_fingerprint=(
                self._pass_fingerprint(self.passes[-1], decisions) if not not_run else None
            ),
        )
        whole = (
            not not_run
            and not self.driver.failures
            and outcomes
            and len(outcomes[-1].ok) == len(self.tasks)
        )
        if whole:
            self._remove_intermediates()
        return self._report(outcomes, phases, ran, not_run)

    # -- passes ---------------------------------------------------------------------------------
    def _pass_step(self, part: Pass, source: Source, decisions: dict[str, Any]) -> Step:
        last = part.number == len(self.passes)
        layout = self.driver.layout
        writer: Writer = self.writer
        rejects: str | None = layout.rejects
        if not last:
            writer = ParquetWriter(layout.pass_dir(part.number))
            rejects = layout.pass_rejects(part.number)
        chain = self.chains[part.number]
        rest = self.chain.part(part.start, len(self.chain.stages))  # one rejects schema per run
        shared = ShardPass(
            chain, source.reader, writer, rejects if self.rejects else None, source.limit, rest
        )

        def kept(unit: Unit) -> bool:
            """A task counts as done only while its output is there (a user may delete it)."""
            return exists(writer.output_url(unit.payload))

        return Step(
            key=self._pass_key(part),
            title=self._title(part),
            fingerprint=self._pass_fingerprint(part, decisions),
            units=[Unit(t.task_id, self.sources[t.task_id], t) for t in source.tasks],
            work=run_shard,
            shared=shared,
            resources=chain.resources,
            still_valid=kept,
        )

    def _next_source(self, part: Pass, source: Source, outcome: StepOutcome) -> Source:
        """The next pass reads this pass's output, for the tasks that completed it."""
        done = {r.key for r in outcome.ok}
        directory = self.driver.layout.pass_dir(part.number)
        tasks = [
            ShardTask(join(directory, t.output_name()), t.output_name())
            for t in source.tasks
            if t.task_id in done
        ]
        return Source(ParquetReader([directory], batch_size=self.reader.batch_size), tasks, None)

    # -- phases ---------------------------------------------------------------------------------
    def _decide(
        self,
        label: str,
        source: Source,
        decisions: dict[str, Any],
        phases: dict[str, dict[str, Any]],
        ran: set[str],
    ) -> Source | None:
        """Run one phase and record its decision; the tasks it covers go on (None: it failed)."""
        found = self._run_phase(label, source, ran)
        if found is None:
            return None
        decision, included = found
        decisions[label] = decision
        phases[label] = {
            "tasks": len(included),
            "tasks_left_out": sorted(set(self.sources) - set(included)),
            "decision": decision,
        }
        return Source(
            source.reader, [t for t in source.tasks if t.task_id in included], source.limit
        )

    def _run_phase(
        self, label: str, source: Source, ran: set[str]
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Map, reduce and finish; the decision and the tasks it covers (None: it failed)."""
        phase_run = self.phase_runs[label]
        map_step = phase_run.map_step(source.reader, source.tasks, source.limit)
        mapped = self.driver.run_step(map_step)
        ran.update(r.key for r in mapped.ran)
        maps = mapped.values()
        reduce_step = phase_run.reduce_step(map_step.fingerprint, maps)
        reduced = self.driver.run_step(reduce_step)
        if reduced.failed:
            return None
        included = tuple(t for t in source.tasks if t.task_id in maps)
        finish_step = phase_run.finish_step(
            reduce_step.fingerprint,
            reduced.values(),
            PhaseSource(source.reader, included, source.limit),
        )
        finished = self.driver.run_step(finish_step)
        if finished.failed:
            return None
        result = phase_run.result(reduced.values(), finished.results[0].value)
        self.chain.stages[self.labels.index(label)].use_phase_result(result)
        return result.decision, sorted(maps)

    def _saved_decisions_if_complete(self) -> dict[str, Any] | None:
        """The saved decisions, when the output is already whole under them (else None)."""
        decisions: dict[str, Any] = {}
        for label, phase_run in self.phase_runs.items():
            saved = phase_run.saved_decision()
            if saved is None:
                return None
            decisions[label] = saved
        last = self.passes[-1]
        fingerprint = self._pass_fingerprint(last, decisions)
        layout = self.driver.layout
        for task in self.tasks:
            if layout.completed(self._pass_key(last), task.task_id, fingerprint) is None:
                return None
        return decisions if self.phase_runs else None

    def _report_complete(self, decisions: dict[str, Any]) -> RunReport:
        """A rerun of a whole output: every figure from the markers, nothing runs."""
        source = Source(self.reader, self.tasks, self.limit)
        outcomes = [
            self.driver.collect(self._pass_step(part, source, decisions)) for part in self.passes
        ]
        phases = {
            label: {"tasks": len(self.tasks), "tasks_left_out": [], "decision": decision}
            for label, decision in decisions.items()
        }
        self._remove_intermediates()  # left by an earlier run whose failed inputs are gone
        return self._report(outcomes, phases, set(), [])

    def _remove_intermediates(self) -> None:
        remove(self.driver.layout.passes_dir)
        for phase_run in self.phase_runs.values():
            phase_run.remove_data()

    # -- the report ------------------------------------------------------------------------------
    def _report(
        self,
        outcomes: list[StepOutcome],
        phases: dict[str, dict[str, Any]],
        ran: set[str],
        not_run: list[str],
    ) -> RunReport:
        stats = PipelineStats()
        for outcome in outcomes:
            for result in outcome.ok:
                part = PipelineStats.from_dict(result.value.get("stats", {}))
                part.tasks = 0
                stats.merge(part)
        finished = outcomes[-1].ok if outcomes and len(outcomes) == len(self.passes) else []
        stats.tasks = len(finished)
        record = stats.to_dict()
        record["phases"] = phases
        if not_run:
            record["not_run"] = not_run
        self.driver.layout.write_stats(record)
        first = outcomes[0] if outcomes else None
        return RunReport(
            output=self.driver.layout.root,
            stats=stats,
            tasks_total=len(self.tasks),
            tasks_run=len(ran & set(self.sources)),
            tasks_skipped=len(set(self.sources) - ran),
            failures=list(self.driver.failures),
            docs_read=sum(int(r.value.get("docs_read", 0)) for r in first.ran if r.ok)
            if first
            else 0,
            # This run's reads and those of earlier runs (every completed pass-1 unit's marker).
            docs_read_total=sum(int(r.value.get("docs_read", 0)) for r in first.ok) if first else 0,
            seconds=self.driver.seconds,
            phases=phases,
            not_run=not_run,
        )
