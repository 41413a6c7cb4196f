"""A task for the experiment when the user gives none: a recipe written by the coding model,
beside a data split and an evaluator written by code, validated once in the sandbox, then frozen.

Why the model writes only the recipe: the evaluator owns the score, so the code under test must
not write it. The model picks a dataset bundled with scikit-learn (no download, so runs stay
offline) and one of the metrics code knows how to compute for it; code writes the frozen
`data.py` split, the frozen `evaluate.py` (which recomputes the split itself, as the example
tasks do) and `task.toml`. The recipe must run and pass the evaluator's gate in the sandbox
before the experiment starts; it gets one repair, and otherwise the run stops with a clear
message asking for `--task DIR`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from textwrap import dedent
from typing import Annotated, Literal

import tomli_w
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from nanoresearch.compute.sandbox import run_sandboxed
from nanoresearch.errors import EndpointUnavailableError, LLMError, UserError
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.context import RunContext
from nanoresearch.trials.evaluate import Outcome, base_env, run_evaluator
from nanoresearch.trials.task import Task, load_task

TASK_FOLDER = "task"
RECIPE = "train.py"
PREDICTIONS = "predictions.json"
RECIPE_TIME_S = 120
MAX_RECIPE_CHARS = 6000


class Dataset(BaseModel):
    loader: str  # a sklearn.datasets function that reads bundled files
    kind: Literal["classification", "regression"]
    about: str


DATASETS: dict[str, Dataset] = {
    "digits": Dataset(loader="load_digits", kind="classification",
                      about="1797 8x8 images of handwritten digits, 64 pixel features (0..16), 10 classes"),
    "breast_cancer": Dataset(loader="load_breast_cancer", kind="classification",
                             about="569 tumours, 30 real-valued features, benign or malignant"),
    "wine": Dataset(loader="load_wine", kind="classification", about="178 wines, 13 chemical features, 3 cultivars"),
    "iris": Dataset(loader="load_iris", kind="classification", about="150 flowers, 4 measurements, 3 species"),
    "diabetes": Dataset(loader="load_diabetes", kind="regression",
                        about="442 patients, 10 standardised features, disease progression after one year"),
}
# metric -> (direction, sklearn expression on y_true, y_pred)
METRICS: dict[str, dict[str, tuple[str, str]]] = {
    "classification": {
        "accuracy": ("maximize", "accuracy_score(truth, predicted)"),
        "macro_f1": ("maximize", "f1_score(truth, predicted, average='macro')"),
    },
    "regression": {
        "r2": ("maximize", "r2_score(truth, predicted)"),
        "mae": ("minimize", "mean_absolute_error(truth, predicted)"),
    },
}
ALL_METRICS = sorted({name for metrics in METRICS.values() for name in metrics})

# A knob is the recipe's own variable: never one the sandbox or the run matrix sets.
RESERVED_ENV = re.compile(r"^(SEED|PATH|HOME|LANG|TMPDIR|PYTHON\w*|NANORESEARCH\w*|OMP\w*|CUDA\w*)$")
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,23}$")]


class Knob(BaseModel):
    env: EnvName
    meaning: Annotated[str, StringConstraints(min_length=3, max_length=160)]
    default: float = Field(gt=0, le=100000)
    lowest: float = Field(gt=0, le=100000)


class TaskDraft(BaseModel):
    """What the coding model writes."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{2,39}$")]
    description: Annotated[str, StringConstraints(min_length=10, max_length=300)]
    dataset: Literal[tuple(DATASETS)]  # type: ignore[valid-type]
    metric: Literal[tuple(ALL_METRICS)]  # type: ignore[valid-type]
    knob: Knob
    recipe: Annotated[str, StringConstraints(min_length=40, max_length=MAX_RECIPE_CHARS)]


def generate_task(ctx: RunContext, plan: StagePlan, hypothesis: str) -> Task:
    """Write, validate and freeze a task under the workspace's task/ folder; return it loaded."""
    folder = ctx.workspace / TASK_FOLDER
    prompt = recipe_prompt(ctx, plan, hypothesis)
    draft = draft_task(ctx, prompt)
    problem = write_and_check(folder, draft)
    if problem:
        ctx.log("task_repair", problem=problem)
        draft = draft_task(ctx, f"{prompt}\n\nYour previous recipe failed: {problem}\nFix it.")
        problem = write_and_check(folder, draft)
    if problem:
        raise UserError(
            f"the coding model could not write a working experiment for this goal: {problem}",
            hint=f"give the run a task folder with `--task DIR` (see examples/tasks/); the failed attempt is in {folder}",
        )
    return load_task(folder)


