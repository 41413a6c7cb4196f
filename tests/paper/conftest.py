"""A results.json with a baseline, the proposed method and two ablations, three retrieved papers, and the
demo's digits-classifier outcome (no kept improvement) with the fact sheet of that task."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoresearch.literature.source import Paper
from nanoresearch.paper.factsheet import ClaimFact, FactSheet, KnobFact, TaskFacts, TrialFact, build_fact_sheet
from nanoresearch.paper.results import Comparison, Condition, Results, TrialPoint
from nanoresearch.trials.task import load_task


@pytest.fixture
def results() -> Results:
    return Results(
        run_id="run-1",
        task="tiny_mnist",
        metric="accuracy",
        direction="maximize",
        success=True,
        best_trial_id=3,
        trials=[
            TrialPoint(id=1, proposer="baseline", hypothesis="start", score=0.90123, kept=True),
            TrialPoint(id=2, parent_id=1, proposer="llm", hypothesis="wider", failure="crash"),
            TrialPoint(id=3, parent_id=1, proposer="llm", hypothesis="dropout", score=0.95342, kept=True),
        ],
        conditions=[
            Condition(
                name="baseline", kind="baseline", seeds=[0, 1, 2], scores=[0.90, 0.91, 0.905],
                n=3, mean=0.905, std=0.005, ci95=(0.89258, 0.91742),
            ),
            Condition(
                name="proposed", kind="proposed", seeds=[0, 1, 2], scores=[0.95, 0.947, 0.944],
                n=3, mean=0.94700, std=0.003, ci95=(0.93955, 0.95445),
            ),
            Condition(
                name="ablation: without dropout", kind="ablation", description="dropout_rate = 0 & no 50% masking",
                seeds=[0, 1, 2], scores=[0.92, 0.93, 0.925], n=3, mean=0.925, std=0.005, ci95=(0.91258, 0.93742),
            ),
            Condition(name="ablation: without layer 2", kind="ablation", seeds=[0], scores=[0.9], n=1, mean=0.9,
                      std=0.0),
        ],
        comparisons=[
            Comparison(a="proposed", b="baseline", difference=0.042, test="Welch t-test", statistic=12.34,
                       p_value=0.00021, significant=True),
            Comparison(a="proposed", b="ablation: without dropout", difference=0.022, test="Welch t-test",
                       statistic=6.52, p_value=0.0061, significant=True),
            Comparison(a="proposed", b="ablation: without layer 2", difference=0.047, test="untestable (n < 2)"),
        ],
        notes=["scores are from 3 seeds"],
    )  # fmt: skip


@pytest.fixture
def papers() -> list[Paper]:
    return [
        Paper(
            key="lecun1998gradient",
            title="Gradient-Based Learning Applied to Document Recognition",
            authors=["Yann LeCun", "Léon Bottou", "Yoshua Bengio", "Patrick Haffner"],
            year=1998,
            venue="Proceedings of the IEEE",
            doi="10.1109/5.726791",
        ),
        Paper(
            key="srivastava2014dropout",
            title="Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
            authors=["Srivastava, Nitish", "Hinton, Geoffrey"],
            year=2014,
            bibtex="@article{whatever,\n  title = {Dropout: A Simple Way to Prevent Neural Networks from Overfitting},\n"
            "  author = {Srivastava, Nitish and Hinton, Geoffrey},\n  journal = {JMLR},\n  year = {2014}\n}",
        ),
        Paper(
            key="higgins2017beta",
            title="β-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
            authors=["Irina Higgins"],
            year=2017,
            url="https://openreview.net/forum?id=Sy2fzU9gl&x_y=1",
            arxiv_id="1234.5678",
        ),
    ]


DIGITS = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "digits-classifier"


@pytest.fixture
def digits_results() -> Results:
    """The demo's outcome: the best kept trial was the baseline, so proposed = baseline = 0.947."""
    scores = {"accuracy": [0.9472, 0.9472], "n": [360.0, 360.0]}
    same = dict(seeds=[0, 1], scores=[0.9472, 0.9472], metrics=scores, n=2, mean=0.9472, std=0.0, ci95=(0.9472, 0.9472))
    return Results(
        run_id="run-digits",
        task="digits-classifier",
        metric="accuracy",
        direction="maximize",
        success=False,
        evaluated=True,
        best_trial_id=1,
        trials=[
            TrialPoint(id=1, proposer="baseline", hypothesis="the recipe as given", score=0.9472, kept=True),
            TrialPoint(id=2, parent_id=1, proposer="llm", hypothesis="more training samples", failure="bad_proposal"),
        ],
        conditions=[Condition(name="baseline", kind="baseline", **same), Condition(name="proposed", kind="proposed", **same)],
        comparisons=[Comparison(a="proposed", b="baseline", difference=0.0, test="zero variance: identical scores")],
        notes=["no trial improved on the baseline: proposed = baseline"],
    )  # fmt: skip


@pytest.fixture
def digits_sheet(digits_results: Results) -> FactSheet:
    """The fact sheet of the digits-classifier example task, as the writing stage builds it."""
    task = TaskFacts(
        name="digits-classifier", description=load_task(DIGITS).description, metric="accuracy", direction="maximize",
        editable=["train.py"], knobs=[KnobFact(name="MAX_ITER", default=10, min=3)], folder=DIGITS,
    )
    trials = [
        TrialFact(id=1, proposer="baseline", hypothesis="the recipe as given", score=0.9472, kept=True),
        TrialFact(id=2, proposer="llm", hypothesis="increase the number of training samples", failure="bad_proposal"),
    ]
    claims = [ClaimFact(paper="lecun1998gradient", claim="Convolutional networks recognise handwritten digits",
                        quote="convolutional neural networks")]
    return build_fact_sheet(task, digits_results, trials, claims)
