"""Legality: good diffs apply; edits outside the recipe, escaping paths, symlinks, binaries and
oversized files are reported; make_diff and apply_diff round-trip; snapshots restore."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

from nanoresearch.trials.legality import (
    DiffError,
    IllegalEditError,
    apply_diff,
    check_diff,
    check_edit,
    editable_in,
    make_diff,
    restore,
    snapshot,
)
from nanoresearch.trials.task import Task, load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"

# Changes the default of MAX_ITER in digits-classifier/train.py. The line numbers are off by a
# few on purpose: git finds the hunk by its context, as it must for hand- or model-written diffs.
GOOD_DIFF = "".join(
    line + "\n"
    for line in (
        "diff --git a/train.py b/train.py",
        "--- a/train.py",
        "+++ b/train.py",
        "@@ -12,4 +12,4 @@",
        " ",
        ' # Knobs arrive as environment variables; the budget may pass a lowered value such as "4.0".',
        '-MAX_ITER = int(float(os.environ.get("MAX_ITER", "10")))',
        '+MAX_ITER = int(float(os.environ.get("MAX_ITER", "50")))',
        ' SEED = int(os.environ.get("SEED", "0"))',
    )
)


def edit_diff(folder: Path, name: str, old: str, new: str) -> str:
    """A diff replacing `old` by `new` in folder/name, made with difflib (not make_diff)."""
    before = (folder / name).read_text()
    after = before.replace(old, new)
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{name}", f"b/{name}"))


def new_file_diff(path: str, line: str = "x = 1") -> str:
    return f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{line}\n"


@pytest.fixture
def task() -> Task:
    return load_task(EXAMPLES / "digits-classifier")


@pytest.fixture
def workdir(tmp_path: Path, task: Task) -> Path:
    """A trial's working copy: the whole task folder, so frozen files are there to be (not) touched."""
    return Path(shutil.copytree(task.folder, tmp_path / "trial" / "work"))


def test_good_diff_applies_and_is_legal(task: Task, workdir: Path) -> None:
    assert check_diff(task, GOOD_DIFF) == []
    touched = apply_diff(workdir, GOOD_DIFF)
    assert touched == ["train.py"]
    assert '"MAX_ITER", "50"' in (workdir / "train.py").read_text()
    assert check_edit(task, touched, workdir) == []


def test_plain_diff_u_with_miscounted_hunk_applies(task: Task, workdir: Path) -> None:
    # No a/ b/ prefixes (diff -u) and a wrong hunk length, as a language model might write it.
    diff = (
        GOOD_DIFF.replace("a/train.py", "train.py")
        .replace("b/train.py", "train.py")
        .replace("-12,4 +12,4", "-12,7 +12,9")
    )
    diff = diff.replace("diff --git train.py train.py\n", "")
    assert apply_diff(workdir, diff) == ["train.py"]
    assert '"MAX_ITER", "50"' in (workdir / "train.py").read_text()


def test_diff_that_does_not_match_raises_diff_error(workdir: Path) -> None:
    with pytest.raises(DiffError, match="does not apply"):
        apply_diff(workdir, GOOD_DIFF.replace('"10"', '"11"'))
    assert '"MAX_ITER", "10"' in (workdir / "train.py").read_text()


def test_diff_touching_the_evaluator_is_reported(task: Task, workdir: Path) -> None:
    diff = edit_diff(workdir, "evaluate.py", "correct / len(truth)", "1.0")
    assert any("evaluator" in problem for problem in check_diff(task, diff))
    touched = apply_diff(workdir, diff)  # applying is safe in itself; the task's rules say no
    assert touched == ["evaluate.py"]
    problems = check_edit(task, touched, workdir)
    assert problems == ["evaluate.py: part of the evaluator, which is frozen"]


def test_diff_touching_a_frozen_file_is_reported(task: Task, workdir: Path) -> None:
    for diff, name in ((new_file_diff("helper.py"), "helper.py"), (new_file_diff("task2.toml"), "task2.toml")):
        problems = check_diff(task, diff)
        assert problems == [f"{name}: not editable (editable: train.py)"]
    touched = apply_diff(workdir, new_file_diff("data_extra.py"))
    assert check_edit(task, touched, workdir) == ["data_extra.py: not editable (editable: train.py)"]


def test_a_rename_reports_both_paths(task: Task, workdir: Path) -> None:
    diff = "diff --git a/data.py b/train2.py\nsimilarity index 100%\nrename from data.py\nrename to train2.py\n"
    problems = check_diff(task, diff)
    assert "data.py: not editable (editable: train.py)" in problems
    assert "train2.py: not editable (editable: train.py)" in problems


