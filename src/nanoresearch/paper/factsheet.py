"""The fact sheet: everything the paper may state, built by code from the task folder, the trials,
results.json and the verified claims of the retrieved papers.

The writer LLM works from `FactSheet.text()`, and `fact_checker` removes prose that names a dataset,
a model family or a size the sheet does not hold. What the task is (its data, its model, its split
sizes) is read from the task's own files: the description in task.toml, the README, the module
docstrings of its Python files, the classes and data loaders its code calls, and the `n` its
evaluator reports. Nothing on the sheet comes from a model's answer except the trial hypotheses,
which are labelled as what each trial set out to do, next to the lines it actually changed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pydantic import BaseModel

from nanoresearch.paper.numbers import facts_text, number_macros
from nanoresearch.paper.results import Results

README_CHARS = 3000  # enough for a task's README; the sheet is part of every section prompt
DIFF_LINES = 12  # changed lines shown per trial
# Libraries whose classes are models (or layers) when a recipe builds them.
_MODEL_MODULES = ("sklearn", "torch", "tensorflow", "keras", "xgboost", "lightgbm", "catboost", "transformers", "jax",
                  "flax", "timm")  # fmt: skip
_DATA_MODULES = ("sklearn.datasets", "torchvision.datasets", "tensorflow.keras.datasets", "keras.datasets", "datasets",
                 "tensorflow_datasets")  # fmt: skip
# "1,437 training images", "360 held out", "360 images are held out": a count and what it counts.
_SIZE = re.compile(
    r"(?<![\w.,])(?P<count>\d{1,3}(?:,\d{3})+|\d+)\s+(?P<what>held[ -]out|(?:[a-z-]+\s+){0,2}"
    r"(?:images?|examples?|samples?|instances?|rows|records|documents|sentences|classes|features|pixels))\b",
    re.I,
)


class Size(BaseModel):
    count: int
    what: str  # "training images", "held-out examples scored by the evaluator"
    source: str  # the file it was read from, or "evaluator"


class KnobFact(BaseModel):
    name: str
    default: float
    min: float


class TaskFacts(BaseModel):
    """The task as the pipeline loaded it (trials.task.Task), in the fields the sheet needs."""

    name: str
    description: str = ""
    metric: str
    direction: str
    editable: list[str]
    knobs: list[KnobFact] = []
    folder: Path | None = None


class TrialFact(BaseModel):
    id: int
    proposer: str
    hypothesis: str  # what the trial set out to do (the proposer's words)
    changed: list[str] = []  # the diff's changed lines: what it actually did
    score: float | None = None
    kept: bool = False
    failure: str | None = None


class ClaimFact(BaseModel):
    """A claim of a retrieved paper whose quote was found in that paper's text."""

    paper: str
    claim: str
    quote: str = ""


class FactSheet(BaseModel):
    task: TaskFacts
    models: list[str] = []  # classes the task's code builds: "LogisticRegression (sklearn.linear_model)"
    datasets: list[str] = []  # data loaders the task's code calls: "load_digits (sklearn.datasets)"
    sizes: list[Size] = []
    documentation: str = ""  # README and module docstrings of the task folder
    trials: list[TrialFact] = []
    results: str = ""  # the \Res... macros and what each holds (numbers.facts_text)
    success: bool = False
    notes: list[str] = []
    claims: list[ClaimFact] = []

    def size_numbers(self) -> set[str]:
        """Counts prose may type: the sheet's sizes and the knobs' values (task facts, not measurements)."""
        return {str(size.count) for size in self.sizes} | {v for values in self.knob_values().values() for v in values}

    def setting_texts(self) -> set[str]:
        """The lines the trials changed: the number guard lets prose type their values ("max_iter=100")."""
        return {line for trial in self.trials for line in trial.changed}

    def knob_values(self) -> dict[str, set[str]]:
        """Knob name -> its default and lowest value: "10 iterations" is a fact of MAX_ITER, not of the data."""
        return {knob.name: {f"{knob.default:g}", f"{knob.min:g}"} for knob in self.task.knobs}

    def text(self, documentation_chars: int = README_CHARS, model_words: bool = True) -> str:
        """The sheet as the writer LLM sees it (the changed lines of the kept trials only, to keep the prompt
        short). Without `model_words` it is what the fact checker reads: every trial's changed lines, and
        nothing models wrote (the trials' hypotheses, the papers' claims): the checker counts a claim only
        for a sentence citing its paper, and a hypothesis naming a CNN is no evidence that anything trained one."""
        task = self.task
        knobs = "; ".join(f"{k.name} (default {k.default:g}, lowest {k.min:g})" for k in task.knobs) or "none"
        lines = [
            f"Task: {task.name}. {task.description}",
            f"Metric: {task.metric} ({'higher' if task.direction == 'maximize' else 'lower'} is better).",
            f"Files a trial may change: {', '.join(task.editable)}. Knobs: {knobs}.",
            f"Classes the task's code builds (models, layers, optimisers): {', '.join(self.models) or 'none found'}.",
            f"Data loaders the task calls: {', '.join(self.datasets) or 'none found'}.",
            "Sizes: " + ("; ".join(f"{s.count} {s.what} ({s.source})" for s in self.sizes) or "none stated") + ".",
            f"Task documentation:\n<data>{self.documentation[:documentation_chars]}</data>",
            "Trials (what each set out to do, the lines it changed, its score):",
            *[_trial_line(trial, model_words) for trial in self.trials],
            f"Outcome: {'a kept change beat the baseline' if self.success else 'no kept change beat the baseline'}.",
            f"Results:\n{self.results}",
            f"Caveats: {'; '.join(self.notes) or 'none'}",
        ]
        if model_words:
            lines.append("Verified claims of the papers (quoted from each paper):")
            lines += [f"- [{c.paper}] {c.claim}" + (f' (quote: "{c.quote}")' if c.quote else "") for c in self.claims]
        return "\n".join(lines)


