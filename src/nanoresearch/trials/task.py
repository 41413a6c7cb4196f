"""A task: a folder with an editable recipe, a run command and an evaluator that owns the score.

Layout of a task folder:

    task.toml        what follows below
    <recipe files>   the files trials may edit (globs in legality.editable)
    <evaluator>      files listed in evaluator.files: read-only to trials, copied fresh per trial

task.toml:

    name = "digits-classifier"
    description = "..."
    command = "python train.py"            # the recipe, run in the trial's working copy
    seed_env = "SEED"                      # optional: env var the recipe seeds its randomness from
    outputs = ["predictions.json"]         # optional: globs of files the recipe writes that stay after
                                           # the trial; everything else it wrote is removed once scored
    expected_s = 5                         # optional: typical seconds of one trial at the knobs' defaults;
                                           # budgets plan the first trials from it (without it, the
                                           # baseline runs as given and its time is the estimate)

    [score]
    metric = "accuracy"                    # key in the evaluator's JSON output
    direction = "maximize"                 # or "minimize"

    [evaluator]
    command = "python evaluate.py"         # runs after the recipe; prints one JSON object of metrics
    files = ["evaluate.py"]

    [legality]
    editable = ["train.py"]                # globs; everything else in the folder is frozen
    max_file_kb = 256
    gates = [{ metric = "accuracy", min = 0.5 }]

    [resources]                            # what one trial asks for
    cpus = 1
    gpus = 0
    mem_gb = 2
    time_s = 300
    disk_mb = 1024                         # the whole working copy; past it the trial fails as "disk"

    [knobs.EPOCHS]                         # env vars the recipe reads; the budget may turn them down
    default = 20
    min = 2

    [specialists.optimizer]                # optional: proposers that own part of the recipe
    files = ["train.py"]
    focus = "learning rate, schedule, epochs"

    [search.LR]                            # optional: env vars the recipe reads and the range
    min = 0.001                            # `eval search`'s random search draws each from,
    max = 1.0                              # uniformly (log-uniformly with log = true;
    log = true                             # rounded with integer = true)
"""

from __future__ import annotations

import os
import shutil
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nanoresearch.compute.executor import Resources
from nanoresearch.errors import UserError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Score(Strict):
    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"

    def better(self, candidate: float, incumbent: float | None) -> bool:
        if incumbent is None:
            return True
        return candidate > incumbent if self.direction == "maximize" else candidate < incumbent


class Evaluator(Strict):
    command: str
    files: list[str] = Field(min_length=1)
    time_s: int = Field(120, gt=0)


class Gate(Strict):
    metric: str
    min: float | None = None
    max: float | None = None

    def passes(self, metrics: dict[str, float]) -> bool:
        value = metrics.get(self.metric)
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Legality(Strict):
    editable: list[str] = Field(min_length=1)
    max_file_kb: int = Field(256, gt=0)
    gates: list[Gate] = []


class Knob(Strict):
    """A number the recipe reads from an environment variable, which downscaling may lower."""

    default: float
    min: float
    cost_exponent: float = 1.0  # cost scales as (value / default) ** cost_exponent