def test_escaping_path_is_refused_and_nothing_written(task: Task, workdir: Path) -> None:
    diff = new_file_diff("../escape.py")
    assert any("'..'" in problem for problem in check_diff(task, diff))
    with pytest.raises(IllegalEditError) as caught:
        apply_diff(workdir, diff)
    assert any("'..'" in problem for problem in caught.value.problems)
    assert not (workdir.parent / "escape.py").exists()
    assert check_edit(task, ["../escape.py"], workdir) == ["../escape.py: '..' leads outside the working copy"]


def test_absolute_path_is_refused_and_nothing_written(task: Task, workdir: Path, tmp_path: Path) -> None:
    target = tmp_path / "absolute.py"
    diff = f"--- /dev/null\n+++ {target}\n@@ -0,0 +1 @@\n+x = 1\n"
    assert check_diff(task, diff) == [f"{target}: absolute paths are not allowed"]
    with pytest.raises(IllegalEditError):
        apply_diff(workdir, diff)
    # git's -p1 would have turned it into a relative path inside the working copy; neither exists
    assert not target.exists() and not (workdir / str(target).lstrip("/")).exists()
    assert check_edit(task, [str(target)], workdir) == [f"{target}: absolute paths are not allowed"]


def test_symlink_in_the_diff_is_refused(task: Task, workdir: Path) -> None:
    diff = (
        "diff --git a/train.py b/train.py\ndeleted file mode 100644\n"
        "diff --git a/link.py b/link.py\nnew file mode 120000\n--- /dev/null\n+++ b/link.py\n"
        "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n"
    )
    assert any("symlink" in problem for problem in check_diff(task, diff))
    with pytest.raises(IllegalEditError, match="symlink"):
        apply_diff(workdir, diff)
    assert not (workdir / "link.py").is_symlink()


def test_symlink_created_in_the_workdir_is_reported(task: Task, workdir: Path) -> None:
    (workdir / "outside").symlink_to("/etc/passwd")
    (workdir / "inside").symlink_to(workdir / "data.py")  # stays in the copy: not a problem by itself
    problems = check_edit(task, [], workdir)
    assert problems == ["outside: symlink to /etc/passwd, outside the working copy"]

    (workdir / "train.py").unlink()
    (workdir / "train.py").symlink_to("data.py")  # an editable file that is a link, even inside
    assert "train.py: is a symlink; recipe files must be regular files" in check_edit(task, ["train.py"], workdir)


def test_symlinked_folder_is_not_written_through(tmp_path: Path, workdir: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "train.py").write_text("secret\n")
    (workdir / "sub").symlink_to(outside)
    diff = "--- a/sub/train.py\n+++ b/sub/train.py\n@@ -1 +1 @@\n-secret\n+changed\n"
    with pytest.raises(DiffError, match="symbolic link"):
        apply_diff(workdir, diff)
    assert (outside / "train.py").read_text() == "secret\n"


