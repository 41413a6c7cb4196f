"""Statistics of results.json against values worked out by hand, and the lineage → results analysis."""

from __future__ import annotations

import math

import pytest

from nanoresearch.errors import UserError
from nanoresearch.paper.results import Condition, read_results, write_results
from nanoresearch.pipeline.stages.analysis import (
    MatrixCell,
    analyse,
    compare,
    summarise,
)
from nanoresearch.store.models import Trial

T_975_DF3 = 3.182446305  # two-sided 95% critical value of Student's t with 3 degrees of freedom (tables)


def trial(
    id: int,
    score: float | None = None,
    *,
    parent: int | None = None,
    kept: bool = False,
    failure: str | None = None,
    metrics: dict[str, float] | None = None,
    proposer: str = "llm",
    started: float | None = None,
    ended: float | None = None,
) -> Trial:
    return Trial(
        id=id,
        run_id="r1",
        parent_id=parent,
        proposer=proposer,
        hypothesis=f"idea {id}",
        command="python train.py",
        executor="local",
        status="failed" if failure else "done",
        kept=kept,
        score=score,
        failure=failure,
        metrics=metrics if metrics is not None else ({} if score is None else {"accuracy": score}),
        started_at=started,
        ended_at=ended,
    )


def cells(
    condition: str, kind: str, scores: list[float | None], *, first_id: int = 100, failure: str = "crash"
) -> list[MatrixCell]:
    """One cell per seed; a None score is a seed that failed with `failure`."""
    return [
        MatrixCell(
            condition=condition,
            kind=kind,
            description=f"{condition} recipe",
            seed=seed,
            trial=trial(first_id + seed, score, failure=None if score is not None else failure),
        )
        for seed, score in enumerate(scores)
    ]


def condition(name: str, kind: str, scores: list[float | None], **kw) -> Condition:
    return summarise(name, kind, f"{name} recipe", cells(name, kind, scores, **kw), "accuracy")


# --- summarise ------------------------------------------------------------------------------------------------


def test_summary_matches_hand_computed_mean_std_and_interval():
    c = condition("baseline", "baseline", [1.0, 2.0, 3.0, 4.0])
    # mean 2.5; squared deviations 2.25+0.25+0.25+2.25 = 5, / (n-1) = 5/3
    assert c.n == 4 and c.mean == pytest.approx(2.5)
    assert c.std == pytest.approx(math.sqrt(5 / 3))
    half_width = T_975_DF3 * math.sqrt(5 / 3) / 2
    assert c.ci95 == pytest.approx((2.5 - half_width, 2.5 + half_width))
    assert c.ci95 == pytest.approx((0.4457, 4.5543), abs=1e-4)
    assert c.scores == [1.0, 2.0, 3.0, 4.0] and c.seeds == [0, 1, 2, 3] and c.trial_ids == [100, 101, 102, 103]
    assert c.metrics == {"accuracy": [1.0, 2.0, 3.0, 4.0]}
    assert c.failures == [] and c.description == "baseline recipe"


def test_single_seed_has_zero_std_and_no_interval():
    c = condition("baseline", "baseline", [0.7])
    assert (c.n, c.mean, c.std, c.ci95) == (1, 0.7, 0.0, None)


def test_identical_seeds_give_zero_std_and_a_point_interval():
    c = condition("baseline", "baseline", [0.9, 0.9, 0.9])
    assert c.std == 0.0
    assert c.ci95 == (0.9, 0.9)


def test_failed_seeds_are_labelled_and_never_contribute_a_number():
    group = cells("proposed", "proposed", [1.0, None, 3.0], failure="timeout")
    # a missed gate still reports a score; it must not count either
    group.append(
        MatrixCell(
            condition="proposed",
            kind="proposed",
            seed=3,
            trial=trial(200, 99.0, failure="gate_miss", metrics={"accuracy": 99.0, "loss": 5.0}),
        )
    )
    c = summarise("proposed", "proposed", "", group, "accuracy")
    assert c.n == 2 and c.scores == [1.0, 3.0] and c.mean == pytest.approx(2.0)
    assert c.metrics == {"accuracy": [1.0, 3.0]}
    assert c.failures == ["seed 1 (trial 101): timeout", "seed 3 (trial 200): gate_miss"]
    assert c.seeds == [0, 2]


def test_all_seeds_failed_gives_no_numbers():
    c = condition("proposed", "proposed", [None, None])
    assert (c.n, c.mean, c.std, c.ci95, c.scores) == (0, None, None, None, [])
    assert len(c.failures) == 2


