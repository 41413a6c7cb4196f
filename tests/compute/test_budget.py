import pytest

from nanoresearch.compute.budget import Budget, Spent, charge_trial, left, parse_budget, plan_trial, spent
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


def test_knobs_are_turned_down_to_fit():
    plan = plan_trial(Resources(time_s=120), EPOCHS, Budget(wall_s=60), Spent(), [])
    assert plan.fits and plan.knobs["EPOCHS"] == 10 and plan.scale == 0.5
    assert plan.resources.time_s == 60


def test_refuses_what_cannot_fit_even_at_the_minimum():
    plan = plan_trial(Resources(time_s=120), EPOCHS, Budget(wall_s=6), Spent(), [])
    assert not plan.fits and "smallest settings" in plan.reason


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
    store.create_run("r1", store.ensure_project(user, "p"), "g", "/w", {})
    charge_trial(store, user, "r1", 1, elapsed_s=1800, cpus=2, gpus=2)
    used = spent(store, user, "r1")
    assert (used.wall_s, used.cpu_hours, used.gpu_hours) == (1800, 1.0, 1.0)
    assert left(Budget(gpu_hours=3, wall_s=3600), used) == {"wall_s": 1800, "gpu_hours": 2.0}


def test_only_trials_that_started_count_as_spent(store):
    user = store.ensure_user("alice")
    store.create_run("r1", store.ensure_project(user, "p"), "g", "/w", {})
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
