"""The fact sheet is built by code from the task folder, the trials, results.json and the verified claims."""

from __future__ import annotations

from pathlib import Path

from nanoresearch.paper.factsheet import (
    FactSheet,
    KnobFact,
    TaskFacts,
    build_fact_sheet,
    changed_lines,
    read_task_folder,
)
from nanoresearch.paper.results import Results


def test_the_digits_sheet_names_the_model_data_and_split_the_task_folder_holds(digits_sheet: FactSheet) -> None:
    assert digits_sheet.models == ["LogisticRegression (sklearn.linear_model)"]
    assert digits_sheet.datasets == ["load_digits (sklearn.datasets)"]
    sizes = {size.count: size for size in digits_sheet.sizes}
    assert {1797, 1437, 360} <= set(sizes)
    assert sizes[360].source == "evaluator"  # the n its evaluator reported, before what the README says
    assert sizes[1437].what == "training images"
    assert {"1797", "1437", "360", "10", "3"} <= digits_sheet.size_numbers()  # the knob's default and lowest value


def test_the_writer_sees_the_outcome_trials_results_and_verified_claims(digits_sheet: FactSheet) -> None:
    text = digits_sheet.text()

    assert "Outcome: no kept change beat the baseline." in text
    assert "- trial 2 (llm): increase the number of training samples; FAILED (bad_proposal)" in text
    assert "\\ResBaselineMean = 0.947: mean accuracy of baseline over 2 seeds" in text
    assert '- [lecun1998gradient] Convolutional networks recognise handwritten digits (quote: "convolutional' in text
    assert "builds (models, layers, optimisers): LogisticRegression (sklearn.linear_model)." in text
    assert "MNIST" not in text  # nothing on the sheet says MNIST: the fact checker relies on that
    assert len(digits_sheet.text(documentation_chars=100)) < len(text)


def test_a_trial_shows_the_lines_its_diff_changed_not_only_its_hypothesis() -> None:
    diff = (
        "--- a/train.py\n+++ b/train.py\n@@ -1,3 +1,3 @@\n"
        " import os\n-    model = LogisticRegression(max_iter=MAX_ITER)\n+    model = SVC(C=10)\n+\n"
    )

    assert changed_lines(diff) == ["- model = LogisticRegression(max_iter=MAX_ITER)", "+ model = SVC(C=10)"]


def test_a_task_folder_with_a_broken_recipe_still_gives_its_documentation(tmp_path: Path, digits_results: Results) -> None:
    (tmp_path / "train.py").write_text('"""Recipe: gradient boosting on 500 rows."""\nimport (\n')
    (tmp_path / "data.py").write_text('"""Loads 2,000 records."""\nfrom sklearn.datasets import fetch_openml\nX = fetch_openml("x")\n')

    models, loaders, sizes, documentation = read_task_folder(tmp_path)

    assert models == [] and loaders == ["fetch_openml (sklearn.datasets)"]
    assert {size.count for size in sizes} == {2000}  # the broken file's docstring cannot be parsed
    assert "Loads 2,000 records." in documentation
    task = TaskFacts(name="t", metric="accuracy", direction="maximize", editable=["train.py"],
                     knobs=[KnobFact(name="DEPTH", default=4, min=1)])  # fmt: skip
    sheet = build_fact_sheet(task, digits_results, [], [])  # no folder: the sheet still has the results
    assert sheet.models == [] and "\\ResProposedMean = 0.947" in sheet.text()


def test_torch_layers_and_a_model_class_defined_in_the_recipe_are_read(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass TinyMLP(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.body = nn.Sequential(nn.Linear(30, 16))\n\n\n"
        "optimiser = torch.optim.SGD([], lr=0.1)\n"
    )

    models, loaders, _, _ = read_task_folder(tmp_path)

    assert set(models) == {"TinyMLP (torch.nn.Module)", "Sequential (torch.nn)", "Linear (torch.nn)", "SGD (torch.optim)"}
    assert loaders == []


def test_the_checker_reads_every_change_and_no_model_words(digits_sheet: FactSheet) -> None:
    reverted = digits_sheet.trials[1].model_copy(update={"failure": None, "score": 0.9, "changed": ["+ model = SVC()"]})
    sheet = digits_sheet.model_copy(update={"trials": [digits_sheet.trials[0], reverted]})

    prompt, checked = sheet.text(), sheet.text(model_words=False)

    assert "SVC()" not in prompt and "increase the number of training samples" in prompt  # kept trials' changes only
    assert "SVC()" in checked and "training samples" not in checked and "Convolutional" not in checked
