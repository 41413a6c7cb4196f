"""The closed loop end to end: real sandboxed processes, real evaluator, scripted proposals."""

import json
from pathlib import Path

import pytest
from tiny import TINY_EVALUATOR, TINY_RECIPE, TINY_TASK, make_loop, proposal  # noqa: F401  (re-exported)

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget, left, spent
from nanoresearch.errors import EndpointUnavailableError
from nanoresearch.trials.task import load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"


def test_improvements_are_kept_and_the_rest_reverted(store, tiny_task, tmp_path):
    provider = ScriptedProvider(
        proposal("a larger value scores higher", ("VALUE = 1", "VALUE = 5")),
        proposal("try a middle value", ("VALUE = 5", "VALUE = 3")),
    )
    loop = make_loop(store, tiny_task, provider, Budget(trials=3), tmp_path)
    best = loop.run()
    baseline, improved, worse = store.trials(loop.run_id)
    assert (baseline.proposer, baseline.score, baseline.kept) == ("baseline", 1.0, True)
    assert (improved.parent_id, improved.score, improved.kept) == (baseline.id, 5.0, True)
    assert "-VALUE = 1" in improved.diff and "+VALUE = 5" in improved.diff
    assert (worse.parent_id, worse.score, worse.kept) == (improved.id, 3.0, False)
    assert best.id == improved.id
    # the second proposal was asked with the lineage in view
    assert "5 kept" in provider.history[1].messages[-1].content
    assert spent(store, loop.user_id, loop.run_id).wall_s > 0


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ('raise SystemExit("boom")', "crash"),
        ("import time; time.sleep(60)", "timeout"),
        ("x = bytearray(100 * 1024 ** 3)", "oom"),
        ("VALUE = -1", "gate_miss"),
        ('import os; os.symlink("/etc/hostname", "leak")', "illegal_edit"),
    ],
)
def test_each_failure_label_is_produced_for_real(store, tiny_task, tmp_path, line, label):
    find = "VALUE = 1" if line.startswith("VALUE") else 'print("working")'
    provider = ScriptedProvider(proposal(f"provoke {label}", (find, line)))
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path, max_debug=0)
    loop.run()
    trial = store.trials(loop.run_id)[-1]
    assert (trial.status, trial.failure, trial.kept) == ("failed", label, False)
    assert trial.detail


def test_a_crash_is_repaired_by_the_debugger(store, tiny_task, tmp_path):
    provider = ScriptedProvider(
        proposal("bigger", ("VALUE = 1", 'VALUE = int("seven")')),
        proposal("fix the conversion", ('VALUE = int("seven")', "VALUE = 7")),
    )
    loop = make_loop(store, tiny_task, provider, Budget(trials=3), tmp_path, max_debug=1)
    loop.run()
    _, crashed, fixed = store.trials(loop.run_id)
    assert crashed.failure == "crash" and "ValueError" in crashed.logs_tail
    assert (fixed.proposer, fixed.parent_id, fixed.score, fixed.kept) == ("debugger", crashed.id, 7.0, True)
    assert "ValueError" in provider.history[1].messages[-1].content


def test_a_crash_code_can_see_is_repaired_before_it_costs_a_trial(store, tiny_task, tmp_path):
    provider = ScriptedProvider(
        proposal("bigger", ("VALUE = 1", "VALUE = SEVEN")),
        proposal("define it", ("VALUE = SEVEN", "SEVEN = 7\nVALUE = SEVEN")),
    )
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path, max_debug=0)
    loop.run()
    baseline, refused, repaired = store.trials(loop.run_id)
    assert (refused.failure, refused.job_id) == ("bad_proposal", None)
    assert "line 2: NameError: name 'SEVEN' is not defined" in refused.detail
    assert '"train.py", line 2\n    VALUE = SEVEN\nNameError' in provider.history[1].messages[-1].content  # asked as a traceback
    assert (repaired.parent_id, repaired.proposer, repaired.score, repaired.kept) == (baseline.id, refused.proposer, 7.0, True)
    assert "+SEVEN = 7" in repaired.diff and "+VALUE = SEVEN" in repaired.diff  # the edit and its repair, from the baseline
    assert spent(store, loop.user_id, loop.run_id).trials == 2  # the baseline and the repaired edit: nothing ran that crashed


