"""`nanoresearch watch` follows a run from its log and the store, in a pipe: a finished run is shown as the
run printed it, a running one line by line as it goes, until it ends; `status` shows the live stage with
its clock and its last step."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time

import pytest
from recorded_demo import replay_demo

from helpers import run_cli
from nanoresearch.compute.budget import spent
from nanoresearch.llm.client import LLM
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.progress import stage_cost
from nanoresearch.runs import driving, lifecycle, new_run
from nanoresearch.store.budget import parse_budget
from nanoresearch.store.models import RunOptions

WAIT_S = 180  # the watcher is a fresh process that imports the pipeline: slow on a loaded machine


@pytest.fixture(autouse=True)
def wide_console(monkeypatch) -> None:
    from nanoresearch.cli.common import out

    monkeypatch.setattr(out, "width", 200)  # the status table must not wrap its cells for the assertions


@pytest.mark.slow
def test_watch_shows_a_finished_recorded_run_as_it_printed_its_stages(capsys, monkeypatch) -> None:
    _, ran = replay_demo(capsys, monkeypatch)
    run_id = re.search(r"run (run-\S+) for alice", ran.err)[1]
    watched = run_cli(capsys, monkeypatch, "watch", run_id)
    assert watched.code == 0, watched.err

    def stage_lines(text: str) -> list[str]:  # a stage's rule (its name), its plan and its done line
        return [line.strip("─ ") for line in text.splitlines() if line.startswith(("  done (", "  plan: ", "─"))]

    assert stage_lines(watched.out) == stage_lines(ran.err)  # every stage, its plan and its done line, in order
    assert re.search(r"trial 1 \(baseline\): [\d.]+ kept", watched.out)
    assert watched.out.rstrip().endswith(f"run {run_id} is done")


class Watcher:
    """`nanoresearch watch RUN` in a process of its own, its stdout a pipe read line by line."""

    def __init__(self, run_id: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from nanoresearch.cli import main; main()", "watch", run_id],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None or not self.lines.empty(), f"watch ended early: {self.seen}"
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"watch printed no line matching {pattern!r}: {self.seen}")


def test_watch_follows_a_running_run_in_a_pipe_until_it_ends(capsys, monkeypatch, store, settings) -> None:
    user_id = store.ensure_user(settings.user)
    run = new_run(store, settings, user_id, "digits", "improve digit classification accuracy",
                  RunOptions(budget=parse_budget("trials=4,tokens=100k")), kind="research")
    ctx = RunContext(settings, store, user_id, run, LLM(settings, store, user_id, run_id=run.id), run.options)
    with driving(run):  # this process drives the run, as `nanoresearch run` would: watch sees it running
        with lifecycle(store, run.id):
            ctx.log("run_start", goal=run.goal)
            before = spent(store, user_id, run.id)
            store.save_step(run.id, "ideation", "stage", "running", {})
            ctx.log("stage_plan", stage="ideation", plan_id=1, plan={"objectives": ["find papers on digit recognition"]})
            watcher = Watcher(run.id)
            watcher.wait_for(r"^  plan: find papers on digit recognition$")

            ctx.mark("ideation", "literature", {"papers": 8})
            status = run_cli(capsys, monkeypatch, "status", run.id)
            assert status.code == 0, status.err
            assert re.search(r"ideation +│ running \d+\.\d s +│ last step: literature, \d+\.\d s ago", status.out), status.out
            assert re.search(r"spent: 0 trials · 0 tokens · \$0\.0000 .* running; left: trials 4, tokens 100,000", status.out)

            store.charge(user_id, run.id, "tokens", 1234, "llm_call:1")
            cost = stage_cost(store, user_id, run.id, before, 3.25)
            ctx.mark("ideation", "stage", {"summary": "8 papers, 2 hypotheses"})
            ctx.log("stage_done", stage="ideation", summary="8 papers, 2 hypotheses", **cost.model_dump())
            watcher.wait_for(r"^  done \(3\.2 s · 1,234 tokens · \$0\.0000 · left: trials 4, tokens 98,766\): 8 papers")
            assert watcher.process.poll() is None  # the run goes on: so does watch

            between = run_cli(capsys, monkeypatch, "status", run.id)
            assert "now: between stages, after ideation (feedback, memory); last step: stage" in between.out
            ctx.log("run_done")
        watcher.wait_for(rf"^run {run.id} is done$")
    assert watcher.process.wait(timeout=WAIT_S) == 0
    assert "run done" in watcher.seen