def draft_task(ctx: RunContext, prompt: str) -> TaskDraft:
    try:
        return TaskDraft.model_validate(ctx.llm.complete(prompt, stage="coding", schema=TaskDraft, max_tokens=1500).parsed)
    except EndpointUnavailableError:
        raise
    except (LLMError, ValidationError) as exc:
        raise UserError(
            f"the coding model could not draft an experiment task: {getattr(exc, 'message', exc)}",
            hint="give the run a task folder with `--task DIR` (see examples/tasks/), or use a stronger coding model",
        ) from None


def recipe_prompt(ctx: RunContext, plan: StagePlan, hypothesis: str) -> str:
    datasets = [f"- {name} ({d.kind}): {d.about}" for name, d in DATASETS.items()]
    metrics = [f"- {kind}: {', '.join(names)}" for kind, names in METRICS.items()]
    return "\n".join([
        f"Research goal: {ctx.run.goal}",
        f"Hypothesis to test: {hypothesis}",
        f"Plan:\n{plan.text()}",
        "",
        "Design a small, fast experiment on one dataset bundled with scikit-learn (no downloads):",
        *datasets,
        "Metrics (pick one that fits the dataset's kind):",
        *metrics,
        "",
        f"Write the starting recipe, {RECIPE}: a plain baseline that the trial loop will later improve.",
        "- `from data import train_split, heldout_inputs`: train_split() returns (features, targets) as numpy "
        "arrays; heldout_inputs() returns the features to predict.",
        "- Read the random seed from the SEED environment variable, and one numeric knob (an environment "
        "variable in capitals, such as a number of iterations or trees) that makes the run cheaper when "
        'lowered: `int(float(os.environ.get("NAME", "default")))`.',
        f'- Write {PREDICTIONS} as {{"predictions": [...]}}, one prediction per held-out row, in order.',
        "- Finish within a minute on one CPU core; use only numpy and scikit-learn.",
    ])


def write_and_check(folder: Path, draft: TaskDraft) -> str:
    """Write the task folder; return what is wrong with it ('' when the recipe runs and scores)."""
    write_task(folder, draft)
    if RESERVED_ENV.match(draft.knob.env):
        return f"the knob {draft.knob.env} is a reserved variable; name the recipe's own setting"
    if not reads_env(draft.recipe, draft.knob.env):
        return f"{RECIPE} never reads its knob {draft.knob.env} from the environment"
    if "sklearn.datasets" in draft.recipe or DATASETS[draft.dataset].loader in draft.recipe:
        return f"{RECIPE} loads the dataset itself; it may only read data through data.py (the held-out labels stay hidden)"
    try:
        task = load_task(folder)
    except UserError as exc:
        return exc.message
    outcome = try_recipe(task)
    return f"{outcome.failure}: {outcome.detail}" if outcome.failure else ""


def reads_env(source: str, name: str) -> bool:
    """Whether the recipe looks the variable up: os.environ[...], os.environ.get(...) or os.getenv(...)."""
    return re.search(rf"""(environ(\.get)?|getenv)\s*[\[(]\s*["']{name}["']""", source) is not None


def write_task(folder: Path, draft: TaskDraft) -> None:
    dataset = DATASETS[draft.dataset]
    metric = draft.metric if draft.metric in METRICS[dataset.kind] else next(iter(METRICS[dataset.kind]))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "data.py").write_text(data_module(dataset), encoding="utf-8")
    (folder / "evaluate.py").write_text(evaluator_module(dataset), encoding="utf-8")
    (folder / RECIPE).write_text(draft.recipe.rstrip() + "\n", encoding="utf-8")
    (folder / "task.toml").write_text(tomli_w.dumps(manifest(draft, dataset, metric)), encoding="utf-8")


def manifest(draft: TaskDraft, dataset: Dataset, metric: str) -> dict:
    direction = METRICS[dataset.kind][metric][0]
    lowest = min(draft.knob.lowest, draft.knob.default)
    return {
        "name": draft.name,
        "description": f"{draft.description} (generated from the blueprint; dataset: sklearn {dataset.loader})",
        "command": f"python {RECIPE}",
        "seed_env": "SEED",
        "outputs": [PREDICTIONS],  # kept after scoring, for audit
        "score": {"metric": metric, "direction": direction},
        "evaluator": {"command": "python evaluate.py", "files": ["evaluate.py"], "time_s": 60},
        "legality": {"editable": [RECIPE], "max_file_kb": 64, "gates": [gate(dataset)]},
        "resources": {"cpus": 1, "gpus": 0, "mem_gb": 2, "time_s": RECIPE_TIME_S},
        "knobs": {draft.knob.env: {"default": draft.knob.default, "min": lowest}},
    }