def test_a_repair_that_still_would_crash_is_not_run(store, tiny_task, tmp_path):
    provider = ScriptedProvider(
        proposal("bigger", ("VALUE = 1", "VALUE = SEVEN")),
        proposal("still undefined", ("VALUE = SEVEN", "VALUE = EIGHT")),
    )
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path, max_debug=0, max_stalled=2)
    loop.run()
    _, refused, repaired = store.trials(loop.run_id)[:3]
    assert repaired.failure == "bad_proposal" and "even repaired, it would crash" in repaired.detail
    assert not any(t.job_id for t in store.trials(loop.run_id)[1:])


def test_running_past_the_budget_share_is_budget_overrun(store, tiny_task, tmp_path):
    provider = ScriptedProvider(proposal("slow", ('print("working")', "import time; time.sleep(60)")))
    tiny_task.resources.time_s = 60
    loop = make_loop(store, tiny_task, provider, Budget(trials=2, wall_s=5), tmp_path, max_debug=0)
    loop.run()
    trial = store.trials(loop.run_id)[-1]
    assert trial.failure == "budget_overrun"
    assert spent(store, loop.user_id, loop.run_id).wall_s <= 5 + 2  # the kill lands within the poll interval


def test_nothing_starts_that_would_break_the_budget(store, tiny_task, tmp_path):
    tiny_task.resources.time_s = 60
    loop = make_loop(store, tiny_task, ScriptedProvider(), Budget(wall_s=0.5), tmp_path)
    assert loop.run() is None
    (trial,) = store.trials(loop.run_id)
    assert trial.failure == "budget_overrun" and trial.detail.startswith("not started")
    assert trial.job_id is None


def test_unusable_model_output_is_a_bad_proposal_not_a_crash_of_the_loop(store, tiny_task, tmp_path):
    provider = ScriptedProvider("no idea", "still none", "nothing", *["not json"] * 3)
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path, max_stalled=2)
    loop.run()
    trial = store.trials(loop.run_id)[-1]
    assert trial.failure == "bad_proposal" and "no usable proposal" in trial.detail
    assert spent(store, loop.user_id, loop.run_id).trials == 1  # only the baseline ran


def test_a_model_that_never_proposes_anything_usable_stops_the_loop(store, tiny_task, tmp_path):
    provider = ScriptedProvider(*["not json"] * 6)
    loop = make_loop(store, tiny_task, provider, Budget(), tmp_path, max_stalled=2)
    assert loop.run().proposer == "baseline"
    assert [t.failure for t in store.trials(loop.run_id)] == [None, "bad_proposal", "bad_proposal"]


def test_an_interrupted_trial_is_labelled_on_resume(store, tiny_task, tmp_path):
    loop = make_loop(store, tiny_task, ScriptedProvider(), Budget(trials=1), tmp_path)
    trial = loop.prepare(None, "baseline", "as given", [])
    loop.start(trial)  # the process "dies" here: nobody waits for the job
    loop.recover_interrupted()
    recovered = store.trial(trial.id)
    assert (recovered.status, recovered.failure) == ("failed", "infra")


def test_an_interrupted_baseline_is_run_again_before_any_proposal(store, tiny_task, tmp_path):
    first = make_loop(store, tiny_task, ScriptedProvider(), Budget(trials=4), tmp_path)
    first.start(first.prepare(None, "baseline", "the task's recipe as given", []))  # the process dies here
    provider = ScriptedProvider(proposal("bigger", ("VALUE = 1", "VALUE = 5")))
    loop = make_loop(store, tiny_task, provider, Budget(trials=3), tmp_path, reuse_run=True)
    best = loop.run()
    interrupted, baseline, edited = store.trials(loop.run_id)
    assert (interrupted.proposer, interrupted.failure) == ("baseline", "infra")
    assert (baseline.proposer, baseline.score, baseline.kept) == ("baseline", 1.0, True)
    assert (edited.parent_id, edited.score, best.id) == (baseline.id, 5.0, edited.id)
    assert loop.baseline().id == baseline.id


