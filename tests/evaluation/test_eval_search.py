"""`eval search` end to end on a noisy task: equal budgets and model, picks re-scored on fresh seeds, files written."""

import json

import pytest
from eval_search_task import MANIFEST, proposal, write_noisy_task
from typer.testing import CliRunner

from helpers import ScriptedProvider, run_cli
from nanoresearch.cli import evalsearch
from nanoresearch.compute.budget import Budget
from nanoresearch.compute.executor import create_executor
from nanoresearch.errors import NanoResearchError, UserError
from nanoresearch.evaluation.baselines import METHODS
from nanoresearch.evaluation.search import (
    FRESH_SEED_BASE,
    RESCORE,
    Harness,
    MethodRun,
    SearchConfig,
    check_same_budget_and_model,
    load_result,
    markdown_table,
    merge_results,
    run_search,
    write_results,
)
from nanoresearch.trials.task import load_task

TRIALS = 3


@pytest.fixture
def noisy(tmp_path):
    return load_task(write_noisy_task(tmp_path / "noisy"))


def scripted_answers(seeds: int) -> ScriptedProvider:
    """Two proposals per seed for each of the three model-driven methods, in the order they run."""
    replies = []
    for _ in range(seeds):
        replies += [proposal("loop: three", "VALUE = 1.0", "VALUE = 3.0"), proposal("loop: four", "VALUE = 3.0", "VALUE = 4.0")]
        replies += [proposal("independent: two", "VALUE = 1.0", "VALUE = 2.0"),
                    proposal("independent: five", "VALUE = 1.0", "VALUE = 5.0")]
        replies += [proposal("sequential: two", "VALUE = 1.0", "VALUE = 2.0"),
                    proposal("sequential: six", "VALUE = 1.0", "VALUE = 6.0")]
    return ScriptedProvider(*replies)


@pytest.fixture
def searched(settings, store, noisy):
    provider = scripted_answers(seeds=2)
    so_far = []
    harness = Harness(settings, store, store.ensure_user(settings.user), create_executor("local", settings),
                      providers={"local": provider}, after_seed=so_far.append)
    config = SearchConfig(budget=Budget(trials=TRIALS), seeds=[0, 1], fresh_seeds=2)
    return run_search(noisy, config, harness), provider, so_far


def test_every_method_runs_at_the_same_budget_and_model_and_its_pick_is_re_scored_on_fresh_seeds(searched, store):
    result, provider, _ = searched
    assert not provider.queue  # every scripted proposal was asked for
    assert [(r.seed, r.method) for r in result.runs] == [(s, m) for s in (0, 1) for m in METHODS]
    assert all(r.trials_run == TRIALS == len(r.best_so_far) for r in result.runs)
    for run in result.runs:
        assert store.get_run(run.run_id).options.budget == Budget(trials=TRIALS)
        assert sum(1 for t in store.trials(run.run_id) if t.job_id and t.proposer != RESCORE) == TRIALS
    loop_models = {tuple(r.models) for r in result.runs if r.method == "loop"}
    assert len(loop_models) == 1 and loop_models != {()}
    for method in ("independent", "sequential"):
        assert {tuple(r.models) for r in result.runs if r.method == method} == loop_models
    assert all(r.tokens == 0 and r.calls == 0 for r in result.runs if r.method in ("random", "repeat"))
    assert all(r.tokens > 0 for r in result.runs if r.method == "loop")
    # the final picks are re-scored on seeds the search never saw
    assert result.fresh_seeds == [FRESH_SEED_BASE, FRESH_SEED_BASE + 1]
    for run in result.runs:
        trials = store.trials(run.run_id)
        search_seeds = {t.metrics["seed"] for t in trials if t.proposer != RESCORE}
        rescored = [t for t in trials if t.proposer == RESCORE]
        assert [t.metrics["seed"] for t in rescored] == result.fresh_seeds and not search_seeds & set(result.fresh_seeds)
        assert all(t.parent_id == run.pick_trial and not t.kept for t in rescored)
        assert run.fresh_scores == [t.score for t in rescored]
        assert run.fresh_score == pytest.approx(sum(run.fresh_scores) / 2)
    # the in-search best of the repeated recipe is the luckiest seed's noise; the fresh seeds take it back
    repeat = next(r for r in result.runs if r.method == "repeat" and r.seed == 0)
    assert repeat.search_score == pytest.approx(1.09) and repeat.fresh_score == pytest.approx(1.045)
    # random search's pick is re-run with the values it drew
    picked = next(r for r in result.runs if r.method == "random" and r.seed == 0)
    steps = {t.metrics["step"] for t in store.trials(picked.run_id) if t.id == picked.pick_trial or t.proposer == RESCORE}
    assert len(steps) == 1


def test_the_summary_curves_and_files_follow_from_the_runs(searched, tmp_path):
    result, _, _ = searched
    by_method = {s.method: s for s in result.summary}
    sequential = [r for r in result.runs if r.method == "sequential"]
    assert by_method["sequential"].fresh_mean == pytest.approx(sum(r.fresh_score for r in sequential) / 2)
    assert by_method["sequential"].wins == 2 and by_method["sequential"].loop_beats == 0  # 6 beats the loop's 4
    assert by_method["repeat"].loop_beats == 2 and by_method["loop"].loop_beats is None
    low, high = by_method["loop"].fresh_ci95
    assert low <= by_method["loop"].fresh_mean <= high
    for run in result.runs:  # best-so-far never gets worse
        assert all(b >= a for a, b in zip(run.best_so_far, run.best_so_far[1:]))
    # the files: search.json with its schema, read back whole; the table; the figure
    written = write_results(result, tmp_path / "out")
    assert {p.name for p in written} == {"search.json", "search.md", "best_so_far.png", "best_so_far.pdf"}
    assert load_result(tmp_path / "out") == result
    assert json.loads((tmp_path / "out" / "search.json").read_text())["schema_version"] == 1
    table = (tmp_path / "out" / "search.md").read_text()
    assert all(f"| {method} |" in table for method in METHODS)
    with pytest.raises(UserError, match="not an eval search result"):
        (tmp_path / "bad.json").write_text('{"task": 1}')
        load_result(tmp_path / "bad.json")


