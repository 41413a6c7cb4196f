"""A task small enough to trigger every trial outcome in seconds, and a loop to run it."""

import json
import textwrap
from pathlib import Path

from nanoresearch.compute.executor import create_executor
from nanoresearch.config import load_settings
from nanoresearch.llm.client import LLM
from nanoresearch.trials.loop import LoopSettings, TrialLoop

TINY_RECIPE = textwrap.dedent(
    """\
    import json
    VALUE = 1
    print("working")
    json.dump({"value": VALUE}, open("out.json", "w"))
    """
)
TINY_EVALUATOR = textwrap.dedent(
    """\
    import json, os
    folder = os.environ.get("NANORESEARCH_TRIAL_DIR", ".")
    value = json.load(open(os.path.join(folder, "out.json")))["value"]
    print(json.dumps({"score": float(value)}))
    """
)
TINY_TASK = textwrap.dedent(
    """\
    name = "tiny"
    description = "Make VALUE as large as possible."
    command = "python train.py"
    [score]
    metric = "score"
    [evaluator]
    command = "python evaluate.py"
    files = ["evaluate.py"]
    [legality]
    editable = ["train.py"]
    gates = [{ metric = "score", min = 0 }]
    [resources]
    mem_gb = 1
    time_s = 4
    """
)


def proposal(hypothesis: str, *edits: tuple[str, str]) -> str:
    return json.dumps({"hypothesis": hypothesis, "edits": [{"find": f, "replace": r} for f, r in edits]})


def write_tiny_task(folder: Path) -> Path:
    folder.mkdir()
    (folder / "task.toml").write_text(TINY_TASK)
    (folder / "train.py").write_text(TINY_RECIPE)
    (folder / "evaluate.py").write_text(TINY_EVALUATOR)
    return folder


def make_loop(store, task, provider, budget, tmp_path, executor="local", reuse_run=False, **loop_settings):
    settings = load_settings({"llm": {"replay": "off", "backoff_initial_s": 0}})
    user = store.ensure_user("alice")
    run_id = f"run-{task.name}"
    if not reuse_run:
        store.create_run(run_id, store.ensure_project(user, task.name), "optimise", str(tmp_path / "ws"),
                         kind="trials")
        store.set_run_status(run_id, "running")  # as when a command drives it: the wall budget's clock runs
    llm = LLM(settings, store, user, run_id=run_id, providers={"local": provider})
    return TrialLoop(task, store, llm, create_executor(executor, settings), run_id, user, budget,
                     tmp_path / "ws", LoopSettings(**loop_settings))