def _trial_line(trial: TrialFact, hypothesis: bool) -> str:
    outcome = (
        f"FAILED ({trial.failure})"
        if trial.failure
        else (
            "no score"
            if trial.score is None
            else f"score {trial.score:.4g}" + (", kept" if trial.kept else ", reverted")
        )
    )
    changed = f"; changed: {' | '.join(trial.changed)}" if trial.changed and (trial.kept or not hypothesis) else ""
    aim = " ".join(trial.hypothesis.split())[:160] if hypothesis else "(hypothesis not shown)"
    return f"- trial {trial.id} ({trial.proposer}): {aim}{changed}; {outcome}"


def changed_lines(diff: str, limit: int = DIFF_LINES) -> list[str]:
    """The added and removed lines of a unified diff, without the file headers."""
    lines = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return [" ".join(line.split())[:160] for line in lines if line[1:].strip()][:limit]


# ---------------------------------------------------------------- the task folder


def task_python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.py") if path.is_file())


def docstrings(path: Path) -> str:
    tree = _parse(path)
    return (ast.get_docstring(tree) or "") if tree else ""


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return None  # a recipe a trial broke tells us nothing; the others still do


def imported_names(tree: ast.Module) -> dict[str, str]:
    """Name -> the dotted path it stands for: `from torch import nn` gives nn -> torch.nn."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names})
        elif isinstance(node, ast.Import):
            names.update({alias.asname or alias.name: alias.name for alias in node.names})
    return names


def _called_name(func: ast.expr, imported: dict[str, str]) -> tuple[str, str] | None:
    """(name, module) of a call to an imported name: `SVC(...)`, `nn.Linear(...)`, `torch.optim.Adam(...)`."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or func.id not in imported:
        return None
    module, _, name = ".".join([imported[func.id], *parts]).rpartition(".")
    return (name, module) if module else None


def _is_model_class(name: str, module: str) -> bool:
    return module.split(".")[0] in _MODEL_MODULES and name[:1].isupper()


def called_library_names(path: Path) -> tuple[list[str], list[str]]:
    """(models, data loaders) that the file's code calls or subclasses, each as "Name (module)"."""
    tree = _parse(path)
    if tree is None:
        return [], []
    imported = imported_names(tree)
    models: list[str] = []
    loaders: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):  # class TinyTransformer(nn.Module): a model defined in the recipe
            bases = [_called_name(base, imported) for base in node.bases]
            models += [f"{node.name} ({base[1]}.{base[0]})" for base in bases if base and _is_model_class(*base)]
            continue
        called = _called_name(node.func, imported) if isinstance(node, ast.Call) else None
        if called is None:
            continue
        name, module = called
        if module.startswith(_DATA_MODULES) or name.startswith(("load_", "fetch_")):
            loaders.append(f"{name} ({module})")
        elif _is_model_class(name, module):
            models.append(f"{name} ({module})")
    return models, loaders


def stated_sizes(text: str, source: str) -> list[Size]:
    return [Size(count=int(m["count"].replace(",", "")), what=" ".join(m["what"].split()), source=source)
            for m in _SIZE.finditer(text)]  # fmt: skip


def evaluator_sizes(results: Results) -> list[Size]:
    """The `n` the evaluator reported with its score: how many examples each score was computed on."""
    counts = {int(value) for condition in results.conditions for value in condition.metrics.get("n", [])}
    return [Size(count=count, what="examples scored by the evaluator", source="evaluator") for count in sorted(counts)]


def read_task_folder(folder: Path) -> tuple[list[str], list[str], list[Size], str]:
    """(models, data loaders, sizes, documentation) read from the task folder's README and Python files."""
    models: list[str] = []
    loaders: list[str] = []
    sizes: list[Size] = []
    documents: list[str] = []
    for path in task_python_files(folder):
        found_models, found_loaders = called_library_names(path)
        models += found_models
        loaders += found_loaders
        docstring = docstrings(path)
        if docstring:
            documents.append(f"{path.name}: {docstring}")
            sizes += stated_sizes(docstring, path.name)
    readme = folder / "README.md"
    if readme.is_file():  # after the docstrings, which are short: a prompt may show only the start
        text = readme.read_text(encoding="utf-8", errors="replace")[:README_CHARS]
        documents.append(text)
        sizes += stated_sizes(text, "README.md")
    return _unique(models), _unique(loaders), sizes, "\n\n".join(documents)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _unique_sizes(sizes: list[Size]) -> list[Size]:
    """One size per count, the first one given: callers put the evaluator's own count first."""
    seen: dict[int, Size] = {}
    for size in sizes:
        seen.setdefault(size.count, size)
    return list(seen.values())


def build_fact_sheet(task: TaskFacts, results: Results, trials: list[TrialFact], claims: list[ClaimFact]) -> FactSheet:
    models, loaders, sizes, documentation = read_task_folder(task.folder) if task.folder else ([], [], [], "")
    sizes = stated_sizes(task.description, "task.toml") + sizes
    return FactSheet(
        task=task,
        models=models,
        datasets=loaders,
        sizes=_unique_sizes(evaluator_sizes(results) + sizes),
        documentation=documentation,
        trials=trials,
        results=facts_text(number_macros(results)),
        success=results.success,
        notes=results.notes,
        claims=claims,
    )
