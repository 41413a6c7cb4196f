"""Hypotheses a researcher would pick: each names what it changes in the recipe, and selection combines
relevance to the goal, feasibility on the task and novelty. The issue's example: on the digits task
(only train.py and MAX_ITER may change; the split is frozen) "increase the number of training
samples" was selected for its novelty."""

from __future__ import annotations

import json

import pytest

from conftest import CORPUS, DIGITS, GOAL
from helpers import ScriptedProvider
from nanoresearch.literature import search_literature
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.feasibility import ANCHORED, RELEVANCE_FLOOR, UNANCHORED, judge_feasibility, relevance
from nanoresearch.pipeline.stages.ideation import Ideas, ScoredHypothesis, run_ideation, select
from nanoresearch.trials.task import load_task

TASK = load_task(DIGITS)
MORE_SAMPLES = ("Increase the number of training samples. More training samples give the classifier more to learn "
                "from and raise accuracy.")
MORE_ITERATIONS = "Let the solver converge. Raising max_iter lets logistic regression converge and classify better."


@pytest.mark.parametrize(("text", "files", "knobs", "reason"), [
    (MORE_SAMPLES, ["train.py"], [], "the data, split and score are the evaluator's"),
    ("Use a better split. Change the train/test split to 90/10.", ["train.py"], [], "the evaluator's"),
    ("Clean the data. Remove noisy digits.", ["data.py"], [], "data.py, which the task freezes"),
    ("Train longer. More epochs help.", ["train.py"], ["EPOCHS"], "EPOCHS, which the recipe does not read"),
    ("Think harder. A better idea helps.", [], [], "names no file or knob"),
])
def test_what_the_task_cannot_change_is_infeasible(text: str, files: list[str], knobs: list[str], reason: str) -> None:
    judged = judge_feasibility(text, files, knobs, TASK)
    assert judged.score == 0.0 and reason in judged.reason


def test_a_change_to_the_recipe_itself_is_feasible_and_more_so_when_it_names_its_parts() -> None:
    anchored = judge_feasibility(MORE_ITERATIONS, ["train.py"], [], TASK)
    assert anchored.score == ANCHORED and "max_iter" in anchored.reason
    assert judge_feasibility("Tune the solver. A knob helps.", [], ["MAX_ITER"], TASK).score == ANCHORED
    assert judge_feasibility("Scale the inputs. Standardise the pixels.", ["train.py"], [], TASK).score == UNANCHORED
    # augmentation happens in the editable recipe, so "more images" is not a request for more data
    assert judge_feasibility("Augment the images. Add shifted images to the training set with augmentation.",
                             ["train.py"], [], TASK).score > 0
    assert judge_feasibility(MORE_SAMPLES, [], [], None).score == ANCHORED  # no task yet: planning writes one for it


@pytest.mark.slow  # MiniLM
def test_relevance_tells_the_digits_recipe_from_other_fields() -> None:
    on_topic = [MORE_ITERATIONS, "Scale the inputs. Standardising pixel values speeds convergence",
                "Stronger regularisation. A smaller C reduces overfitting of the classifier",
                "Use a convolutional network. A small CNN learns spatial features of the digit images"]
    off_topic = ["Attention for translation. Transformers improve BLEU on machine translation",
                 "Robot control. Reinforcement learning improves robot grasping",
                 "Protein folding. Deep networks predict protein structure",
                 "Faster GPUs. Buying more GPUs speeds up training"]
    scores = relevance(on_topic + off_topic, GOAL, TASK)
    assert min(scores[:4]) >= RELEVANCE_FLOOR > max(scores[4:])


def scored(title: str, *, relevance: float, feasibility: float, novelty: float, degenerate: list[str] | None = None,
           ) -> ScoredHypothesis:
    return ScoredHypothesis(title=title, statement=title, rationale=title, novelty=novelty, relevance=relevance,
                            feasibility=feasibility, feasibility_reason="given", degenerate=degenerate or [],
                            score=feasibility * (0.6 * relevance + 0.4 * novelty))


def test_an_infeasible_irrelevant_or_degenerate_idea_is_never_selected_however_novel() -> None:
    pool = [
        scored("more training samples", relevance=0.47, feasibility=0.0, novelty=0.95),
        scored("machine translation", relevance=0.05, feasibility=1.0, novelty=0.99),
        scored("1. 1. 2. 3.", relevance=0.5, feasibility=1.0, novelty=0.97, degenerate=["title: a list of numbers"]),
        scored("more solver iterations", relevance=0.39, feasibility=1.0, novelty=0.40),
    ]
    best, reason = select(pool)
    assert best == 3
    assert "infeasible" in reason and "irrelevant" in reason and "degenerate" in reason
    none, why = select(pool[:3])
    assert none is None and "infeasible" in why


@pytest.mark.slow  # MiniLM
def test_ideation_stores_and_shows_each_component_and_skips_the_frozen_split(make_context) -> None:
    ctx = make_context(ScriptedProvider(name="local"))
    shown: list[str] = []
    ctx.say = shown.append
    papers = search_literature([GOAL], offline=True, corpus=CORPUS, cache_dir=ctx.settings.cache_dir, limit=8)
    quote = " ".join(papers[0].abstract.split()[:8])
    pool = {"hypotheses": [
        {"title": "Increase the number of training samples", "statement": MORE_SAMPLES, "change": "load more samples",
         "rationale": "More data is the most reliable way to raise accuracy", "files": ["train.py"], "knobs": []},
        {"title": "Let the solver converge", "statement": MORE_ITERATIONS, "change": "set max_iter=MAX_ITER * 10",
         "rationale": "The recipe stops the solver before it converges", "files": ["train.py"], "knobs": ["MAX_ITER"]},
    ]}
    ctx.llm._providers["local"] = ScriptedProvider(
        json.dumps({"queries": ["logistic regression convergence"]}),
        json.dumps({"claims": [{"paper": papers[0].key, "claim": "The digits are 8x8 bitmaps", "quote": quote}]}),
        json.dumps(pool), name="local")
    run_ideation(ctx, StagePlan(objectives=["find a testable hypothesis"]))

    ideas = Ideas.model_validate_json((ctx.workspace / "ideas.json").read_text())
    samples, iterations = ideas.hypotheses
    assert samples.feasibility == 0.0 and "evaluator" in samples.feasibility_reason
    assert iterations.feasibility == ANCHORED and iterations.relevance >= RELEVANCE_FLOOR and iterations.score > 0
    assert ideas.selected == 1 and "infeasible" in ideas.reason
    assert all(f"novelty {h.novelty:.2f}" in " ".join(shown) and f"relevance {h.relevance:.2f}" in " ".join(shown)
               for h in ideas.hypotheses)  # every component is shown, not only stored
