"""The baselines of `eval search`: the product's trial loop with only what the proposer sees changed."""

import random
from pathlib import Path

import pytest
from eval_search_task import write_noisy_task

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget
from nanoresearch.compute.executor import create_executor
from nanoresearch.errors import UserError
from nanoresearch.evaluation.baselines import SeededTrials, check_methods, draw, method_loop
from nanoresearch.llm.client import LLM
from nanoresearch.runs import new_run
from nanoresearch.store.models import RunOptions
from nanoresearch.trials.loop import LoopSettings
from nanoresearch.trials.task import SearchRange, load_task


def proposal(hypothesis: str, value: str) -> str:
    return f'{{"hypothesis": "{hypothesis}", "edits": [{{"find": "VALUE = 1.0", "replace": "VALUE = {value}"}}]}}'


@pytest.fixture
def noisy(tmp_path):
    return load_task(write_noisy_task(tmp_path / "noisy"))


@pytest.fixture
def build(settings, store, noisy):
    """A method's loop on the noisy task, on a run of its own, with scripted proposals."""

    def make(method: str, trials: int, first_seed: int = 0, provider: ScriptedProvider | None = None):
        user = store.ensure_user(settings.user)
        run = new_run(store, settings, user, noisy.name, method, RunOptions(), kind="trials")
        store.set_run_status(run.id, "running")
        llm = LLM(settings.model_copy(update={"llm": settings.llm.model_copy(update={"replay": "off"})}), store, user,
                  run_id=run.id, providers={"local": provider or ScriptedProvider()})
        return method_loop(method, noisy, store, llm, create_executor("local", settings), run.id, user,
                           Budget(trials=trials), Path(run.workspace), first_seed=first_seed)

    return make


def test_draws_are_uniform_in_the_declared_ranges_and_the_same_for_the_same_seed():
    space = {"LR": SearchRange(min=1e-4, max=1e-1, log=True), "EPOCHS": SearchRange(min=2, max=40, integer=True)}
    assert draw(space, random.Random(7)) == draw(space, random.Random(7))
    assert draw(space, random.Random(7)) != draw(space, random.Random(8))
    rng = random.Random(7)
    draws = [draw(space, rng) for _ in range(200)]
    assert draws[0] != draws[1]
    learning_rates = [float(d["LR"]) for d in draws]
    assert all(1e-4 <= lr <= 1e-1 for lr in learning_rates)
    # log-uniform: about a third of the draws in each decade, so many below 1e-3 (uniform would give ~1%)
    assert sum(lr < 1e-3 for lr in learning_rates) > 40
    assert all(d["EPOCHS"].isdigit() and 2 <= int(d["EPOCHS"]) <= 40 for d in draws)


def test_a_range_must_be_a_range():
    with pytest.raises(ValueError, match="above min"):
        SearchRange(min=3, max=3)
    with pytest.raises(ValueError, match="min > 0"):
        SearchRange(min=0, max=1, log=True)


def test_random_search_runs_its_draws_reproducibly_per_seed(build, store):
    runs = [build("random", trials=4, first_seed=seed) for seed in (5, 5, 6)]
    for loop in runs:
        loop.run()
    steps = [[t.metrics["step"] for t in store.trials(loop.run_id)] for loop in runs]
    assert steps[0] == steps[1] and steps[0] != steps[2]
    assert steps[0][0] == 0.0 and all(0 <= step <= 4 for step in steps[0][1:])  # the baseline, then the draws
    drawn = store.trials(runs[0].run_id)[1]
    assert drawn.proposer == "random" and drawn.parent_id is None and drawn.diff == ""
    assert drawn.knobs["STEP"] == pytest.approx(drawn.metrics["step"], abs=1e-3)  # the lineage shows the draw


def test_every_trial_runs_on_its_own_seed(build, store):
    loop = build("repeat", trials=3, first_seed=2000)
    loop.run()
    trials = store.trials(loop.run_id)
    assert [t.metrics["seed"] for t in trials] == [2000, 2001, 2002]
    assert [t.proposer for t in trials] == ["baseline", "repeat", "repeat"]


def test_independent_samples_see_no_other_attempt_and_start_from_the_recipe(build, store):
    provider = ScriptedProvider(proposal("try three", "3.0"), proposal("try two", "2.0"))
    loop = build("independent", trials=3, provider=provider)
    loop.run()
    trials = store.trials(loop.run_id)
    assert [t.score for t in trials] == [1.0, 3.0 + 0.09, 2.0 + 0.08]  # value + the seed's noise
    assert all(t.parent_id is None for t in trials)
    second_prompt = provider.history[1].messages[-1].content
    assert "try three" not in second_prompt and "VALUE = 1.0" in second_prompt
    assert loop.settings.max_debug == 0  # the debugger is one of the loop's mechanisms, not the baselines'


def test_sequential_sampling_sees_earlier_attempts_and_scores_but_edits_the_recipe(build, store):
    provider = ScriptedProvider(proposal("try three", "3.0"), proposal("try five", "5.0"))
    loop = build("sequential", trials=3, provider=provider)
    loop.run()
    trials = store.trials(loop.run_id)
    assert all(t.parent_id is None for t in trials) and trials[-1].score == 5.0 + 0.08
    second_prompt = provider.history[1].messages[-1].content
    assert "try three" in second_prompt and "3.09" in second_prompt and "+VALUE = 3.0" in second_prompt
    assert "generalist" not in second_prompt and "sampler" in second_prompt


def test_the_loop_method_is_the_product_loop_with_its_debugger(build):
    loop = build("loop", trials=2)
    assert type(loop) is SeededTrials and loop.settings.max_debug == LoopSettings().max_debug > 0


def test_what_cannot_be_compared_is_refused_before_anything_runs(noisy, tmp_path):
    with pytest.raises(UserError, match="unknown method"):
        check_methods(noisy, ["loop", "evolution"])
    with pytest.raises(UserError, match="no method"):
        check_methods(noisy, [])
    plain = noisy.model_copy(update={"search": {}})
    with pytest.raises(UserError, match=r"no \[search\] ranges"):
        check_methods(plain, ["random"])
    check_methods(plain, ["loop", "independent"])
    unseeded = noisy.model_copy(update={"seed_env": None})
    with pytest.raises(UserError, match="fresh seeds"):
        check_methods(unseeded, ["loop"])