def test_other_metrics_are_collected_per_seed():
    group = [
        MatrixCell(condition="b", kind="baseline", seed=s, trial=trial(s, acc, metrics={"accuracy": acc, "loss": loss}))
        for s, (acc, loss) in enumerate([(0.8, 0.5), (0.9, 0.4)])
    ]
    c = summarise("b", "baseline", "", group, "accuracy")
    assert c.metrics == {"accuracy": [0.8, 0.9], "loss": [0.5, 0.4]}


# --- compare --------------------------------------------------------------------------------------------------


def test_welch_test_matches_hand_computed_statistic_and_degrees_of_freedom():
    a = condition("a", "proposed", [1.0, 2.0, 3.0, 4.0])
    b = condition("b", "baseline", [2.0, 4.0, 6.0, 8.0])
    result = compare(a, b)
    # variances 5/3 and 20/3; standard error sqrt(5/12 + 20/12) = sqrt(25/12)
    assert result.test == "Welch t-test"
    assert result.difference == pytest.approx(-2.5)
    assert result.statistic == pytest.approx(-2.5 / math.sqrt(25 / 12))  # -sqrt(3)
    # Welch-Satterthwaite df = (25/12)^2 / ((5/12)^2/3 + (20/12)^2/3) = 75/17 ≈ 4.41; R's t.test gives p = 0.1516
    assert result.p_value == pytest.approx(0.151580, abs=1e-6)
    assert result.significant is False


def test_clear_difference_is_significant():
    result = compare(condition("a", "proposed", [10.0, 10.1, 9.9]), condition("b", "baseline", [1.0, 1.1, 0.9]))
    assert result.significant is True and result.p_value < 1e-4
    assert result.difference == pytest.approx(9.0)


def test_one_constant_group_is_still_testable():
    result = compare(condition("a", "proposed", [1.0, 2.0, 3.0]), condition("b", "baseline", [1.0, 1.0, 1.0]))
    # t = 1 / sqrt(1/3) with df = 2
    assert result.test == "Welch t-test"
    assert result.statistic == pytest.approx(math.sqrt(3))
    assert result.p_value == pytest.approx(0.225403, abs=1e-6)


def test_zero_variance_in_both_groups_is_not_tested():
    result = compare(condition("a", "proposed", [0.9, 0.9]), condition("b", "baseline", [0.8, 0.8]))
    assert result.test == "zero variance: identical scores across seeds"
    assert (result.statistic, result.p_value, result.significant) == (None, None, None)
    assert result.difference == pytest.approx(0.1)


@pytest.mark.parametrize("a_scores, b_scores", [([0.9], [0.8, 0.7]), ([0.9, 0.8], [0.7]), ([0.9], [0.8])])
def test_fewer_than_two_seeds_is_not_tested(a_scores, b_scores):
    result = compare(condition("a", "proposed", a_scores), condition("b", "baseline", b_scores))
    assert result.test == "n < 2"
    assert result.p_value is None and result.significant is None
    assert result.difference == pytest.approx(sum(a_scores) / len(a_scores) - sum(b_scores) / len(b_scores))


def test_comparing_a_condition_without_a_mean_is_refused():
    with pytest.raises(ValueError, match="has no successful seed"):
        compare(condition("a", "proposed", [None]), condition("b", "baseline", [0.8]))


# --- analyse --------------------------------------------------------------------------------------------------


def lineage() -> list[Trial]:
    """baseline 0.80 → kept 0.85 → reverted 0.83, a crash, then kept 0.90 (given out of order on purpose)."""
    return [
        trial(5, 0.90, parent=2, kept=True, started=50.0, ended=58.0),
        trial(1, 0.80, kept=True, proposer="baseline", started=0.0, ended=10.0),
        trial(2, 0.85, parent=1, kept=True, started=10.0, ended=20.5),
        trial(3, 0.83, parent=2, started=20.5, ended=30.0),
        trial(4, failure="crash", parent=2, started=30.0),
    ]


def matrix() -> list[MatrixCell]:
    return (
        cells("ablation: without warmup", "ablation", [0.86, 0.87, 0.85], first_id=30)
        + cells("proposed", "proposed", [0.90, 0.91, None], first_id=20)
        + cells("baseline", "baseline", [0.80, 0.81, 0.79], first_id=10)
    )


def test_analysis_of_a_small_lineage():
    results = analyse("r1", "tiny", "accuracy", "maximize", lineage(), matrix())
    assert results.success is True
    assert results.best_trial_id == 5
    assert [p.id for p in results.trials] == [1, 2, 3, 4, 5]
    assert [p.elapsed_s for p in results.trials] == [10.0, 10.5, 9.5, None, 8.0]
    crash = results.trials[3]
    assert (crash.score, crash.failure, crash.kept, crash.parent_id) == (None, "crash", False, 2)
    assert [c.name for c in results.conditions] == ["baseline", "proposed", "ablation: without warmup"]
    assert [c.kind for c in results.conditions] == ["baseline", "proposed", "ablation"]
    assert results.condition("proposed").n == 2
    assert [(c.a, c.b) for c in results.comparisons] == [
        ("proposed", "baseline"),
        ("proposed", "ablation: without warmup"),
    ]
    assert results.comparisons[0].difference == pytest.approx(0.905 - 0.80)
    assert results.comparisons[0].test == "Welch t-test"
    assert "1 of 5 loop trials failed (1 crash)" in results.notes
    assert "1 of 3 seeds failed for proposed" in results.notes


