"""The closed trial loop: propose, apply, check, run, evaluate, keep or revert, repeat.

Every trial is recorded before it runs and updated as it goes, so an interrupted loop loses
nothing: `resume()` marks what was left running and continues from the lineage in the store.
Each trial runs in its own working copy (task files + its parent's snapshot + its edit); the
evaluator runs afterwards from a fresh copy of the task's evaluator files, so trial code can
neither see nor change how it is scored.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.compute.budget import (
    Budget,
    Spent,
    TrialPlan,
    charge_trial,
    left,
    more_budget_hint,
    plan_trial,
    spent,
    trials_that_fit,
    was_capped_by_budget,
    with_running,
)
from nanoresearch.compute.executor import Executor, JobSpec, JobState, JobStatus, Resources
from nanoresearch.errors import BudgetExhausted, EndpointUnavailableError, LLMError, NanoResearchError
from nanoresearch.llm.client import LLM
from nanoresearch.llm.local_model import DEFAULT_MODEL
from nanoresearch.llm.sizes import is_small_model
from nanoresearch.store import Store
from nanoresearch.store.models import Trial
from nanoresearch.trials import lineage, preflight
from nanoresearch.trials.evaluate import run_evaluator
from nanoresearch.trials.legality import DiffError, check_edit, make_diff, restore, revert_diff, snapshot
from nanoresearch.trials.proposals import (
    Edit,
    EditError,
    Proposal,
    Setting,
    Specialist,
    apply_edits,
    editable_lines,
    numbered,
    proposal_prompt,
    proposal_schema,
    repair_prompt,
    settable,
    setting_edits,
)
from nanoresearch.trials.task import Task, clean_working_copy, editable_files

LOG_TAIL = 4000


# A trial that ended this way says nothing about its edit (killed with the process, stopped at its
# budget share), so the same edit may be tried again.
NOT_THE_EDITS_FAULT = ("infra", "budget_overrun")


class LoopSettings(BaseModel):
    parallel: int = Field(1, ge=1, le=16)  # trials in flight at once
    max_debug: int = Field(2, ge=0, le=10)  # repair attempts for a crashed edit
    stage: str = "coding"  # whose model proposes edits
    # Stop when this many trials in a row never ran (no usable proposal, illegal edit), so a
    # model that cannot produce edits does not spin forever when the budget has no trial limit.
    max_stalled: int = Field(5, ge=1)
    env: dict[str, str] = {}  # given to every trial (e.g. a fixed seed), under any per-trial values
    guidance: str = ""  # the research plan for these trials (objectives, the user's skills), shown to proposers
    show_search_space: bool = True  # proposers see the task's declared [search] ranges


class TrialLoop:
    def __init__(
        self, task: Task, store: Store, llm: LLM, executor: Executor, run_id: str, user_id: int,
        budget: Budget, workspace: Path, settings: LoopSettings | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.task, self.store, self.llm, self.executor = task, store, llm, executor
        self.run_id, self.user_id, self.budget = run_id, user_id, budget
        self.workspace = workspace
        self.settings = settings or LoopSettings()
        self.say = on_event or (lambda message: None)
        self.files = editable_files(task)
        self._specialists = cycle(specialists_for(task, self.files))
        self.stop_reason = ""  # why the last run() stopped, when the budget stopped it

    # the loop

    def run(self) -> Trial | None:
        self.recover_interrupted()
        try:
            if self.baseline() is None:  # never run, or interrupted: nothing to beat without one
                self.run_batch([self.prepare(None, "baseline", "the task's recipe as given", [])])
            while not self.stalled():
                self.run_batch(self.propose_batch())
            self.say(f"stopping: the last {self.settings.max_stalled} proposals produced nothing runnable")
        except BudgetExhausted as stop:
            self.stop_reason = stop.message
            self.say(f"stopping: {stop.message}" + (f"; {stop.hint}" if stop.hint else ""))
        return self.head()

    def trials(self) -> list[Trial]:
        return self.store.trials(self.run_id)

    def why_no_result(self) -> str:
        """Why the loop ended without a best trial, in the words of what actually happened."""
        ran = [t for t in self.trials() if t.job_id]
        if not ran:
            return f"the budget did not allow any trial: {self.stop_reason}" if self.stop_reason else "no trial ran"
        if all(t.failure == "budget_overrun" for t in ran):
            return f"no trial finished within the budget: every trial that ran was stopped at its budget share ({len(ran)})"
        text = "no trial passed the evaluator"
        return f"{text}; the budget then stopped the loop: {self.stop_reason}" if self.stop_reason else text

    def baseline(self) -> Trial | None:
        """The task's recipe as given, scored; None until a baseline trial finished."""
        return next((t for t in reversed(self.trials()) if t.proposer == "baseline" and t.status == "done"), None)

    def batch_size(self) -> int:
        """Trials to propose at once: never more than the budget can start, so no proposal is paid for
        and then refused."""
        return trials_that_fit(self.task.resources, self.budget, self.used(), self.past_elapsed(),
                               self.task.expected_s, self.settings.parallel)

    def propose_batch(self) -> list[Trial]:
        """One proposal per trial of the next batch. If the budget runs out midway, the proposals
        already made are labelled as not started rather than left `proposed`."""
        batch: list[Trial] = []
        try:
            for _ in range(self.batch_size()):
                batch.append(self.propose(next(self._specialists)))
        except BudgetExhausted as stop:
            self.not_started(batch, stop.message)
            raise
        return batch

    def stalled(self) -> bool:
        recent = self.trials()[-self.settings.max_stalled :]
        never_ran = ("infra", "illegal_edit", "bad_proposal")
        return len(recent) == self.settings.max_stalled and all(t.failure in never_ran and not t.job_id for t in recent)

    def head(self) -> Trial | None:
        return lineage.head(self.trials(), self.task.score.direction)

    def recover_interrupted(self) -> None:
        """Trials left behind by a loop that died: re-attach to jobs still known, label the rest."""
        for trial in self.trials():
            if trial.status == "running" and trial.job_id and self.reattach(trial):
                self.complete(trial, self.reattached_plan(trial))
            elif trial.status in ("proposed", "running"):
                if trial.job_id:
                    self.executor.cancel(trial.job_id)
                self.finish(trial, "infra", "the loop stopped before this trial finished; it was cancelled on resume")

    def reattached_plan(self, trial: Trial) -> TrialPlan:
        """The plan of a trial an earlier process started (its own plan died with that process)."""
        resources = Resources(**trial.resources)
        capped = was_capped_by_budget(self.task.resources, self.task.knobs, resources, trial.knobs)
        return TrialPlan(fits=True, resources=resources, knobs=trial.knobs, capped_by_budget=capped)

    def reattach(self, trial: Trial) -> bool:
        """Executors whose jobs outlive us (SLURM) can hand a job back to a new loop."""
        try:
            status = self.executor.attach(_job_id(trial))
        except NanoResearchError as exc:
            self.say(f"trial {trial.id}: cannot re-attach to job {trial.job_id}: {exc.message}")
            return False
        if status is None:  # the executor's jobs died with the loop that started them
            return False
        self.say(f"trial {trial.id}: re-attached to job {trial.job_id}")
        return True

    # proposing

    def propose(self, specialist: Specialist) -> Trial:
        self.ensure_budget()
        parent = self.head()
        base = self.code_dir(parent)
        prompt = proposal_prompt(
            self.task_text(), numbered(base, specialist.files), lineage.results_table(self.trials()),
            lineage.failures_text(self.trials()), self.budget_text(), specialist,
        )
        return self.ask_and_prepare(parent, specialist.name, prompt, specialist.files)

    def ask_and_prepare(self, parent: Trial | None, proposer: str, prompt: str, files: list[str], repair: bool = False) -> Trial:
        try:
            proposal = self.ask(prompt, self.code_dir(parent), files, repair)
        except EndpointUnavailableError:
            raise  # the server is down, not the model weak: the run pauses and no trial is charged
        except LLMError as exc:
            trial = self.store.add_trial(self.new_trial(parent, proposer, "(no valid proposal)"))
            return self.finish(trial, "bad_proposal", f"the model gave no usable proposal: {exc.message}")
        trial = self.prepare(parent, proposer, proposal.hypothesis, proposal.edits, files, settings=proposal.settings)
        return self.checked_before_running(self.unless_tried(trial), parent, proposal, files)

    def ask(self, prompt: str, code: Path, files: list[str], repair: bool = False) -> Proposal:
        """A proposal for edits to the files of `files` in `code` (and, unless it repairs a crash, for
        values of the settings worth searching, when the proposer is shown them)."""
        prompt = portable(prompt, {str(self.workspace): "<run>", str(self.task.folder): "<task>"})
        names = settable(code, files, self.task.search) if self.settings.show_search_space and not repair else None
        schema = proposal_schema(editable_lines(code, files) if self.lines_only_model() else None, names)
        reply = self.llm.complete(prompt, stage=self.settings.stage, schema=schema, max_tokens=self.answer_room(),
                                  seed=self.proposal_seed())
        try:
            proposal = Proposal.model_validate(reply.parsed)
        except ValidationError as exc:  # what JSON Schema cannot say, such as a value of NaN
            raise LLMError(f"the proposal does not fit its schema: {exc.errors()[0]['msg']}") from None
        # settings not offered are not taken (a server without a grammar may send them anyway)
        return proposal if names else proposal.model_copy(update={"settings": []})

    def checked_before_running(self, trial: Trial, parent: Trial | None, proposal: Proposal, files: list[str]) -> Trial:
        """An edit that code can see would crash (a syntax error, an undefined name, a module that does not
        exist) is not run: the model is asked once to repair it, and the repair, if it passes, runs instead.
        Either way no trial is spent on a crash known in advance."""
        if trial.status != "proposed":
            return trial
        found = self.crashes_seen(trial, files)
        if not found:
            return trial
        self.finish(trial, "bad_proposal", f"it would crash ({preflight.MARK}): " + "; ".join(map(str, found)))
        prompt = repair_prompt(numbered(self.code_dir(trial), files), "\n".join(p.as_traceback() for p in found),
                               "a check before running found it would crash", trial.hypothesis)
        try:
            repair = self.ask(prompt, self.code_dir(trial), files, repair=True)
        except EndpointUnavailableError:
            raise
        except LLMError:
            return trial
        repaired = self.prepare(parent, trial.proposer, trial.hypothesis, proposal.edits, files, then=repair.edits,
                                settings=proposal.settings)
        if repaired.status != "proposed":
            return repaired
        left_over = self.crashes_seen(repaired, files)
        if left_over:
            return self.finish(repaired, "bad_proposal", f"even repaired, it would crash ({preflight.MARK}): " + "; ".join(map(str, left_over)))
        return self.unless_tried(repaired)

    def crashes_seen(self, trial: Trial, files: list[str]) -> list[preflight.Problem]:
        """What in the trial's working copy would fail at once; imports are judged only for a trial that
        runs on this interpreter."""
        return preflight.problems(Path(trial.workdir), files, imports=self.executor.name == "local")

    def proposal_seed(self) -> int | None:
        """The sampling seed of the next proposal; None: the run's (`[llm] seed`)."""
        return None

    def answer_room(self) -> int | None:
        """The most tokens a proposal may answer with: what is left of the loop's tokens (in a research
        run, its share of the run's), so that a proposal overruns the share by its prompt at most. The LLM
        client's gate does the same for the run's whole budget, dollars included; the loop's dollar share
        is checked before each proposal only, so one call may overrun it. None: the stage's max_tokens."""
        if self.budget.tokens is None:
            return None
        room = int(self.budget.tokens - self.used().tokens)
        return max(1, room) if room < self.llm.settings.stage(self.settings.stage).max_tokens else None

    def lines_only_model(self) -> bool:
        """Whether `find` is held to the recipe's own lines: only for a small in-process model (under 1B
        parameters), which cannot copy a line reliably and whose JSON decoding is ours. A larger one
        copies blocks of several lines, which the applier matches whitespace-tolerantly and fuzzily (a
        1.5B, held to single lines, picked the comment above the line it meant and replaced that), and a
        server compiles the schema itself and may not cope with code in an enum."""
        settings = self.llm.settings
        stage = settings.stage(self.settings.stage)
        return settings.endpoint(stage.endpoint).kind == "local" and is_small_model(stage.model or DEFAULT_MODEL)

    def unless_tried(self, trial: Trial) -> Trial:
        """A proposal that changes nothing, or repeats a diff already tried (and judged, or refused before
        running) on the same parent, is not run again."""
        if trial.status != "proposed":
            return trial
        if not trial.diff.strip():
            return self.finish(trial, "bad_proposal", "the edits change nothing in the recipe")
        same = next((t for t in self.trials() if t.id != trial.id and t.parent_id == trial.parent_id and t.diff == trial.diff
                     and (t.job_id and t.failure not in NOT_THE_EDITS_FAULT or preflight.MARK in t.detail)), None)
        if same is not None:
            return self.finish(trial, "bad_proposal", f"the same edit was already tried as trial {same.id}")
        return trial

    def prepare(self, parent: Trial | None, proposer: str, hypothesis: str, edits: list[Edit],
                files: list[str] | None = None, then: list[Edit] | None = None,
                settings: list[Setting] | None = None) -> Trial:
        """A trial of `edits` and `settings` (and `then`, edits of the edited code) on the parent's recipe,
        checked for legality."""
        trial = self.store.add_trial(self.new_trial(parent, proposer, hypothesis))
        workdir = self.trial_dir(trial) / "work"
        self.materialize(workdir, parent)
        trial.workdir = str(workdir)
        files = files or self.files
        try:
            valued = setting_edits(workdir, files, settings or [], self.task.search)
            touched = self.apply(trial, workdir, files, valued, edits, then)
        except EditError as exc:
            return self.finish(trial, "bad_proposal", str(exc))  # the model named a line that is not there
        trial.diff = make_diff(self.code_dir(parent), workdir, self.files)
        snapshot(self.task, workdir, self.trial_dir(trial) / "snapshot")
        problems = check_edit(self.task, touched, workdir)
        if problems:
            return self.finish(trial, "illegal_edit", "; ".join(problems))
        self.store.update_trial(trial)
        return trial

    def apply(self, trial: Trial, workdir: Path, files: list[str], valued: list[Edit], edits: list[Edit],
              then: list[Edit] | None) -> list[str]:
        """Apply the settings' edits and the model's (and `then`); the touched files.

        The settings' edits go first: where the model also edits that line (a 1.5B often does, miscopied),
        the edit code wrote wins. When the model's edits name lines that are not in the code, the settings
        run alone and the hypothesis says so: a small model's values are its reliable part, and refusing
        them with the edits spent most of its proposals."""
        try:
            return sorted({name for step in ([*valued, *edits], then or []) if step for name in apply_edits(workdir, files, step)})
        except EditError:
            if not valued or then:
                raise
            trial.hypothesis = f"(its settings alone: its edits could not be applied) {trial.hypothesis}"
            return apply_edits(workdir, files, valued)

    def run_variant(
        self, parent: Trial | None, proposer: str, hypothesis: str, env: dict[str, str], revert: str = ""
    ) -> Trial:
        """A run-matrix cell: the parent's recipe run again (optionally with one of its recorded
        edits reverted, an ablation) under extra environment such as a seed. It is recorded and
        charged like any trial but never kept, so it never becomes the head."""
        self.ensure_budget()
        trial = self.prepare(parent, proposer, hypothesis, [])
        if revert and trial.status == "proposed":
            workdir = Path(trial.workdir)
            try:
                revert_diff(workdir, revert)
            except DiffError as exc:
                return self.finish(trial, "illegal_edit", f"cannot revert the component: {exc.message}")
            trial.diff = make_diff(self.code_dir(parent), workdir, self.files)
            shutil.rmtree(self.trial_dir(trial) / "snapshot")  # prepare() took it before the revert
            snapshot(self.task, workdir, self.trial_dir(trial) / "snapshot")
            self.store.update_trial(trial)
        if trial.status != "proposed":
            return trial
        return self.complete(trial, self.start(trial, env), keep=False)

    def new_trial(self, parent: Trial | None, proposer: str, hypothesis: str) -> Trial:
        return Trial(
            run_id=self.run_id, parent_id=parent.id if parent else None, proposer=proposer,
            hypothesis=hypothesis, command=self.task.command, executor=self.executor.name,
        )

    # running

    def run_batch(self, batch: list[Trial]) -> None:
        """Start every runnable trial of the batch, then collect them; repair the ones that crashed.

        Every trial that started is collected (waited for, charged, labelled) before anything stops
        the batch, be it the budget refusing a later trial or the executor failing to submit one:
        a started trial is never left running unaccounted."""
        runnable = [trial for trial in batch if trial.status == "proposed"]
        started: list[tuple[Trial, TrialPlan]] = []
        try:
            for index, trial in enumerate(runnable):
                started.append((trial, self.start(trial, share_of=len(runnable) - index)))
        except Exception as stop:
            if isinstance(stop, BudgetExhausted):
                self.not_started(runnable[len(started) :], stop.message)
            self.collect(started)
            raise
        for done in self.collect(started):
            if done.failure == "crash":
                self.debug(done)

    def collect(self, started: list[tuple[Trial, TrialPlan]]) -> list[Trial]:
        return [self.complete(trial, plan) for trial, plan in started]

    def not_started(self, trials: list[Trial], reason: str) -> None:
        for trial in trials:
            if trial.status == "proposed":
                self.finish(trial, "budget_overrun", f"not started: {reason}")

    def start(self, trial: Trial, extra_env: dict[str, str] | None = None, share_of: int = 1) -> TrialPlan:
        """Submit a trial at its share of the budget (`share_of` trials are starting together)."""
        plan = self.plan(share_of)
        if not plan.fits:
            self.finish(trial, "budget_overrun", f"not started: {plan.reason}")
            raise self.budget_stop(plan)
        if plan.reason:
            self.say(f"trial {trial.id}: {plan.reason}")
        if plan.downscaled:  # the lineage must show that this trial ran smaller than the recipe says
            trial.detail = plan.reason
        lowered = self.lowered_knobs(plan)
        spec = JobSpec(
            name=f"{self.task.name}-t{trial.id}", workdir=Path(trial.workdir), command=self.task.command,
            resources=plan.resources, env={**self.settings.env, **{name: _env_value(v) for name, v in lowered.items()}, **(extra_env or {})},
            deadline=plan.deadline,
        )
        trial.job_id = self.executor.submit(spec)
        trial.status, trial.resources, trial.knobs = "running", plan.resources.model_dump(), lowered
        self.store.update_trial(trial)
        self.say(f"trial {trial.id} ({trial.proposer}) running: {_short(trial.hypothesis)}")
        return plan

    def lowered_knobs(self, plan: TrialPlan) -> dict[str, float]:
        """The knobs the budget turned down, the only ones a trial's environment sets: at its default a
        knob is left to the recipe, so an edit of the recipe's own default (MAX_ITER "10" -> "200") takes
        effect instead of being overridden by the task's declared default."""
        return {name: value for name, value in plan.knobs.items() if value != self.task.knobs[name].default}

    def complete(self, trial: Trial, plan: TrialPlan, keep: bool = True) -> Trial:
        status = self.executor.wait(_job_id(trial))
        trial.started_at, trial.ended_at = status.started_at, status.ended_at
        trial.logs_tail = self.executor.logs(_job_id(trial))[-LOG_TAIL:]
        charge_trial(self.store, self.user_id, self.run_id, trial.id, status.elapsed_s, status.cpus, status.gpus)
        if status.failure:
            clean_working_copy(self.task, Path(trial.workdir))  # a failed job's leftovers go at once
            label = "budget_overrun" if status.state == JobState.TIMEOUT and stopped_by_budget(plan, status) else status.failure
            return self.finish(trial, label, status.detail or f"the job ended {status.state.value}")
        # The evaluator is a sandboxed job of a local executor, seeing the trial's folder read-only.
        outcome = run_evaluator(self.task, Path(trial.workdir))
        clean_working_copy(self.task, Path(trial.workdir))  # scored: only the task's files and declared outputs stay
        trial.metrics, trial.score = outcome.metrics, outcome.score
        if outcome.failure:
            return self.finish(trial, outcome.failure, outcome.detail)
        best = self.head()
        # judge() scores every trial it finds no failure in
        trial.kept = keep and trial.score is not None and self.task.score.better(trial.score, best.score if best else None)
        trial.status = "done"
        self.store.update_trial(trial)
        verdict = ("kept" if trial.kept else "reverted") if keep else "recorded"
        self.say(f"trial {trial.id}: {self.task.score.metric} = {trial.score:.4g} ({verdict})")
        return trial

    def debug(self, crashed: Trial) -> Trial:
        """Ask for a repair of a crashed edit, as a child trial, a bounded number of times."""
        attempts = 0
        node = crashed
        while node.failure == "crash" and node.parent_id is not None and attempts < self.settings.max_debug:
            attempts += 1
            self.ensure_budget()  # a repair the budget cannot run is not worth asking for
            prompt = repair_prompt(numbered(self.code_dir(node), self.files), node.logs_tail, node.failure, node.hypothesis)
            node = self.ask_and_prepare(node, "debugger", prompt, self.files, repair=True)
            if node.status == "proposed":
                node = self.complete(node, self.start(node))
        return node

    def finish(self, trial: Trial, failure: str, detail: str) -> Trial:
        trial.status, trial.failure, trial.detail, trial.kept = "failed", failure, detail, False
        self.store.update_trial(trial)
        self.say(f"trial {trial.id} failed ({failure}): {_short(detail, 160)}")
        return trial

    # budget

    def plan(self, share_of: int = 1) -> TrialPlan:
        running = [Resources(**t.resources) for t in self.trials() if t.status == "running" and t.job_id]
        return plan_trial(self.task.resources, self.task.knobs, self.budget, with_running(self.used(), running),
                          self.past_elapsed(), self.task.expected_s, share_of)

    def past_elapsed(self) -> list[float]:
        return [t.ended_at - t.started_at for t in self.trials() if t.started_at and t.ended_at and not t.failure]

    def used(self) -> Spent:
        return spent(self.store, self.user_id, self.run_id)

    def ensure_budget(self) -> None:
        plan = self.plan()
        if not plan.fits:
            raise self.budget_stop(plan)

    def budget_stop(self, refused: TrialPlan) -> BudgetExhausted:
        """The stop for a trial the budget refused, with the command that gives the run more of the
        refusing unit (this run's limit of it: the loop may work within a share of the run's budget)."""
        run = self.store.get_run(self.run_id)
        limit = getattr(run.options.budget, refused.unit, None) if refused.unit else None
        hint = None if limit is None else more_budget_hint(refused.unit, limit, self.run_id, run)
        return BudgetExhausted(refused.reason, hint=hint, unit=refused.unit or None)

    def budget_text(self) -> str:
        remaining = left(self.budget, self.used())
        return ", ".join(f"{unit}: {value:.4g}" for unit, value in remaining.items()) or "no limits"

    # files

    def trial_dir(self, trial: Trial) -> Path:
        return self.workspace / "trials" / f"{trial.id:04d}"

    def code_dir(self, trial: Trial | None) -> Path:
        """Where a trial's editable files are (the task folder itself for the root)."""
        return self.trial_dir(trial) / "snapshot" if trial else self.task.folder

    def materialize(self, workdir: Path, parent: Trial | None) -> None:
        """The task's files minus the evaluator's, with the parent's version of the recipe."""
        frozen = set(self.task.evaluator.files) | {"task.toml"}
        shutil.copytree(self.task.folder, workdir, ignore=lambda d, names: [n for n in names if _relative(self.task.folder, d, n) in frozen])
        if parent is not None:
            restore(self.task, self.code_dir(parent), workdir)

    def task_text(self) -> str:
        direction = "higher" if self.task.score.direction == "maximize" else "lower"
        text = f"{self.task.name}: {self.task.description}\nScore: {self.task.score.metric} ({direction} is better)."
        space = self.task.search_space_text() if self.settings.show_search_space else ""
        text = f"{text}\n{space}" if space else text
        return f"{text}\nPlan:\n{self.settings.guidance}" if self.settings.guidance else text


