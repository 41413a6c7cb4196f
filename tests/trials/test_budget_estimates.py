"""How the budget estimates a trial before any ran: the baseline is never downscaled silently, any
downscaling is written into the lineage, and a budget that allows nothing says so."""

from pathlib import Path

from tiny import make_loop, proposal

from helpers import ScriptedProvider, run_cli
from nanoresearch.compute.budget import Budget
from nanoresearch.trials.task import Knob, load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"


def test_a_small_budget_runs_the_baseline_as_given_not_refused_or_shrunk(store, tmp_path):
    # The digits recipe takes seconds; its time limit is 120 s. 18 CPU-seconds used to refuse the
    # baseline outright (estimated at 120 s), and wall=40s used to run it with MAX_ITER lowered to 3.
    task = load_task(EXAMPLES / "digits-classifier")
    loop = make_loop(store, task, ScriptedProvider(), Budget(cpu_hours=18 / 3600, trials=1), tmp_path)
    best = loop.run()
    (baseline,) = store.trials(loop.run_id)
    assert (baseline.status, baseline.knobs, baseline.detail) == ("done", {}, "")  # MAX_ITER left to the recipe
    assert best.id == baseline.id and baseline.resources["time_s"] <= 18


def test_downscaling_to_fit_the_budget_is_recorded_in_the_lineage(store, tiny_task, tmp_path):
    tiny_task.resources.time_s = 60
    tiny_task.expected_s = 20  # declared: a trial takes 20 s at N = 10, so 10 CPU-seconds fit half of one
    tiny_task.knobs = {"N": Knob(default=10, min=1)}
    loop = make_loop(store, tiny_task, ScriptedProvider(), Budget(cpu_hours=10 / 3600, trials=1), tmp_path)
    loop.run()
    (baseline,) = store.trials(loop.run_id)
    assert baseline.status == "done" and baseline.knobs == {"N": 5}
    assert "downscaled to fit the budget: N 10 → 5" in baseline.detail


def test_a_budget_that_allows_no_trial_says_so(capsys, monkeypatch, tiny_folder):
    result = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(tiny_folder), "--budget", "cpu_hours=0.0001")
    assert result.code == 1
    assert "the budget did not allow any trial: the cpu_hours budget is spent" in result.err
    assert "no trial passed the evaluator" not in result.err and "Traceback" not in result.err


def test_a_later_trial_at_its_defaults_is_not_judged_against_a_silently_shrunk_baseline(store, tiny_task, tmp_path):
    tiny_task.resources.time_s = 120  # the old first estimate: half of it fits, so the baseline ran at N = 5
    tiny_task.knobs = {"N": Knob(default=10, min=1)}
    provider = ScriptedProvider(proposal("bigger", ("VALUE = 1", "VALUE = 2")))
    loop = make_loop(store, tiny_task, provider, Budget(cpu_hours=60 / 3600, trials=2), tmp_path)
    loop.run()
    baseline, edited = store.trials(loop.run_id)
    assert baseline.knobs == edited.knobs == {}  # both at the recipe's own settings: no knob in their environment


def test_an_edit_of_a_knobs_default_in_the_recipe_takes_effect(store, tmp_path):
    # The real 1.5B model raised MAX_ITER's default in train.py; the loop used to pass task.toml's
    # default (MAX_ITER=10) in every trial's environment, so the edit could never change anything.
    task = load_task(EXAMPLES / "digits-classifier")
    line = 'MAX_ITER = int(float(os.environ.get("MAX_ITER", "10")))'
    provider = ScriptedProvider(proposal("converge", (line, line.replace('"10"', '"200"'))))
    loop = make_loop(store, task, provider, Budget(trials=2), tmp_path)
    loop.run()
    baseline, edited = store.trials(loop.run_id)
    assert edited.knobs == {} and "max_iter=200" in edited.logs_tail
    assert edited.score > baseline.score and edited.kept
