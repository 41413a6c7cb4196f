"""The methods `eval search` compares: the trial loop and the simple baselines that often match such loops.

Every method is the product's own TrialLoop (proposal, apply, legality check, executor, frozen
evaluator, budget) with one thing changed: what the proposer sees. The loop sees its lineage and
proposes from the best kept trial through the task's specialists, with a debugger for crashes.

- `random`: no model; the task's recipe as given, with each variable of the task's `[search]`
  table drawn uniformly from its declared range (reproducible per seed).
- `independent`: each proposal starts from the task's recipe and sees no other attempt.
- `sequential`: each proposal starts from the task's recipe and sees every earlier attempt, its
  edit and its score, but no lineage tree, no specialists, no debugger.
- `repeat`: the task's recipe as given, run again.

Every trial of every method runs under its own seed (`first_seed + k` for its k-th trial, through
the task's `seed_env`): one run of a recipe is a noisy measurement, and a method that keeps the
best of noisy runs must be seen doing so when its pick is re-scored on fresh seeds.
"""

from __future__ import annotations

import math
import random
from typing import Any

from nanoresearch.compute.budget import TrialPlan
from nanoresearch.errors import UserError
from nanoresearch.store.models import Trial
from nanoresearch.trials.lineage import failures_text, outcome_text
from nanoresearch.trials.loop import LoopSettings, TrialLoop
from nanoresearch.trials.proposals import Specialist, numbered, proposal_prompt
from nanoresearch.trials.task import SearchRange, Task

METHODS = ("loop", "random", "independent", "sequential", "repeat")
METHOD_TEXT = {
    "loop": "the trial loop (lineage, specialists, debugger)",
    "random": "random search over the task's [search] ranges",
    "independent": "independent samples from the task's recipe, best kept",
    "sequential": "sequential sampling: earlier attempts and scores in view, no tree",
    "repeat": "the task's recipe repeated",
}
ATTEMPTS_SHOWN = 12  # earlier attempts in a sequential prompt; older ones drop out to bound its length
DIFF_CHARS = 600  # of each earlier attempt's diff shown


