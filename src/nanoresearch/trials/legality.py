"""Legality of a trial's code edit: may this diff be applied, and is the result within the rules?

A trial may change only the recipe: the files matching the task's `legality.editable` globs.
Everything else in the task folder, above all the evaluator, is frozen. Checks return problems as
sentences; upstream any problem becomes the `illegal_edit` failure label.

    problems = check_diff(task, diff)           # before: what the diff says it will do
    touched = apply_diff(workdir, diff)         # refuses paths outside, binaries and symlinks outright
    problems = check_edit(task, touched, workdir)   # after: what is now on disk

Diffs are applied with `git apply`, which is atomic (all files or none), refuses paths outside the
working folder and never writes through a symlink. The paths checked are the ones git itself
reports (`--numstat`) it will write, so a parse of ours cannot disagree with what happens; the
diff's header lines are read only to refuse, with a clear message, what git would reject or
silently rewrite (an absolute path loses its leading slash under -p1).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import tempfile
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from nanoresearch.errors import NanoResearchError
from nanoresearch.trials.task import Task


class DiffError(NanoResearchError):
    """A diff that cannot be read or does not apply to the working copy."""


class IllegalEditError(DiffError):
    """A diff that must not be applied at all; `problems` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("illegal edit: " + "; ".join(problems))
        self.problems = problems


SYMLINK_MODE = re.compile(r"^(new file mode|deleted file mode|new mode|old mode) 120000\b")
DEV_NULL = "/dev/null"


# ---------------------------------------------------------------- before applying


def check_diff(task: Task, diff_text: str) -> list[str]:
    """Problems visible in the diff alone, found without touching any file."""
    problems = _header_problems(diff_text)
    if problems:
        return problems  # git would reject or rewrite these paths, so its reading is not worth asking for
    with tempfile.TemporaryDirectory(prefix="nanoresearch-diff-") as empty:  # numstat reads no files
        touched, binary = _git_changes(diff_text, Path(empty))
    problems = [f"{path}: binary patches are not allowed; recipe files are text" for path in binary]
    return problems + [problem for path in touched for problem in _path_problems(task, path)]


def apply_diff(workdir: Path, diff_text: str) -> list[str]:
    """Apply a unified diff to the working copy; return the files it touched (relative, sorted).

    Raises IllegalEditError, before writing anything, for paths outside the working copy, binary
    patches and symlinks, whatever the task; DiffError when the diff does not apply.
    """
    workdir = Path(workdir).resolve()
    problems = _header_problems(diff_text)
    if not problems:
        touched, binary = _git_changes(diff_text, workdir)
        problems = [f"{path}: binary patches are not allowed" for path in binary]
        problems += [problem for path in touched for problem in _unsafe_path(path)]
    if problems:
        raise IllegalEditError(problems)
    _git(["apply", *_apply_flags(diff_text)], workdir, diff_text)
    return touched


def revert_diff(workdir: Path, diff_text: str) -> None:
    """Undo one of our own recorded diffs in a working copy (an ablation); DiffError when it no longer applies."""
    _git(["apply", "-R", *_apply_flags(diff_text)], Path(workdir).resolve(), diff_text)


def _header_problems(diff_text: str) -> list[str]:
    """Absolute or escaping paths, binary patches and symlinks, read from the diff's header lines."""
    problems: list[str] = []
    lines = [line.rstrip("\r") for line in diff_text.split("\n")]
    strip = _strip_level(lines)
    for index, line in enumerate(lines):
        if line.startswith("GIT binary patch") or (line.startswith("Binary files ") and line.endswith(" differ")):
            problems.append("the diff contains a binary patch; recipe files are text")
        elif SYMLINK_MODE.match(line):
            problems.append(
                f"the diff creates or changes a symlink ({line.strip()}); recipe files must be regular files"
            )
        for path in _header_paths(lines, index, strip):
            problems += _unsafe_path(path)
    return list(dict.fromkeys(problems))  # one report per problem, in order


def _header_paths(lines: list[str], index: int, strip: int) -> list[str]:
    """The paths named on header line `index`, with git's a/ b/ prefixes removed."""
    line = lines[index]
    if line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
        return [_unquote(line.split(" ", 2)[2])]
    if line.startswith("diff --git "):
        return [_strip(_unquote(token), 1) for token in line[len("diff --git ") :].split(" ") if token]
    if _starts_pair(lines, index):
        pair = [_diff_path(line), _diff_path(lines[index + 1])]
        return [_strip(path, strip) for path in pair if path != DEV_NULL]
    return []