def test_a_batch_asks_for_no_more_proposals_than_trials_left(store, tiny_task, tmp_path):
    provider = ScriptedProvider(proposal("two", ("VALUE = 1", "VALUE = 2")), proposal("three", ("VALUE = 1", "VALUE = 3")))
    budget = Budget(trials=3)
    loop = make_loop(store, tiny_task, provider, budget, tmp_path, parallel=4)
    loop.run()
    assert len(provider.history) == 2  # the baseline took one of three trials: two proposals, not four
    assert [t.failure for t in store.trials(loop.run_id)] == [None, None, None]
    assert left(budget, spent(store, loop.user_id, loop.run_id)) == {"trials": 0}


def test_no_repair_is_asked_for_that_the_budget_cannot_run(store, tiny_task, tmp_path):
    provider = ScriptedProvider(proposal("bigger", ("VALUE = 1", 'VALUE = int("seven")')))
    budget = Budget(trials=2)
    loop = make_loop(store, tiny_task, provider, budget, tmp_path, max_debug=1)
    loop.run()
    assert len(provider.history) == 1  # the crash was not sent to the debugger: no trial was left for its repair
    assert [t.failure for t in store.trials(loop.run_id)] == [None, "crash"]
    assert left(budget, spent(store, loop.user_id, loop.run_id)) == {"trials": 0}  # never overspent


def test_an_unreachable_endpoint_stops_the_loop_without_charging_a_trial(store, tiny_task, tmp_path):
    down = EndpointUnavailableError("endpoint 'local' failed all 4 attempts; the last: connection refused")
    loop = make_loop(store, tiny_task, ScriptedProvider(down), Budget(trials=3), tmp_path)
    with pytest.raises(EndpointUnavailableError):
        loop.run()
    assert [t.proposer for t in store.trials(loop.run_id)] == ["baseline"]  # no trial recorded for the outage
    assert spent(store, loop.user_id, loop.run_id).trials == 1


def test_digits_example_improves_with_a_real_recipe_edit(store, tmp_path):
    task = load_task(EXAMPLES / "digits-classifier")
    provider = ScriptedProvider(proposal(
        "the solver stops before converging; more iterations should raise accuracy",
        ("    model = LogisticRegression(max_iter=MAX_ITER, random_state=SEED)", "    model = LogisticRegression(max_iter=MAX_ITER * 20, random_state=SEED)"),
    ))
    loop = make_loop(store, task, provider, Budget(trials=2, wall_s=300), tmp_path)
    best = loop.run()
    baseline, edited = store.trials(loop.run_id)
    assert edited.kept and edited.score > baseline.score and best.id == edited.id


def test_an_edit_already_tried_on_the_same_parent_or_changing_nothing_is_not_run(store, tiny_task, tmp_path):
    lower = proposal("a smaller value", ("VALUE = 1", "VALUE = 0"))
    provider = ScriptedProvider(lower, lower, proposal("no change", ("VALUE = 1", "VALUE = 1")))
    loop = make_loop(store, tiny_task, provider, Budget(trials=3), tmp_path, max_stalled=2)
    loop.run()
    baseline, tried, again, unchanged = store.trials(loop.run_id)
    assert (tried.parent_id, tried.score, tried.kept) == (baseline.id, 0.0, False)
    assert (again.failure, again.job_id) == ("bad_proposal", None)
    assert f"already tried as trial {tried.id}" in again.detail
    assert (unchanged.failure, unchanged.detail) == ("bad_proposal", "the edits change nothing in the recipe")


def test_a_servers_proposal_schema_has_no_enum_of_code_lines(store, tiny_task, tmp_path):
    provider = ScriptedProvider(proposal("bigger", ("VALUE = 1", "VALUE = 2")))
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path)
    loop.llm.settings = loop.llm.settings.model_copy(update={"endpoints": {
        **loop.llm.settings.endpoints, "local": loop.llm.settings.endpoints["local"].model_copy(update={"kind": "openai"})}})
    loop.run()
    sent = provider.history[0].json_schema
    assert sent["$defs"]["Edit"]["properties"]["find"]["type"] == "string"
    assert "enum" not in sent["$defs"]["Edit"]["properties"]["find"]


