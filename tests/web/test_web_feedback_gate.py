"""`run --feedback web`: at a stage end the run waits for the answer given on the dashboard page, which
posts through the same path as the `feedback` command; the run then goes on with it (a redirect runs the
stage again, re-planned; an approval moves on), and each answer is stored once, with the stage's plan."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from nanoresearch.compute.budget import ModelCallGate
from nanoresearch.config import load_settings
from nanoresearch.llm.client import LLM
from nanoresearch.pipeline.context import RunContext, RunOptions
from nanoresearch.pipeline.feedback import DashboardGate
from nanoresearch.pipeline.orchestrator import STAGES, run_stage
from nanoresearch.runs import new_run
from nanoresearch.store import Store
from pipeline.researcher import ResearcherProvider

REPO = Path(__file__).resolve().parents[2]
DIGITS, CORPUS = REPO / "examples" / "tasks" / "digits-classifier", REPO / "examples" / "corpus"
GOAL = "improve handwritten digit classification accuracy"
WAITING = "waiting for your answer on the ideation stage"


def wait_until(condition: Callable[[], bool], what: str, within_s: float = 120) -> None:
    """Wait for the run's thread to get somewhere (a bound on a hang, not a timing assertion)."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def post(client: TestClient, run_id: str, **fields: str):
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/runs/{run_id}").text).group(1)
    return client.post(f"/runs/{run_id}/feedback", data={"csrf": csrf, "stage": "ideation", **fields},
                       follow_redirects=False)


def test_a_run_waiting_at_a_stage_end_goes_on_with_the_answer_posted_on_the_page(home):
    settings = load_settings({"policy": {"when": "manual"}})  # the answers are the point here, not training
    with Store(settings.db_path) as store:
        user = store.ensure_user(settings.user)
        options = RunOptions(task=str(DIGITS), offline=True, corpus=str(CORPUS))
        run = new_run(store, settings, user, "digits", GOAL, options, kind="research")
        llm = LLM(settings, store, user, run_id=run.id, providers={"local": ResearcherProvider()},
                  budget=ModelCallGate(store, user, run.id))
        ctx = RunContext(settings, store, user, run, llm, options, task=None)
        said: list[str] = []
        gate = DashboardGate(store, user, run.id, f"http://127.0.0.1:8765/runs/{run.id}", say=said.append, poll_s=0.05)
        failures: list[BaseException] = []

        def drive() -> None:
            try:
                run_stage(ctx, STAGES[0], gate)
            except BaseException as exc:  # shown by the assertion below, not lost in the thread
                failures.append(exc)

        from nanoresearch.web.app import create_app

        client = TestClient(create_app(settings), base_url="http://127.0.0.1")
        runner = threading.Thread(target=drive, daemon=True)
        runner.start()
        wait_until(lambda: sum(WAITING in line for line in said) == 1 or not runner.is_alive(), "the first stage end")
        assert runner.is_alive(), failures  # it waits for the page: nobody answered yet
        assert f"http://127.0.0.1:8765/runs/{run.id}#stage-ideation" in said[-1]

        assert post(client, run.id, action="redirect", text="search for more recent papers").status_code == 303
        wait_until(lambda: sum(WAITING in line for line in said) == 2 or not runner.is_alive(), "the stage run again")
        assert runner.is_alive(), failures

        assert post(client, run.id, action="approve").status_code == 303
        runner.join(timeout=120)
        assert not runner.is_alive() and not failures, failures
        stored = [(f.stage, f.action, f.text) for f in store.feedback(user, run.id)]
        assert stored == [("ideation", "redirect", "search for more recent papers"), ("ideation", "approve", "")]
        assert ctx.done("ideation", "stage") is not None