def _diff_path(header: str) -> str:
    """The path on a ---/+++ line, without the timestamp that diff -u appends after a tab."""
    return _unquote(header[4:].split("\t", 1)[0].strip())


def _unquote(path: str) -> str:
    # git quotes unusual names "like\tthis"; escapes do not matter for the checks made here
    return path[1:-1] if len(path) >= 2 and path[0] == path[-1] == '"' else path


def _strip(path: str, level: int) -> str:
    if level and path.startswith(("a/", "b/")):
        return path[2:]
    return path


def _strip_level(lines: list[str]) -> int:
    """-p1 for git-style a/ b/ paths, -p0 for plain `diff -u file file` output."""
    paths = [_diff_path(lines[i]) for start in _header_pairs(lines) for i in (start, start + 1)]
    paths = [path for path in paths if path != DEV_NULL]
    return 1 if all(path.startswith(("a/", "b/")) for path in paths) else 0


def _header_pairs(lines: list[str]) -> list[int]:
    return [index for index in range(len(lines)) if _starts_pair(lines, index)]


def _starts_pair(lines: list[str], index: int) -> bool:
    # A removed line reading "-- x" also starts with "--- ", so only a ---/+++ pair is a header.
    return lines[index].startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ ")


def _apply_flags(diff_text: str) -> list[str]:
    # --recount: proposers miscount hunk lengths; the hunks' own lines are what matter.
    lines = [line.rstrip("\r") for line in diff_text.split("\n")]
    return [f"-p{_strip_level(lines)}", "--recount", "--whitespace=nowarn"]


def _git_changes(diff_text: str, workdir: Path) -> tuple[list[str], list[str]]:
    """(every path git would write or delete, the binary ones), from `git apply --numstat`."""
    output = _git(["apply", "--numstat", "-z", *_apply_flags(diff_text)], workdir, diff_text)
    touched: list[str] = []
    binary: list[str] = []
    for record in filter(None, output.split("\0")):
        added, _, path = record.split("\t", 2)
        touched.append(path)
        if added == "-":
            binary.append(path)
    # numstat names only the new path of a rename; the old one is deleted, so it counts as touched
    renamed = [
        _unquote(line[len("rename from ") :]) for line in diff_text.split("\n") if line.startswith("rename from ")
    ]
    return sorted(set(touched + renamed)), sorted(set(binary))