def stopped_by_budget(plan: TrialPlan, status: JobStatus) -> bool:
    """Whether a trial that timed out was stopped by its budget share: its time limit came from the
    budget, or it ran into the wall budget's deadline (SLURM's end times are whole seconds)."""
    ended = status.ended_at or time.time()
    return plan.capped_by_budget or (plan.deadline is not None and ended >= plan.deadline - 1)


def specialists_for(task: Task, files: list[str]) -> list[Specialist]:
    """The task's declared specialists, or one generalist owning every editable file."""
    if task.specialists:
        return [Specialist(name=name, files=s.files, focus=s.focus) for name, s in task.specialists.items()]
    return [Specialist(name="generalist", files=files, focus="any change that could improve the score")]


def portable(text: str, places: dict[str, str]) -> str:
    """Logs quote absolute paths (the run, the task, the Python installation); without them a prompt,
    and so a recorded run, is the same on any machine."""
    places = {**places, sys.prefix: "<python>", sys.base_prefix: "<python>"}
    for path in sorted(places, key=len, reverse=True):  # the longest first: a venv may live inside the run
        text = text.replace(path, places[path])
    return text


def _relative(root: Path, folder: str, name: str) -> str:
    return (Path(folder) / name).relative_to(root).as_posix()


def _env_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _job_id(trial: Trial) -> str:
    """The executor's id of a submitted trial (start() sets it before anything waits on the job)."""
    if trial.job_id is None:
        raise RuntimeError(f"trial {trial.id} has no job: it was never submitted")
    return trial.job_id


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