def gate(dataset: Dataset) -> dict:
    """A broken recipe must not count: beat always guessing the commonest class, or the mean."""
    if dataset.kind == "regression":
        return {"metric": "r2", "min": 0.0}
    return {"metric": "accuracy", "min": round(majority_share(dataset) + 0.05, 3)}


def majority_share(dataset: Dataset) -> float:
    import sklearn.datasets

    _, targets = getattr(sklearn.datasets, dataset.loader)(return_X_y=True)
    return Counter(targets.tolist()).most_common(1)[0][1] / len(targets)


def try_recipe(task: Task) -> Outcome:
    """Run the recipe once in the sandbox on a scratch copy, then score it with the evaluator."""
    knobs = {name: f"{knob.default:g}" for name, knob in task.knobs.items()}
    with tempfile.TemporaryDirectory(prefix="nanoresearch-taskgen-") as scratch:
        workdir = Path(shutil.copytree(task.folder, Path(scratch) / "trial"))
        env = base_env(home=workdir) | knobs | {"SEED": "0"}
        try:
            code, stdout, stderr = run_sandboxed(task.command, workdir, env, task.resources.time_s)
        except TimeoutError:
            return Outcome(failure="timeout", detail=f"{RECIPE} ran past {task.resources.time_s}s")
        if code != 0:
            # the scratch path is random: keep it out of the repair prompt, which a resume must replay
            tail = (stderr or stdout)[-600:].replace(str(workdir), "<trial>")
            return Outcome(failure="crash", detail=f"{RECIPE} exited with code {code}: {tail}")
        outcome = run_evaluator(task, workdir)
        return outcome.model_copy(update={"detail": outcome.detail.replace(str(workdir), "<trial>")})


def data_module(dataset: Dataset) -> str:
    stratify = "targets" if dataset.kind == "classification" else "None"
    return dedent(f'''\
        """The fixed split of scikit-learn's bundled {dataset.loader} data (frozen: trials may not edit it)."""

        from sklearn.datasets import {dataset.loader}
        from sklearn.model_selection import train_test_split


        def _split():
            features, targets = {dataset.loader}(return_X_y=True)
            return train_test_split(features, targets, test_size=0.25, random_state=0, stratify={stratify})


        def train_split():
            """(features, targets) the recipe may train on."""
            x_train, _, y_train, _ = _split()
            return x_train, y_train


        def heldout_inputs():
            """The features to predict, in the order predictions.json must follow."""
            return _split()[1]
        ''')


def evaluator_module(dataset: Dataset) -> str:
    metrics = METRICS[dataset.kind]
    imports = ", ".join(expression.split("(")[0] for _, expression in metrics.values())
    scores = ", ".join(f'"{name}": {expression}' for name, (_, expression) in metrics.items())
    cast = "int" if dataset.kind == "classification" else "float"
    return data_module(dataset).split("\n\n\ndef train_split")[0].replace(
        "(frozen: trials may not edit it)", "recomputed by the frozen evaluator: the trial's data.py is not trusted"
    ) + dedent(f'''\


        import json
        import os
        import sys
        from pathlib import Path

        from sklearn.metrics import {imports}


        def fail(message):
            print(f"evaluate.py: {{message}}", file=sys.stderr)
            sys.exit(1)


        def main():
            truth = _split()[3]
            path = Path(os.environ.get("NANORESEARCH_TRIAL_DIR", ".")) / "{PREDICTIONS}"
            try:
                predicted = json.loads(path.read_text(encoding="utf-8"))["predictions"]
                predicted = [{cast}(value) for value in predicted]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                fail(f'{{path}} must hold {{{{"predictions": [...]}}}} with numbers: {{exc!r}}')
            if len(predicted) != len(truth):
                fail(f"expected {{len(truth)}} predictions, one per held-out row, got {{len(predicted)}}")
            print(json.dumps({{{scores}, "n": len(truth)}}))


        if __name__ == "__main__":
            main()
        ''')