@pytest.mark.parametrize(("model", "held_to_lines"), [
    ("smollm2-135m", True), ("/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", False)])
def test_only_a_small_local_model_is_held_to_the_recipes_lines(store, tiny_task, tmp_path, model, held_to_lines):
    # A local Qwen2.5-Coder-1.5B held to one line per `find` picked the comment above MAX_ITER and
    # replaced it; a model of 1B parameters or more writes the block of lines it means.
    provider = ScriptedProvider(proposal("bigger", ("VALUE = 1", "VALUE = 2")))
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path)
    settings = loop.llm.settings
    coding = settings.stage("coding").model_copy(update={"model": model})
    loop.llm.settings = settings.model_copy(update={"stages": settings.stages.model_copy(update={"coding": coding})})
    loop.run()
    find = provider.history[0].json_schema["$defs"]["Edit"]["properties"]["find"]
    assert ("VALUE = 1" in find.get("enum", [])) is held_to_lines


def test_an_edit_refused_before_running_is_not_repaired_again_when_proposed_again(store, tiny_task, tmp_path):
    provider = ScriptedProvider(
        proposal("bigger", ("VALUE = 1", "VALUE = SEVEN")),
        proposal("a repair that does not repair", ("VALUE = SEVEN", "VALUE = EIGHT")),
        proposal("bigger", ("VALUE = 1", "VALUE = SEVEN")),
        proposal("bigger still", ("VALUE = 1", "VALUE = 9")),
    )
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path, max_debug=0)
    loop.run()
    _, refused, bad_repair, again, ran = store.trials(loop.run_id)
    assert bad_repair.failure == "bad_proposal" and "even repaired" in bad_repair.detail
    assert again.failure == "bad_proposal" and f"already tried as trial {refused.id}" in again.detail
    assert len(provider.history) == 4 and (ran.score, ran.kept) == (9.0, True)  # no second repair was asked for


@pytest.mark.parametrize("shown", [True, False])
def test_proposers_are_told_the_declared_search_space_unless_it_is_turned_off(store, tiny_folder, tmp_path, shown):
    with (tiny_folder / "task.toml").open("a") as manifest:
        manifest.write("[search.VALUE]\nmin = 1\nmax = 9\ninteger = true\n")
    provider = ScriptedProvider(proposal("bigger", ("VALUE = 1", "VALUE = 9")))
    make_loop(store, load_task(tiny_folder), provider, Budget(trials=2), tmp_path, show_search_space=shown).run()
    (asked,) = provider.history
    assert ("- VALUE: a whole number from 1 to 9" in asked.messages[-1].content) is shown


READS_VALUE = 'VALUE = int(os.environ.get("VALUE", "1"))'  # the line reading_value_from_the_environment writes


def reading_value_from_the_environment(tiny_folder: Path) -> Path:
    """The tiny task with VALUE read from the environment and declared worth searching (1 to 9)."""
    recipe = tiny_folder / "train.py"
    recipe.write_text(recipe.read_text().replace("VALUE = 1", f"import os\n{READS_VALUE}"))
    with (tiny_folder / "task.toml").open("a") as manifest:
        manifest.write("[search.VALUE]\nmin = 1\nmax = 9\ninteger = true\n")
    return tiny_folder


def test_a_proposal_may_name_values_for_the_declared_settings_and_code_changes_their_defaults(store, tiny_folder, tmp_path):
    # A 1.5B copied `NEIGHBOURS = ...` wrongly in most of its edits; a value it names cannot be miscopied.
    reading_value_from_the_environment(tiny_folder)
    both = json.dumps({"hypothesis": "a larger value", "settings": [{"name": "VALUE", "value": 12.4}],
                       "edits": [{"find": READS_VALUE, "replace": "VALUE = 2"}]})  # the same line: the setting wins
    values = json.dumps({"hypothesis": "a larger value", "settings": [{"name": "VALUE", "value": 12.4}], "edits": []})
    provider = ScriptedProvider(both, values)
    loop = make_loop(store, load_task(tiny_folder), provider, Budget(trials=3), tmp_path, max_stalled=1)
    loop.run()
    _, valued, again = store.trials(loop.run_id)
    assert (valued.score, valued.kept) == (9.0, True)  # 12.4 held to the declared range's top, a whole number
    assert '+VALUE = int(os.environ.get("VALUE", "9"))' in valued.diff
    assert again.failure == "bad_proposal"  # from the head, the same value changes nothing
    settings = provider.history[0].json_schema["$defs"]["Setting"]["properties"]  # only a setting a line reads
    assert settings["name"]["enum"] == ["VALUE"]
    assert list(provider.history[0].json_schema["properties"]) == ["hypothesis", "settings", "edits"]


