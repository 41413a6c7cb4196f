import pytest

from nanoresearch.compute.budget import (
    Budget,
    Spent,
    budget_spent,
    charge_trial,
    left,
    parse_budget,
    plan_trial,
    raised_budget,
    spent,
    trials_that_fit,
    with_running,
)
from nanoresearch.compute.executor import Resources
from nanoresearch.errors import UserError
from nanoresearch.store.models import Trial
from nanoresearch.trials.task import Knob

EPOCHS = {"EPOCHS": Knob(default=20, min=2)}


def test_parse_budget_units_and_aliases():
    budget = parse_budget("trials=8, wall=10m, gpu=2, tokens=200k, usd=1.5, cpu_hours=0.5")
    assert budget == Budget(trials=8, wall_s=600, gpu_hours=2, tokens=200_000, usd=1.5, cpu_hours=0.5)


@pytest.mark.parametrize("text", ["trials", "walltime=3", "usd=lots", "trials=0"])
def test_bad_budgets_are_user_errors(text):
    with pytest.raises(UserError):
        parse_budget(text)


def test_a_trial_that_fits_keeps_its_defaults():
    plan = plan_trial(Resources(time_s=60), EPOCHS, Budget(wall_s=600), Spent(), [])
    assert plan.fits and plan.knobs == {"EPOCHS": 20} and plan.resources.time_s == 60


def test_knobs_are_turned_down_to_fit_and_the_change_is_said():
    plan = plan_trial(Resources(time_s=120), EPOCHS, Budget(wall_s=60), Spent(), [], expected_s=120)
    assert plan.fits and plan.knobs["EPOCHS"] == 10 and plan.scale == 0.5
    assert plan.resources.time_s == 60
    assert plan.downscaled == "EPOCHS 20 → 10" and "EPOCHS 20 → 10" in plan.reason


def test_refuses_what_cannot_fit_even_at_the_minimum():
    plan = plan_trial(Resources(time_s=120), EPOCHS, Budget(wall_s=6), Spent(), [], expected_s=120)
    assert not plan.fits and "the wall budget has no room for another trial" in plan.reason


def test_with_nothing_to_estimate_from_the_first_trial_runs_as_given_within_what_is_left():
    # Before, the task's whole time limit (120 s) was the estimate: 18 s refused a 3-second recipe.
    plan = plan_trial(Resources(time_s=120), EPOCHS, Budget(cpu_hours=18 / 3600), Spent(), [])
    assert plan.fits and plan.knobs == {"EPOCHS": 20} and not plan.downscaled
    assert plan.capped_by_budget and plan.resources.time_s == 18


def test_trials_started_together_split_cpu_and_gpu_hours_but_not_the_clock():
    resources = Resources(time_s=600, gpus=1)
    alone = plan_trial(resources, {}, Budget(gpu_hours=0.1, wall_s=300), Spent(), [])
    one_of_three = plan_trial(resources, {}, Budget(gpu_hours=0.1), Spent(), [], share_of=3)
    beside_the_clock = plan_trial(resources, {}, Budget(wall_s=300), Spent(), [], share_of=3)
    assert (alone.resources.time_s, one_of_three.resources.time_s, beside_the_clock.resources.time_s) == (300, 120, 300)


def test_running_trials_hold_their_limits_until_charged():
    used = with_running(Spent(cpu_hours=0.5), [Resources(time_s=1800, cpus=2, gpus=1)])
    assert (used.cpu_hours, used.gpu_hours) == (1.5, 0.5)


def test_a_batch_asks_for_no_more_trials_than_fit_side_by_side():
    resources = Resources(time_s=600, cpus=2)
    fit = trials_that_fit(resources, Budget(cpu_hours=100 / 3600, trials=9), Spent(), [20, 20], None, wanted=4)
    assert fit == 1  # 30 s expected at 2 CPUs = 60 CPU-seconds each; 100 are left
    assert trials_that_fit(resources, Budget(trials=3), Spent(trials=1), [], None, wanted=4) == 2
    assert trials_that_fit(resources, Budget(wall_s=10), Spent(), [20], None, wanted=4) == 4  # the clock is shared