class SearchRange(Strict):
    """An environment variable the recipe reads, and the range random search draws it from: the
    baseline that `eval search` runs against the trial loop needs a declared space to search."""

    min: float
    max: float
    log: bool = False  # draw log-uniformly: for scales such as learning rates
    integer: bool = False  # round the draw: for counts such as epochs or widths

    def text(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        scale = ", on a log scale" if self.log else ""
        return f"{kind} from {self.min:g} to {self.max:g}{scale}"

    def value_text(self, value: float) -> str:
        """A value held to the range, as the recipe reads it from the environment."""
        value = min(max(value, self.min), self.max)
        return str(round(value)) if self.integer else f"{value:.4g}"

    @model_validator(mode="after")
    def _is_a_range(self) -> SearchRange:
        if self.max <= self.min:
            raise ValueError(f"max ({self.max:g}) must be above min ({self.min:g})")
        if self.log and self.min <= 0:
            raise ValueError("a log range needs min > 0")
        return self


class SpecialistSpec(Strict):
    """A proposer that owns part of the recipe (e.g. the optimiser, the architecture)."""

    files: list[str] = Field(min_length=1)
    focus: str


class Task(Strict):
    name: str
    description: str = ""
    command: str
    seed_env: str | None = None  # the run matrix repeats conditions over seeds through this env var
    outputs: list[str] = []  # globs (relative to the working copy) of what the recipe writes and we keep
    expected_s: float | None = Field(None, gt=0)  # typical seconds of one trial at default knobs
    score: Score
    evaluator: Evaluator
    legality: Legality
    resources: Resources = Resources()
    knobs: dict[str, Knob] = {}
    specialists: dict[str, SpecialistSpec] = {}
    search: dict[str, SearchRange] = {}  # random search's space (`eval search`); empty: no random search
    folder: Path = Field(default=Path("."), exclude=True)

    def metric_text(self) -> str:
        return f"{self.score.metric} ({self.score.direction}) on {self.name}"

    def search_space_text(self) -> str:
        """The declared [search] ranges in words, for proposers: random search draws from them, so a
        model method that is never told them is compared with one hand tied."""
        if not self.search:
            return ""
        lines = [f"- {name}: {space.text()}" for name, space in self.search.items()]
        return ("Settings worth searching (the recipe reads each from the environment, with a default in its "
                "line): to try values, list them under `settings` (name and value) and code changes those "
                "defaults; edits are for any other change.\n" + "\n".join(lines))

    @model_validator(mode="after")
    def _evaluator_is_not_editable(self) -> Task:
        for name in self.evaluator.files:
            if any(fnmatch(name, pattern) for pattern in self.legality.editable):
                raise ValueError(f"evaluator file {name!r} matches an editable pattern; the evaluator must stay frozen")
        for name, specialist in self.specialists.items():
            for file in specialist.files:
                if not any(fnmatch(file, pattern) for pattern in self.legality.editable):
                    raise ValueError(f"specialist {name!r} owns {file!r}, which legality.editable does not allow")
        return self


def load_task(folder: Path | str) -> Task:
    """Read and check a task folder; every problem is a UserError naming the file and field."""
    folder = Path(folder).expanduser().resolve()
    manifest = folder / "task.toml"
    if folder.is_file():
        raise UserError(f"{folder} is a file, not a task folder",
                        hint="give the folder that holds task.toml, e.g. --task examples/tasks/digits-classifier "
                             "(docs/task-format.md describes a task folder)")
    if not folder.is_dir():
        raise UserError(f"task folder {folder} does not exist",
                        hint="give a folder that holds a task.toml, e.g. --task examples/tasks/digits-classifier")
    if not manifest.is_file():
        raise UserError(f"{folder} is not a task folder: task.toml is missing", hint="docs/task-format.md describes what a task folder holds")
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{manifest}: not valid TOML: {exc}") from None
    try:
        task = Task.model_validate({**data, "folder": folder})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{manifest}: `{where}`: {first['msg']}") from None
    missing = [name for name in task.evaluator.files if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{manifest}: evaluator file(s) not found in the task folder: {', '.join(missing)}")
    if not editable_files(task):
        raise UserError(f"{manifest}: no file in the folder matches legality.editable {task.legality.editable}")
    return task


def editable_files(task: Task) -> list[str]:
    """Recipe files (relative paths) that trials may change."""
    found = []
    for path in sorted(task.folder.rglob("*")):
        relative = path.relative_to(task.folder).as_posix()
        if path.is_file() and any(fnmatch(relative, pattern) for pattern in task.legality.editable):
            found.append(relative)
    return found


def clean_working_copy(task: Task, workdir: Path) -> list[str]:
    """Remove from a finished trial's working copy what the recipe wrote and the task does not
    declare (`outputs`): a trial's leftovers must not pile up on the disk. The task's own files
    stay. Links are removed, never followed. Returns the removed paths, relative."""
    frozen = {*task.evaluator.files, "task.toml"}  # never copied into a working copy
    kept_files = {p.relative_to(task.folder).as_posix() for p in task.folder.rglob("*") if p.is_file()} - frozen
    kept_folders = {parent.as_posix() for name in kept_files for parent in Path(name).parents} - {"."}
    removed: list[str] = []

    def declared(relative: str) -> bool:
        return relative in kept_files or any(fnmatch(relative, pattern) for pattern in task.outputs)

    def may_hold_outputs(relative: str) -> bool:
        depth = relative.count("/") + 1
        return any(fnmatch(relative, "/".join(pattern.split("/")[:depth])) for pattern in task.outputs
                   if pattern.count("/") >= depth)

    def clean(folder: Path, prefix: str) -> None:
        for entry in list(os.scandir(folder)):
            relative = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if relative in kept_folders or may_hold_outputs(relative) or declared(relative):
                    if not declared(relative):
                        clean(Path(entry.path), relative + "/")
                    continue
                shutil.rmtree(entry.path, ignore_errors=True)
            elif declared(relative):
                continue
            else:
                Path(entry.path).unlink(missing_ok=True)
            removed.append(relative)

    if workdir.is_dir():
        clean(workdir, "")
    return removed
