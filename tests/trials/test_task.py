"""Task folders: the shipped examples load, and each kind of broken folder says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoresearch.errors import UserError
from nanoresearch.trials.task import editable_files, load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"

GOOD_TOML = """
name = "toy"
command = "python train.py"

[score]
metric = "accuracy"

[evaluator]
command = "python evaluate.py"
files = ["evaluate.py"]

[legality]
editable = ["train.py"]
"""


def make_task(folder: Path, toml: str | None = GOOD_TOML, files: tuple[str, ...] = ("train.py", "evaluate.py")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if toml is not None:
        (folder / "task.toml").write_text(toml)
    for name in files:
        (folder / name).write_text("print('hello')\n")
    return folder


def test_digits_example_loads() -> None:
    task = load_task(EXAMPLES / "digits-classifier")
    assert task.name == "digits-classifier"
    assert task.score.metric == "accuracy" and task.score.direction == "maximize"
    assert editable_files(task) == ["train.py"]
    assert task.evaluator.files == ["evaluate.py"]
    assert "MAX_ITER" in task.knobs
    assert (task.folder / "README.md").is_file()


def test_tiny_mlp_example_loads() -> None:
    task = load_task(EXAMPLES / "tiny-mlp")
    assert task.name == "tiny-mlp"
    assert task.score.metric == "log_loss" and task.score.direction == "minimize"
    assert editable_files(task) == ["model.py", "train.py"]
    assert "EPOCHS" in task.knobs
    assert {name: spec.files for name, spec in task.specialists.items()} == {
        "architecture": ["model.py"],
        "optimizer": ["train.py"],
    }
    assert (task.folder / "README.md").is_file()


def test_the_declared_search_space_is_put_in_words_for_proposers(tmp_path: Path) -> None:
    text = load_task(EXAMPLES / "tiny-lm").search_space_text()
    assert "- LR: a number from 0.001 to 0.3, on a log scale" in text
    assert "- WIDTH: a whole number from 16 to 128" in text
    assert "under `settings`" in text  # how to try a value: code changes the default the recipe reads
    assert load_task(make_task(tmp_path / "toy")).search_space_text() == ""  # no [search]: nothing to say


def test_a_minimal_folder_loads(tmp_path: Path) -> None:
    task = load_task(make_task(tmp_path / "toy"))
    assert task.folder == (tmp_path / "toy").resolve()
    assert task.resources.cpus == 1


def test_missing_task_toml(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="task.toml is missing"):
        load_task(make_task(tmp_path / "toy", toml=None))


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_task(tmp_path / "nowhere")


def test_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not valid TOML"):
        load_task(make_task(tmp_path / "toy", toml='name = "toy\ncommand = 3'))


def test_unknown_key_is_named(tmp_path: Path) -> None:
    toml = GOOD_TOML.replace("[legality]", "[legality]\ncolour = 'red'")
    with pytest.raises(UserError, match=r"legality\.colour"):
        load_task(make_task(tmp_path / "toy", toml=toml))


def test_missing_evaluator_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="evaluator file.*not found.*evaluate.py"):
        load_task(make_task(tmp_path / "toy", files=("train.py",)))


def test_evaluator_file_matching_editable(tmp_path: Path) -> None:
    toml = GOOD_TOML.replace('editable = ["train.py"]', 'editable = ["*.py"]')
    with pytest.raises(UserError, match="evaluator file 'evaluate.py' matches an editable pattern"):
        load_task(make_task(tmp_path / "toy", toml=toml))


def test_nothing_editable(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no file in the folder matches legality.editable"):
        load_task(make_task(tmp_path / "toy", files=("evaluate.py",)))