def test_minimizing_picks_the_lowest_kept_trial():
    trials = [trial(1, 3.0, kept=True, proposer="baseline"), trial(2, 2.5, kept=True), trial(3, 1.0, kept=False)]
    results = analyse("r1", "tiny", "loss", "minimize", trials, [])
    assert results.best_trial_id == 2  # trial 3 scored lower but was not kept


def test_no_improvement_and_deterministic_recipe_are_noted():
    trials = [trial(1, 0.8, kept=True, proposer="baseline"), trial(2, 0.7, parent=1)]
    group = cells("baseline", "baseline", [0.8, 0.8, 0.8]) + cells("proposed", "proposed", [0.8, 0.8, 0.8])
    results = analyse("r1", "tiny", "accuracy", "maximize", trials, group)
    assert results.best_trial_id == 1
    assert "no trial improved on the baseline: proposed = baseline" in results.notes
    assert any(n.startswith("recipe is deterministic: all seeds identical for proposed") for n in results.notes)
    assert results.comparisons[0].test == "zero variance: identical scores across seeds"
    assert results.comparisons[0].difference == 0.0


def test_nothing_is_invented_when_everything_failed():
    trials = [trial(1, failure="crash", proposer="baseline"), trial(2, 0.9, failure="gate_miss")]
    group = cells("baseline", "baseline", [None, None]) + cells("proposed", "proposed", [None])
    results = analyse("r1", "tiny", "accuracy", "maximize", trials, group)
    assert results.success is False and results.best_trial_id is None
    assert all(p.score is None for p in results.trials)  # the gate miss's score is not reported as a result
    assert all(c.mean is None for c in results.conditions)
    assert results.comparisons == []
    assert "no comparison of proposed with baseline: proposed has no successful seed" in results.notes
    assert "baseline has no successful seed: no mean is reported" in results.notes
    assert "no loop trial passed the evaluator: there is no best trial" in results.notes


def test_empty_inputs_give_an_empty_but_valid_result():
    results = analyse("r1", "tiny", "accuracy", "maximize", [], [])
    assert results.success is False and results.trials == [] and results.conditions == []
    assert results.notes == ["the closed loop ran no trials"]


# --- results.json ---------------------------------------------------------------------------------------------


def test_results_round_trip(tmp_path):
    results = analyse("r1", "tiny", "accuracy", "maximize", lineage(), matrix())
    path = write_results(results, tmp_path / "out" / "results.json")
    assert read_results(path) == results


def test_missing_results_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="results file not found") as info:
        read_results(tmp_path / "results.json")
    assert info.value.hint


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "malformed"),
        ('{"run_id": "r1"}', "task"),
        ('{"run_id": "r1", "task": "t", "metric": "m", "direction": "up", "success": true}', "direction"),
    ],
)
def test_malformed_results_file_is_a_user_error(tmp_path, content, problem):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(UserError, match="results file is malformed") as info:
        read_results(path)
    assert problem in str(info.value)


def test_binary_results_file_is_a_user_error(tmp_path):
    path = tmp_path / "results.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="not UTF-8"):
        read_results(path)


def test_no_kept_improvement_is_not_a_success_although_trials_were_scored():
    trials = [trial(1, 0.947, kept=True, proposer="baseline"), trial(2, 0.94, parent=1), trial(3, failure="crash", parent=1)]
    results = analyse("r1", "tiny", "accuracy", "maximize", trials, [])
    assert (results.success, results.evaluated, results.best_trial_id) == (False, True, 1)


def test_a_loop_improvement_the_matrix_does_not_bear_out_is_not_a_success():
    trials = [trial(1, 0.80, kept=True, proposer="baseline"), trial(2, 0.82, parent=1, kept=True)]
    group = cells("baseline", "baseline", [0.81, 0.80, 0.82]) + cells("proposed", "proposed", [0.80, 0.79, 0.81])
    results = analyse("r1", "tiny", "accuracy", "maximize", trials, group)
    assert results.best_trial_id == 2 and results.success is False and results.evaluated is True
    assert any(n.startswith("over the matrix's seeds the proposed recipe did not beat the baseline") for n in results.notes)