def test_a_git_folder_in_the_workdir_cannot_redirect_the_patch(tmp_path: Path, workdir: Path) -> None:
    # A recipe can write a .git into its own folder; its work tree setting must not be obeyed.
    outside = tmp_path / "elsewhere"
    shutil.copytree(workdir, outside)
    (workdir / ".git").mkdir()
    (workdir / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (workdir / ".git" / "objects").mkdir()
    (workdir / ".git" / "refs").mkdir()
    (workdir / ".git" / "config").write_text(f"[core]\n\tworktree = {outside}\n")
    apply_diff(workdir, GOOD_DIFF)
    assert '"MAX_ITER", "50"' in (workdir / "train.py").read_text()
    assert '"MAX_ITER", "10"' in (outside / "train.py").read_text()


def test_oversized_file_is_reported(task: Task, workdir: Path) -> None:
    limit = task.legality.max_file_kb
    (workdir / "train.py").write_text("# padding\n" * (limit * 1024 // 10 + 100))
    problems = check_edit(task, ["train.py"], workdir)
    assert len(problems) == 1 and f"over the task's limit of {limit} KB" in problems[0]


def test_binary_content_and_binary_patches_are_reported(task: Task, workdir: Path) -> None:
    (workdir / "train.py").write_bytes(b"print(1)\n\0\1\2")
    assert check_edit(task, ["train.py"], workdir) == ["train.py: binary content; recipe files are text"]
    binary = "diff --git a/train.py b/train.py\nindex 1111111..2222222 100644\nGIT binary patch\nliteral 3\nKcmZQzWB>pF\n\nliteral 0\nHcmV?d00001\n\n"
    assert any("binary patch" in problem for problem in check_diff(task, binary))
    with pytest.raises(IllegalEditError, match="binary"):
        apply_diff(workdir, binary)


def test_a_removed_line_that_looks_like_a_header_is_not_one(task: Task, workdir: Path) -> None:
    (workdir / "train.py").write_text("a = 1\n-- /etc/passwd\nb = 2\n")
    diff = "--- a/train.py\n+++ b/train.py\n@@ -1,3 +1,2 @@\n a = 1\n--- /etc/passwd\n b = 2\n"
    assert check_diff(task, diff) == []
    assert apply_diff(workdir, diff) == ["train.py"]
    assert (workdir / "train.py").read_text() == "a = 1\nb = 2\n"


# ---------------------------------------------------------------- diffs between copies, snapshots

ROUND_TRIP_TOML = """
name = "round-trip"
command = "python train.py"
[score]
metric = "accuracy"
[evaluator]
command = "python evaluate.py"
files = ["evaluate.py"]
[legality]
editable = ["train.py", "recipe/*.py"]
"""


@pytest.fixture
def recipe_task(tmp_path: Path) -> Task:
    folder = tmp_path / "task"
    (folder / "recipe").mkdir(parents=True)
    (folder / "task.toml").write_text(ROUND_TRIP_TOML)
    (folder / "evaluate.py").write_text("print('{}')\n")
    (folder / "train.py").write_text("".join(f"line {i}\n" for i in range(40)))
    (folder / "recipe" / "old.py").write_text("gone = True\n")
    (folder / "recipe" / "same.py").write_text("kept = True")  # no final newline, unchanged
    return load_task(folder)


def test_make_diff_then_apply_diff_reproduces_the_edit(recipe_task: Task, tmp_path: Path) -> None:
    old = Path(shutil.copytree(recipe_task.folder, tmp_path / "old"))
    new = Path(shutil.copytree(recipe_task.folder, tmp_path / "new"))
    lines = (new / "train.py").read_text().splitlines()
    lines[2], lines[30] = "changed near the top", "changed near the end\twith a tab"
    lines.insert(20, "-- a line that starts with dashes")
    (new / "train.py").write_text("\n".join(lines))  # and the final newline removed
    (new / "recipe" / "old.py").unlink()
    (new / "recipe" / "added.py").write_text("import os\nprint(os.getcwd())\n")
    (new / "recipe" / "empty.py").write_text("")

    files = sorted(set(editable_in(recipe_task, old)) | set(editable_in(recipe_task, new)))
    diff = make_diff(old, new, files)
    assert "recipe/same.py" not in diff
    assert check_diff(recipe_task, diff) == []
    touched = apply_diff(old, diff)

    assert touched == ["recipe/added.py", "recipe/empty.py", "recipe/old.py", "train.py"]
    assert check_edit(recipe_task, touched, old) == []
    assert editable_in(recipe_task, old) == editable_in(recipe_task, new)
    for name in editable_in(recipe_task, new):
        assert (old / name).read_bytes() == (new / name).read_bytes(), name
    assert make_diff(old, new, files) == ""


def test_make_diff_refuses_non_text(recipe_task: Task, tmp_path: Path) -> None:
    new = Path(shutil.copytree(recipe_task.folder, tmp_path / "new"))
    (new / "train.py").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(DiffError, match="not UTF-8"):
        make_diff(recipe_task.folder, new, ["train.py"])


def test_snapshot_and_restore(recipe_task: Task, tmp_path: Path) -> None:
    work = Path(shutil.copytree(recipe_task.folder, tmp_path / "work"))
    saved = snapshot(recipe_task, work, tmp_path / "snap")
    assert saved == ["recipe/old.py", "recipe/same.py", "train.py"]
    assert not (tmp_path / "snap" / "evaluate.py").exists()

    (work / "train.py").write_text("broken\n")
    (work / "recipe" / "old.py").unlink()
    (work / "recipe" / "new.py").write_text("added later\n")
    os.symlink(work / "evaluate.py", work / "recipe" / "same.py.tmp")  # not editable: left alone

    assert restore(recipe_task, tmp_path / "snap", work) == saved
    assert editable_in(recipe_task, work) == saved
    for name in saved:
        assert (work / name).read_bytes() == (recipe_task.folder / name).read_bytes()
