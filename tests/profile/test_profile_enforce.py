import pytest
from hypothesis import given
from hypothesis import strategies as st

from nanoresearch.compute.budget import Budget, Spent, parse_budget, plan_trial
from nanoresearch.compute.executor import Resources
from nanoresearch.errors import UserError
from nanoresearch.profile import (
    HardConstraints,
    cap_budget_text,
    capped_budget,
    check_allowed,
    format_budget,
    preset,
)


def capped_profile(**caps):
    return preset("evidence-first").model_copy(update={"hard_constraints": HardConstraints(**caps)})


def test_a_cap_lowers_a_larger_request_and_says_so():
    budget, notes = capped_budget(parse_budget("trials=10,gpu_hours=8"), capped_profile(max_gpu_hours=2))
    assert budget == Budget(trials=10, gpu_hours=2)
    assert notes == ["gpu_hours capped at 2 by your profile (the run asked for 8)"]


def test_a_cap_is_added_where_the_run_sets_no_limit():
    budget, notes = capped_budget(parse_budget("trials=10"), capped_profile(max_usd=1.5, max_wall_minutes=20))
    assert budget == Budget(trials=10, usd=1.5, wall_s=1200)
    assert notes == ["wall_s limited to 1200 by your profile (the run set no wall_s limit)",
                     "usd limited to 1.5 by your profile (the run set no usd limit)"]


def test_a_request_within_the_cap_is_left_alone():
    budget, notes = capped_budget(parse_budget("trials=3,tokens=100k"), capped_profile(max_trials=8, max_tokens=300_000))
    assert budget == Budget(trials=3, tokens=100_000) and notes == []


def test_no_caps_change_nothing():
    assert capped_budget(parse_budget("trials=6,wall=20m"), preset("exploratory")) == (Budget(trials=6, wall_s=1200), [])


def test_the_budget_string_of_a_run_is_capped_too():
    text, notes = cap_budget_text("trials=20,wall=1h,gpu_hours=3", preset("resource-constrained"))
    assert parse_budget(text) == Budget(trials=8, wall_s=1800, gpu_hours=1, tokens=300_000, usd=2)
    assert len(notes) == 5


def test_the_ledger_enforces_a_capped_budget():
    # A trial of two GPUs for an hour fits the run's 10 GPU-hours, not the profile's cap of one.
    two_gpu_hours = Resources(gpus=2, time_s=3600)
    asked = parse_budget("trials=5,gpu_hours=10")
    # (the trial's hour is known, as the task's expected time: an unknown first trial would run as given)
    assert plan_trial(two_gpu_hours, {}, asked, Spent(), [], expected_s=3600).fits
    budget, _ = capped_budget(asked, capped_profile(max_gpu_hours=1))
    assert not plan_trial(two_gpu_hours, {}, budget, Spent(), [], expected_s=3600).fits
    # Capped to two trials, the third is refused.
    budget, _ = capped_budget(parse_budget("trials=5"), capped_profile(max_trials=2))
    assert not plan_trial(Resources(), {}, budget, Spent(trials=2), []).fits


@given(st.builds(
    Budget,
    trials=st.none() | st.integers(1, 10**6),
    wall_s=st.none() | st.floats(0.001, 1e7),
    cpu_hours=st.none() | st.floats(0.001, 1e5),
    gpu_hours=st.none() | st.floats(0.001, 1e5),
    tokens=st.none() | st.integers(1, 10**9),
    usd=st.none() | st.floats(0.01, 1e5),
))
def test_format_budget_reads_back_the_same(budget):
    again = parse_budget(format_budget(budget))
    for unit, value in budget.model_dump().items():
        assert getattr(again, unit) == (None if value is None else pytest.approx(value, rel=1e-9))


def test_format_budget_is_short_for_usual_budgets():
    assert format_budget(parse_budget("trials=6,wall=20m,tokens=500k,usd=2.5")) == "trials=6,wall=20m,tokens=500000,usd=2.5"


def test_forbidden_resources_are_refused():
    profile = capped_profile(forbid=["gpu", "slurm"])
    check_allowed(profile, gpus=0, executor="local")
    with pytest.raises(UserError, match="forbids GPUs, but each trial of this task asks for 2") as caught:
        check_allowed(profile, gpus=2)
    assert "hard_constraints.forbid slurm" in caught.value.hint
    with pytest.raises(UserError, match="forbids the slurm executor") as caught:
        check_allowed(profile, executor="slurm")
    assert "hard_constraints.forbid gpu" in caught.value.hint
    check_allowed(capped_profile(forbid=["ray"]), gpus=4, executor="slurm")