def test_the_result_so_far_is_handed_over_after_each_seed(searched):
    result, _, so_far = searched
    assert [r.seeds for r in so_far] == [[0], [0, 1]]
    assert {(r.seed, r.method) for r in so_far[0].runs} == {(0, m) for m in METHODS}
    assert so_far[0].summary != result.summary and so_far[-1] == result


def test_a_search_run_in_parts_merges_into_the_result_of_one_run(searched):
    result, _, _ = searched
    parts = [result.model_copy(update={"seeds": [seed], "runs": [r for r in result.runs if r.seed == seed]})
             for seed in result.seeds]
    merged = merge_results(parts[::-1])
    assert (merged.seeds, merged.runs, merged.summary) == (result.seeds, result.runs, result.summary)
    with pytest.raises(UserError, match="share seeds"):
        merge_results([result, parts[0]])
    with pytest.raises(UserError, match="differ in temperature"):
        merge_results([parts[0], parts[1].model_copy(update={"temperature": 0.1})])


def test_the_table_says_which_methods_stopped_with_trials_unspent(searched):
    result, _, _ = searched
    assert "unspent" not in markdown_table(result)  # every method spent its trials
    runs = [r.model_copy(update={"trials_run": 1}) if r.method == "loop" and r.seed == 1 else r for r in result.runs]
    table = markdown_table(result.model_copy(update={"runs": runs}))
    assert f"loop on 1 of 2 seeds ({TRIALS - 1} trials unspent)." in table
    assert "sequential on" not in table


def test_unequal_budgets_or_models_are_refused():
    def run(method: str, trials: int, models: list[str]) -> MethodRun:
        return MethodRun(method=method, seed=0, run_id="r", trials_run=trials, best_so_far=[], pick_trial=None,
                         search_score=None, fresh_scores=[], fresh_score=None, calls=0, tokens=0, models=models)

    check_same_budget_and_model([run("loop", 3, ["local/a"]), run("random", 3, [])], Budget(trials=3))
    with pytest.raises(NanoResearchError, match="more than the 3 trials"):
        check_same_budget_and_model([run("loop", 3, ["local/a"]), run("sequential", 4, ["local/a"])], Budget(trials=3))
    with pytest.raises(NanoResearchError, match="different models"):
        check_same_budget_and_model([run("loop", 3, ["local/a"]), run("sequential", 3, ["local/b"])], Budget(trials=3))


def test_a_budget_without_trials_is_refused(settings, store, noisy):
    harness = Harness(settings, store, store.ensure_user(settings.user), create_executor("local", settings))
    with pytest.raises(UserError, match="trials=N"):
        run_search(noisy, SearchConfig(budget=Budget(wall_s=60), seeds=[0]), harness)


def test_the_command_writes_the_table_without_a_model_for_model_free_methods(tmp_path):
    task = write_noisy_task(tmp_path / "noisy")
    result = CliRunner().invoke(evalsearch.app, [
        "--task", str(task), "--budget", "trials=2", "--seeds", "1", "--fresh-seeds", "1",
        "--methods", "random,repeat", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "| random |" in result.stdout and (tmp_path / "out" / "best_so_far.png").is_file()
    written = load_result(tmp_path / "out")
    assert written.methods == ["random", "repeat"] and all(s.loop_beats is None for s in written.summary)


def test_the_command_refuses_random_search_on_a_task_without_ranges(capsys, monkeypatch, tmp_path):
    task = write_noisy_task(tmp_path / "plain", MANIFEST.split("[search.STEP]")[0])
    result = run_cli(capsys, monkeypatch, "eval", "search", "--task", str(task), "--methods", "random",
                     "--out", str(tmp_path / "o"))
    assert result.code != 0 and "declares no [search] ranges" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_with_the_embedded_model_every_model_driven_method_asks_the_same_model(settings, store, noisy):
    harness = Harness(settings, store, store.ensure_user(settings.user), create_executor("local", settings))
    config = SearchConfig(budget=Budget(trials=2), seeds=[0], fresh_seeds=1,
                          methods=["loop", "independent", "sequential"], temperature=0.7)
    result = run_search(noisy, config, harness)
    models = [tuple(r.models) for r in result.runs]
    assert all(r.calls > 0 and r.trials_run <= 2 for r in result.runs)
    assert len(set(models)) == 1 and result.model == "local/smollm2-135m" and result.temperature == 0.7


def test_every_model_method_is_told_the_space_random_search_draws_from(searched):
    _, provider, _ = searched
    assert all("- STEP: a number from 0 to 4" in r.messages[-1].content for r in provider.history)


def test_each_proposal_samples_with_a_seed_of_its_own(searched):
    # Independent samples of one prompt were copies of one another: the local model's generator is
    # seeded with the request's seed (0 when it names none).
    _, provider, _ = searched
    independent = [r.seed for r in provider.history if "without seeing any other" in r.messages[-1].content]
    assert len(independent) == 4 and len(set(independent)) == 4 and None not in independent
