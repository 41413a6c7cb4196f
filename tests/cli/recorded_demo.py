"""The recorded demo run (tests/pipeline/recorded), replayed through the CLI: every LLM call answered from
the recording, everything else real (literature, trials in the sandbox, statistics, figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import AS_RECORDED, CliResult, run_cli

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "tests" / "pipeline" / "recorded" / "digits-smollm2.json"


def replay_demo(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict, CliResult]:
    """(the recording, what `nanoresearch run` printed replaying it with --yes, as in `make demo`)."""
    recording = json.loads(RECORDED.read_text())
    imported = run_cli(capsys, monkeypatch, "llm", "import", str(RECORDED))
    assert imported.code == 0, imported.err
    monkeypatch.setenv("NANORESEARCH_LLM__REPLAY", "only")
    for name, value in AS_RECORDED.items():
        monkeypatch.setenv(name, value)
    result = run_cli(capsys, monkeypatch, "run", recording["goal"], "--task", str(REPO / "examples/tasks/digits-classifier"),
                     "--offline", "--corpus", str(REPO / "examples/corpus"), "--budget", recording["budget"], "--yes")
    assert result.code == 0, result.err
    return recording, result