def _git(arguments: list[str], workdir: Path, stdin: str) -> str:
    # Keep git out of every repository: one above the working copy would make paths relative to
    # it, and a .git a recipe wrote into its own folder could redirect the work tree. With GIT_DIR
    # naming no repository, git apply works on the plain folder. User configuration is ignored too.
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    env.update(
        GIT_DIR=os.devnull,
        GIT_CEILING_DIRECTORIES=str(workdir.resolve().parent),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        LC_ALL="C",
    )
    result = subprocess.run(
        ["git", *arguments], cwd=workdir, input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise DiffError(f"the diff does not apply: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


# ---------------------------------------------------------------- after applying


def check_edit(task: Task, touched_files: list[str], workdir: Path) -> list[str]:
    """Problems with an applied edit: paths against the rules, then what is on disk."""
    workdir = Path(workdir).resolve()
    problems = [problem for path in touched_files for problem in _path_problems(task, path)]
    problems += escaping_symlinks(workdir)
    for path in touched_files:
        if not _unsafe_path(path):
            problems += _file_problems(task, workdir / path, path)
    return problems


def _unsafe_path(path: str) -> list[str]:
    if path.startswith("/") or PurePosixPath(path).is_absolute():
        return [f"{path}: absolute paths are not allowed"]
    if ".." in PurePosixPath(path).parts:
        return [f"{path}: '..' leads outside the working copy"]
    return []


def _path_problems(task: Task, path: str) -> list[str]:
    """At most one problem per path: the first rule it breaks."""
    unsafe = _unsafe_path(path)
    if unsafe:
        return unsafe
    relative = PurePosixPath(path).as_posix()
    if relative in {PurePosixPath(name).as_posix() for name in task.evaluator.files}:
        return [f"{relative}: part of the evaluator, which is frozen"]
    if not _is_editable(task, relative):
        return [f"{relative}: not editable (editable: {', '.join(task.legality.editable)})"]
    return []


def _file_problems(task: Task, full: Path, path: str) -> list[str]:
    if full.is_symlink():
        return [f"{path}: is a symlink; recipe files must be regular files"]
    if not full.is_file():
        return []  # deleted by the edit, which the path rules already allowed
    size_kb = full.stat().st_size / 1024
    if size_kb > task.legality.max_file_kb:
        return [f"{path}: {size_kb:.0f} KB, over the task's limit of {task.legality.max_file_kb} KB"]
    if b"\0" in full.read_bytes():
        return [f"{path}: binary content; recipe files are text"]
    return []


def escaping_symlinks(workdir: Path) -> list[str]:
    """Symlinks anywhere in the working copy that resolve outside it (found without following any)."""
    problems = []
    for folder, subfolders, files in os.walk(workdir):
        for name in subfolders + files:
            entry = Path(folder) / name
            if entry.is_symlink():
                target = Path(os.path.realpath(entry))
                if not target.is_relative_to(workdir):
                    problems.append(
                        f"{entry.relative_to(workdir).as_posix()}: symlink to {target}, outside the working copy"
                    )
    return problems


def _is_editable(task: Task, relative: str) -> bool:
    return any(fnmatch(relative, pattern) for pattern in task.legality.editable)


# ---------------------------------------------------------------- diffs and snapshots of the recipe


def editable_in(task: Task, folder: Path) -> list[str]:
    """The editable files present in `folder` (a working copy or snapshot), as sorted relative paths.

    Unlike `task.editable_files`, this sees files a trial added, and it skips symlinks.
    """
    folder = Path(folder)
    found = []
    for parent, _, files in os.walk(folder):
        for name in files:
            full = Path(parent) / name
            relative = full.relative_to(folder).as_posix()
            if not full.is_symlink() and _is_editable(task, relative):
                found.append(relative)
    return sorted(found)


def make_diff(old_dir: Path, new_dir: Path, files: list[str]) -> str:
    """A git-style unified diff turning `files` in old_dir into those in new_dir.

    A file missing on one side is a creation or deletion; apply_diff applies the result.
    """
    return "".join(_file_diff(path, Path(old_dir) / path, Path(new_dir) / path) for path in sorted(set(files)))


def _file_diff(path: str, old: Path, new: Path) -> str:
    before, after = _read_text(old), _read_text(new)
    if before == after:
        return ""
    header = [f"diff --git a/{path} b/{path}\n"]
    if before is None:
        header.append(f"new file mode {_mode(new)}\n")
    elif after is None:
        header.append(f"deleted file mode {_mode(old)}\n")
    body = list(difflib.unified_diff(_lines(before), _lines(after), n=3))
    if body:
        header += [
            f"--- {DEV_NULL if before is None else 'a/' + path}\n",
            f"+++ {DEV_NULL if after is None else 'b/' + path}\n",
        ]
    return "".join(header) + "".join(_mark_missing_newline(line) for line in body[2:])


def _read_text(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DiffError(f"{path} is not UTF-8 text; recipe files must be text") from None


def _lines(text: str | None) -> list[str]:
    """Lines keeping their '\\n'; split on '\\n' only (str.splitlines also splits on form feeds)."""
    if not text:
        return []
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _mark_missing_newline(line: str) -> str:
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


def _mode(path: Path) -> str:
    return "100755" if os.access(path, os.X_OK) else "100644"


def snapshot(task: Task, workdir: Path, dest: Path) -> list[str]:
    """Copy the working copy's editable files into dest (created, must not exist); return them."""
    files = editable_in(task, workdir)
    Path(dest).mkdir(parents=True)
    for path in files:
        (Path(dest) / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(workdir) / path, Path(dest) / path)
    return files


def restore(task: Task, source: Path, workdir: Path) -> list[str]:
    """Make the working copy's editable files exactly those of a snapshot; return them.

    Editable files the snapshot lacks are deleted, so a file a later trial added does not linger.
    """
    kept = editable_in(task, source)
    for path in set(editable_in(task, workdir)) - set(kept):
        (Path(workdir) / path).unlink()
    for path in kept:
        target = Path(workdir) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()  # copying onto a symlink would write through it
        shutil.copy2(Path(source) / path, target)
    return kept