@pytest.mark.parametrize(("broken", "trials", "max_debug"), [
    ("VALUE = SEVEN", 2, 0),  # refused before running, repaired from the check's traceback
    ('VALUE = int("seven")', 3, 1),  # crashed when run, repaired by the debugger from its logs
], ids=["before-running", "debugger"])
def test_a_repair_is_asked_for_edits_only(store, tiny_folder, tmp_path, broken, trials, max_debug):
    provider = ScriptedProvider(proposal("bigger", (READS_VALUE, broken)), proposal("repair it", (broken, "VALUE = 7")))
    make_loop(store, load_task(reading_value_from_the_environment(tiny_folder)), provider, Budget(trials=trials), tmp_path,
              max_debug=max_debug).run()
    asked, repair = provider.history
    assert "settings" in asked.json_schema["properties"] and "settings" not in repair.json_schema["properties"]


def test_settings_are_not_taken_where_they_were_not_offered(store, tiny_folder, tmp_path):
    reading_value_from_the_environment(tiny_folder)
    unasked = json.dumps({"hypothesis": "louder", "settings": [{"name": "VALUE", "value": 9}],
                          "edits": [{"find": 'print("working")', "replace": 'print("working!")'}]})
    loop = make_loop(store, load_task(tiny_folder), ScriptedProvider(unasked), Budget(trials=2), tmp_path,
                     show_search_space=False)
    loop.run()
    edited = store.trials(loop.run_id)[-1]
    assert edited.score == 1.0 and '"9"' not in edited.diff  # the edit ran, the setting nobody offered did not


def test_a_value_of_nan_is_no_proposal(store, tiny_folder, tmp_path):
    nan = '{"hypothesis": "h", "settings": [{"name": "VALUE", "value": NaN}], "edits": []}'  # JSON Schema allows it
    loop = make_loop(store, load_task(reading_value_from_the_environment(tiny_folder)), ScriptedProvider(nan),
                     Budget(trials=2), tmp_path, max_stalled=1)
    loop.run()
    assert "the model gave no usable proposal" in store.trials(loop.run_id)[-1].detail


def test_settings_run_alone_when_the_edits_name_lines_that_are_not_there_and_the_hypothesis_says_so(store, tiny_folder, tmp_path):
    # The 1.5B named a good value and a miscopied line in most proposals; refusing both spent its budget.
    reading_value_from_the_environment(tiny_folder)
    missing = {"find": "VALUE = 1;", "replace": "VALUE = 2"}
    provider = ScriptedProvider(
        json.dumps({"hypothesis": "a larger value", "settings": [{"name": "VALUE", "value": 7}], "edits": [missing]}),
        json.dumps({"hypothesis": "as it is", "settings": [{"name": "VALUE", "value": 7}], "edits": [missing]}),
    )
    loop = make_loop(store, load_task(tiny_folder), provider, Budget(trials=3), tmp_path, max_stalled=1)
    coding = loop.llm.settings.stage("coding").model_copy(update={"model": "/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"})
    loop.llm.settings = loop.llm.settings.model_copy(update={"stages": loop.llm.settings.stages.model_copy(update={"coding": coding})})
    loop.run()  # a 1.5B's `find` is not held to the recipe's lines
    _, alone, nothing = store.trials(loop.run_id)
    assert (alone.score, alone.kept) == (7.0, True) and '"7"' in alone.diff and "VALUE = 2" not in alone.diff
    assert alone.hypothesis == "(its settings alone: its edits could not be applied) a larger value"
    # from the head the value changes nothing, so nothing is left to run: the edit's error is the detail
    assert nothing.failure == "bad_proposal" and "VALUE = 1;" in nothing.detail
