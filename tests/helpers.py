"""Small tools shared by tests: run the CLI in-process, a scripted provider."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from nanoresearch.cli import main
from nanoresearch.llm.provider import LLMRequest, LLMResponse
from nanoresearch.store import Store

# The recordings under tests/pipeline/recorded were made before trial proposers were shown the task's
# declared [search] ranges; replaying them asks the same prompts, so that is turned off.
AS_RECORDED = {"NANORESEARCH_PIPELINE__SHOW_SEARCH_SPACE": "false"}


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> CliResult:
    monkeypatch.setattr(sys, "argv", ["nanoresearch", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


class ScriptedProvider:
    """Answers from a queue: each item is reply text or an exception to raise."""

    def __init__(self, *replies: str | Exception, name: str = "scripted") -> None:
        self.name = name
        self.queue = list(replies)
        self.history: list[LLMRequest] = []

    def enqueue(self, *replies: str | Exception) -> None:
        self.queue.extend(replies)

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.history.append(request)
        if not self.queue:
            raise AssertionError("ScriptedProvider ran out of replies")
        reply = self.queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return LLMResponse(text=reply, finish_reason="stop", prompt_tokens=10, completion_tokens=len(reply.split()))


def wait_for_running_trial(db: Path, process: subprocess.Popen, proposer: str, user: str = "alice",
                           timeout_s: float = 300) -> tuple[str, int]:
    """(run id, trial id) of the first trial of `proposer` whose job is running, once the process has one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the process ended before its trial could be caught running"
        if db.exists():
            with Store(db) as store:
                for run in store.list_runs(store.ensure_user(user)):
                    running = [t for t in store.trials(run.id) if t.status == "running" and t.proposer == proposer]
                    if running:
                        return run.id, running[0].id
        time.sleep(0.05)
    raise AssertionError(f"no {proposer} trial started running in time")