def test_estimates_from_past_trials_not_the_limit():
    plan = plan_trial(Resources(time_s=600), EPOCHS, Budget(wall_s=100), Spent(wall_s=40), [10, 12, 11])
    assert plan.fits and plan.knobs["EPOCHS"] == 20  # ~16 s expected, 60 s left
    assert plan.capped_by_budget and plan.resources.time_s == 60  # but it may not run past what is left


def test_gpu_hours_cap_the_time_limit():
    plan = plan_trial(Resources(time_s=3600, gpus=2), {}, Budget(gpu_hours=1), Spent(gpu_hours=0.5), [60])
    assert plan.fits and plan.capped_by_budget and plan.resources.time_s == 900


@pytest.mark.parametrize(("budget", "used"), [(Budget(trials=3), Spent(trials=3)), (Budget(usd=1), Spent(usd=1.2)),
                                              (Budget(tokens=100), Spent(tokens=100))])
def test_used_up_units_stop_new_trials(budget, used):
    assert not plan_trial(Resources(), {}, budget, used, []).fits


def test_ledger_charges_elapsed_times_units(store):
    user = store.ensure_user("alice")
    store.create_run("r1", store.ensure_project(user, "p"), "g", "/w")
    charge_trial(store, user, "r1", 1, elapsed_s=1800, cpus=2, gpus=2)
    used = spent(store, user, "r1")
    assert (used.trial_s, used.cpu_hours, used.gpu_hours) == (1800, 1.0, 1.0)
    assert used.wall_s == 0  # the run never ran: trial time is not the clock
    assert left(Budget(gpu_hours=3, wall_s=3600), used) == {"wall_s": 3600, "gpu_hours": 2.0}


def test_only_trials_that_started_count_as_spent(store):
    user = store.ensure_user("alice")
    store.create_run("r1", store.ensure_project(user, "p"), "g", "/w")
    outcomes = [
        ("done", None, "job-1"),  # ran
        ("failed", "crash", "job-2"),  # ran and crashed
        ("failed", "budget_overrun", None),  # refused before it started
        ("failed", "bad_proposal", None),  # the model's answer was unusable
        ("proposed", None, None),  # being planned
    ]
    for status, failure, job_id in outcomes:
        store.add_trial(Trial(run_id="r1", proposer="p", command="c", executor="local", status=status, failure=failure,
                              job_id=job_id))
    used = spent(store, user, "r1")
    assert used.trials == 2
    assert left(Budget(trials=2), used) == {"trials": 0}  # a hard budget is never reported as overspent


def test_resume_budget_adds_to_a_limit_or_sets_it_and_keeps_the_others():
    current = parse_budget("trials=6,wall=20m,tokens=3000")
    assert raised_budget(current, "tokens=+20k") == Budget(trials=6, wall_s=1200, tokens=23000)
    assert raised_budget(current, "tokens=50k,wall=+10m,usd=1") == Budget(trials=6, wall_s=1800, tokens=50000, usd=1)
    with pytest.raises(UserError, match="the run has no usd limit to add to"):
        raised_budget(current, "usd=+1")


@pytest.mark.parametrize(("unit", "limit", "used", "message", "flag"), [
    ("tokens", 3000, 3012, "the tokens budget is spent: 3,012 of 3,000 tokens", "tokens=+3000"),
    ("usd", 0.001, 0.0045, "the usd budget is spent: $0.0045 of $0.001", "usd=+0.001"),
    ("wall_s", 1200, 1250, "the wall budget is spent: 1,250 of 1,200 s", "wall=+20m"),
])
def test_a_budget_stop_names_the_limit_what_was_spent_and_the_flag_that_raises_it(unit, limit, used, message, flag):
    stop = budget_spent(unit, limit, used, "run-1")
    assert (stop.message, stop.unit) == (message, unit)
    assert stop.hint == f"give more with `nanoresearch resume run-1 --budget {flag}`"
