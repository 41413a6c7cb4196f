"""Feasibility trusts the change over a wrong file list (issue 15): Qwen2.5-Coder-1.5B proposed setting
MAX_ITER, a knob the digits task allows, but listed data.py three times, and was scored infeasible.
Knobs reach the recipe through the environment, so such a change touches no file."""

from __future__ import annotations

import pytest

from conftest import DIGITS
from nanoresearch.pipeline.feasibility import ANCHORED, judge_feasibility
from nanoresearch.pipeline.stages.ideation import ScoredHypothesis
from nanoresearch.trials.task import load_task

TASK = load_task(DIGITS)
TITLE = "Increase the number of training iterations to 20"  # the 1.5B model's hypothesis on the digits task
FILES = ["data.py", "data.py", "data.py"]


def judged(change: str, files: list[str] = FILES, knobs: tuple[str, ...] = ("MAX_ITER",), title: str = TITLE):
    return judge_feasibility(f"{title}. {change}", files, list(knobs), TASK, change=change)


def test_a_change_that_only_sets_an_allowed_knob_is_feasible_whatever_its_file_list() -> None:
    verdict = judged("MAX_ITER = 20")
    assert verdict.score == ANCHORED
    assert verdict.reason == ("sets MAX_ITER, a knob the task allows (its file list names data.py, which a knob does "
                              "not touch)")


@pytest.mark.parametrize(("title", "change", "knobs", "reason"), [
    ("More data", "use more training samples", (), "changes data.py, which the task freezes"),
    ("Noisy digits", "edit data.py to add noise", (), "changes data.py, which the task freezes"),
    ("Noisy digits", "MAX_ITER = 20; edit data.py to add noise", ("MAX_ITER",), "changes data.py"),  # names data.py
    ("Iterations", "MAX_ITER = 20, max_iter=100", ("MAX_ITER",), "changes data.py"),  # also edits the recipe's code
    ("Iterations", "SAMPLES = 5000", (), "changes data.py"),  # not a knob of the task
    ("More data", "MAX_ITER = 20 and collect more training samples", ("MAX_ITER",), "changes data.py"),
    ("A new split", "MAX_ITER = 20 with another train/test split", ("MAX_ITER",), "changes data.py"),
])
def test_a_frozen_file_stays_infeasible_unless_the_change_only_sets_knobs(title, change, knobs, reason) -> None:
    verdict = judged(change, ["data.py"], knobs, title)
    assert verdict.score == 0.0 and reason in verdict.reason, verdict.reason


def test_the_stored_hypothesis_names_each_file_and_knob_once() -> None:
    stored = ScoredHypothesis(title=TITLE, statement="More iterations let the solver converge.", rationale="The solver stops early.",
                              change="MAX_ITER = 20", files=FILES, knobs=["MAX_ITER", "MAX_ITER"], novelty=0.5)
    assert (stored.files, stored.knobs) == (["data.py"], ["MAX_ITER"])


def test_a_result_measured_on_the_held_out_split_does_not_change_the_split() -> None:
    # The 1.5B's statement was refused as "needs 'held-out split'".
    text = ("Increase the number of training iterations to 20. The increased number of training iterations will allow "
            "the model to learn more complex patterns and improve its accuracy on the held-out split. MAX_ITER = 20")
    assert judge_feasibility(text, ["train.py"], ["MAX_ITER"], TASK, change="MAX_ITER = 20").score > 0
    for changes_it in ("use a larger held-out split", "change the train-test split to 90/10"):
        assert judge_feasibility(changes_it, ["train.py"], [], TASK, change=changes_it).score == 0, changes_it
