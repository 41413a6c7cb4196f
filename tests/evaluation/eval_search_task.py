"""A task for `eval search` tests: seeded, noisy, with a random-search range, run in well under a second.

The recipe's score is VALUE plus a little noise fixed by its seed; the evaluator also reports the
seed and the STEP the recipe ran with, so a test can see what each trial was given.
"""

import json
import textwrap
from pathlib import Path

RECIPE = textwrap.dedent(
    """\
    import json, os
    VALUE = 1.0
    SEED = int(os.environ.get("SEED", "0"))
    STEP = float(os.environ.get("STEP", "0"))
    NOISE = (SEED * 7919 % 10) / 100
    json.dump({"value": VALUE + STEP + NOISE, "seed": SEED, "step": STEP}, open("out.json", "w"))
    """
)
EVALUATOR = textwrap.dedent(
    """\
    import json, os
    found = json.load(open(os.path.join(os.environ.get("NANORESEARCH_TRIAL_DIR", "."), "out.json")))
    print(json.dumps({"score": float(found["value"]), "seed": found["seed"], "step": found["step"]}))
    """
)
MANIFEST = textwrap.dedent(
    """\
    name = "noisy"
    description = "Make VALUE as large as possible."
    command = "python train.py"
    seed_env = "SEED"
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
    time_s = 10
    [search.STEP]
    min = 0
    max = 4
    """
)


def write_noisy_task(folder: Path, manifest: str = MANIFEST) -> Path:
    folder.mkdir()
    (folder / "task.toml").write_text(manifest)
    (folder / "train.py").write_text(RECIPE)
    (folder / "evaluate.py").write_text(EVALUATOR)
    return folder


def proposal(hypothesis: str, find: str, replace: str) -> str:
    return json.dumps({"hypothesis": hypothesis, "edits": [{"find": find, "replace": replace}]})