class SeededTrials(TrialLoop):
    """The trial loop whose k-th started trial runs with the task's seed variable at `first_seed + k`."""

    def __init__(self, *args: Any, first_seed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_seed = first_seed

    def start(self, trial: Trial, extra_env: dict[str, str] | None = None, share_of: int = 1) -> TrialPlan:
        started = sum(1 for t in self.trials() if t.job_id)
        seed = {self.task.seed_env: str(self.first_seed + started)} if self.task.seed_env else {}
        return super().start(trial, {**seed, **(extra_env or {})}, share_of)

    def trial_env(self, trial: Trial) -> dict[str, str]:
        """The environment a trial's recipe ran with beyond the task's knobs and the seed, to run it again."""
        return {}

    def proposal_seed(self) -> int:
        """Each proposal samples with a seed of its own (the seed of the trial it will become): independent
        samples of one prompt would otherwise be copies of one another at any temperature."""
        return self.first_seed + len(self.trials())


class RandomSearch(SeededTrials):
    def __init__(self, *args: Any, first_seed: int, **kwargs: Any) -> None:
        super().__init__(*args, first_seed=first_seed, **kwargs)
        self.rng = random.Random(first_seed)
        self.drawn: dict[int, dict[str, str]] = {}

    def propose(self, specialist: Specialist) -> Trial:
        self.ensure_budget()
        values = draw(self.task.search, self.rng)
        shown = ", ".join(f"{name}={value}" for name, value in values.items())
        trial = self.prepare(None, "random", f"random search: {shown}", [])
        self.drawn[trial.id] = values
        return trial

    def start(self, trial: Trial, extra_env: dict[str, str] | None = None, share_of: int = 1) -> TrialPlan:
        drawn = self.drawn.get(trial.id, {})
        plan = super().start(trial, {**drawn, **(extra_env or {})}, share_of)
        if drawn:  # the lineage shows what each draw ran with
            trial.knobs = {**trial.knobs, **{name: float(value) for name, value in drawn.items()}}
            self.store.update_trial(trial)
        return plan

    def trial_env(self, trial: Trial) -> dict[str, str]:
        return self.drawn.get(trial.id, {})


class RepeatedBaseline(SeededTrials):
    def propose(self, specialist: Specialist) -> Trial:
        self.ensure_budget()
        return self.prepare(None, "repeat", "the task's recipe as given, again", [])


class IndependentSamples(SeededTrials):
    def propose(self, specialist: Specialist) -> Trial:
        self.ensure_budget()
        prompt = self.prompt_from_recipe("(none shown: this proposal is made without seeing any other)", "(none shown)")
        return self.ask_and_prepare(None, "independent", prompt, self.files)

    def prompt_from_recipe(self, attempts: str, failures: str) -> str:
        """The loop's proposal prompt, always on the task's recipe, with the attempts this method may see."""
        return proposal_prompt(self.task_text(), numbered(self.task.folder, self.files), attempts, failures,
                               self.budget_text(), sampler(self.files),
                               code_title="CODE (the task's recipe; your edits apply to it)")


class SequentialSampling(IndependentSamples):
    def propose(self, specialist: Specialist) -> Trial:
        self.ensure_budget()
        prompt = self.prompt_from_recipe(attempts_text(self.trials()), failures_text(self.trials()))
        return self.ask_and_prepare(None, "sequential", prompt, self.files)


METHOD_CLASSES: dict[str, type[SeededTrials]] = {
    "loop": SeededTrials, "random": RandomSearch, "independent": IndependentSamples,
    "sequential": SequentialSampling, "repeat": RepeatedBaseline,
}


def method_loop(method: str, *args: Any, first_seed: int, **kwargs: Any) -> SeededTrials:
    """A ready TrialLoop for one method (TrialLoop's own arguments after the name). The baselines get
    no debugger: repairing a crashed edit is one of the loop's mechanisms under test."""
    if method not in METHOD_CLASSES:
        raise UserError(f"unknown method {method!r}", hint=f"methods are: {', '.join(METHODS)}")
    if method != "loop":
        settings: LoopSettings = kwargs.pop("settings", None) or LoopSettings()
        kwargs["settings"] = settings.model_copy(update={"max_debug": 0})
    return METHOD_CLASSES[method](*args, first_seed=first_seed, **kwargs)


def check_methods(task: Task, methods: list[str]) -> None:
    """Refuse what cannot be compared, before any trial runs."""
    unknown = [name for name in methods if name not in METHOD_CLASSES]
    if not methods:
        raise UserError("no method to compare", hint=f"name some of: {', '.join(METHODS)}")
    if unknown:
        raise UserError(f"unknown method(s): {', '.join(unknown)}", hint=f"methods are: {', '.join(METHODS)}")
    if "random" in methods and not task.search:
        raise UserError(f"task {task.name!r} declares no [search] ranges, so random search has nothing to draw",
                        hint="declare them in task.toml (docs/task-format.md), or leave `random` out of --methods")
    if task.seed_env is None:
        raise UserError(f"task {task.name!r} has no seed_env: its picks cannot be re-scored on fresh seeds",
                        hint="make the recipe read its seed from an environment variable and name it in seed_env")


def draw(space: dict[str, SearchRange], rng: random.Random) -> dict[str, str]:
    """One value per variable, uniform (or log-uniform) in its range, as the recipe reads it from the environment."""
    values = {}
    for name in sorted(space):  # a fixed order, so a seed gives the same draws whatever the file's order
        bounds = space[name]
        if bounds.log:
            value = math.exp(rng.uniform(math.log(bounds.min), math.log(bounds.max)))
        else:
            value = rng.uniform(bounds.min, bounds.max)
        values[name] = bounds.value_text(value)
    return values


def sampler(files: list[str]) -> Specialist:
    return Specialist(name="sampler", files=files, focus="any change that could improve the score")


def attempts_text(trials: list[Trial]) -> str:
    """Earlier attempts for a sequential prompt: outcome, hypothesis and the edit, newest last."""
    shown = [t for t in trials if t.status in ("done", "failed")][-ATTEMPTS_SHOWN:]
    if not shown:
        return "none yet"
    parts = []
    for number, t in enumerate(shown, start=1):
        diff = t.diff.strip() or "(no change: the recipe as given)"
        diff = diff if len(diff) <= DIFF_CHARS else diff[:DIFF_CHARS] + "\n…"
        parts.append(f"attempt {number} ({t.proposer}): {outcome_text(t)}; {' '.join(t.hypothesis.split())[:200]}\n{diff}")
    return "\n\n".join(parts)
