"""The dashboard tests' tiny world: alice's run with steps, a log, figures and trials (a baseline,
a kept one, a failed one), bob's run beside it. A uniquely named module, not conftest: several test
folders have a conftest.py, and `from conftest import` would find whichever was loaded last."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nanoresearch.config import Settings
from nanoresearch.runs import new_run
from nanoresearch.store import Store
from nanoresearch.store.models import Run, Trial

SCRIPT = "<script>window.pwned = 1</script>"
DIFF = "--- a/train.py\n+++ b/train.py\n@@ -1,2 +1,2 @@\n-lr = 0.1\n+lr = 0.05\n keep = True\n"


class World(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Store
    settings: Settings
    run: Run
    other: Run  # bob's
    baseline: Trial
    kept: Trial
    failed: Trial
    other_trial: Trial


def secret_from_run(world: World) -> str:
    """bob's secret file as a path relative to alice's workspace: what a traversal probe asks for."""
    return os.path.relpath(Path(world.other.workspace) / "secret.txt", world.run.workspace)


def add_trial(store: Store, run: Run, **fields: object) -> Trial:
    base = {"run_id": run.id, "proposer": "llm", "command": "python train.py", "executor": "local", "status": "done"}
    return store.add_trial(Trial(**{**base, **fields}))


def build_world(settings: Settings, store: Store) -> World:
    alice = store.ensure_user(settings.user)
    run = new_run(store, settings, alice, "demo", f"beat the baseline {SCRIPT}", {"direction": "maximize"})
    store.set_run_status(run.id, "running")
    store.save_step(run.id, "ideation", "pool", "done")
    store.save_step(run.id, "experiment", "trials", "running")
    store.charge(alice, run.id, "tokens", 1234, "test")
    store.charge(alice, run.id, "usd", 0.25, "test")
    workspace = Path(run.workspace)
    (workspace / "log.jsonl").write_text('{"event": "start"}\n{"event": "note", "text": "' + SCRIPT + '"}\n')
    (workspace / "figures").mkdir()
    (workspace / "figures" / "curve.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    (workspace / "paper.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    baseline = add_trial(store, run, proposer="baseline", hypothesis="the recipe as given", score=0.5, kept=True)
    kept = add_trial(store, run, parent_id=baseline.id, hypothesis=f"halve the lr {SCRIPT}", diff=DIFF,
                     score=0.7, kept=True, metrics={"acc": 0.7}, resources={"cpus": 1},
                     logs_tail=f"epoch 1\n{SCRIPT}\n")
    failed = add_trial(store, run, parent_id=kept.id, status="failed", failure="oom", hypothesis="huge batch")

    settings_bob = settings.model_copy(update={"user": "bob"})
    bob = store.ensure_user("bob")
    other = new_run(store, settings_bob, bob, "secret", "bob's private goal", {})
    (Path(other.workspace) / "secret.txt").write_text("bob's secret")
    other_trial = add_trial(store, other, hypothesis="bob's idea")
    return World(store=store, settings=settings, run=run, other=other, baseline=baseline, kept=kept,
                 failed=failed, other_trial=other_trial)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


