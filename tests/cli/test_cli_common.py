"""The one error mapping of the command line: every user error, whatever the command group, prints
one `error:` line and one `hint:` line with a fix, exits with its class's code, and shows no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.cli.common import failure
from nanoresearch.errors import (
    BudgetExhausted,
    ConfigError,
    EndpointUnavailableError,
    NanoResearchError,
    StoreError,
    UserError,
)
from nanoresearch.runs import new_run
from nanoresearch.store.models import RunOptions

DIGITS = str(Path(__file__).parents[2] / "examples" / "tasks" / "digits-classifier")
GOAL = "improve digit classification accuracy"

BAD_INVOCATIONS = {
    "no runs yet (research)": (("status", "run-nope"), "you have no runs yet", 1),
    "unknown trial (trials)": (("trials", "show", "999"), "no trial 999", 1),
    "bad budget (research)": (("run", GOAL, "--budget", "bogus=1", "--yes"), "unknown budget unit 'bogus'", 1),
    "bad budget (trials)": (("trials", "run", "--task", DIGITS, "--budget", "trials"), "is not name=value", 1),
    "missing task folder (research)": (("run", GOAL, "--task", "no/such/task"), "no/such/task does not exist", 1),
    "missing task folder (trials)": (("trials", "run", "--task", "no/such/task"), "does not exist", 1),
    "unknown memory type (memory)": (("memory", "add", "likes tables", "--type", "mood"), "unknown memory type 'mood'", 1),
    "missing schema file (llm)": (("llm", "ask", "hi", "--schema", "no-such.json"), "schema file no-such.json does not exist", 1),
    "unknown adapter version (policy)": (("policy", "rollback", "v9"), "v9 does not exist", 1),
}


def assert_one_error_with_a_hint(result, fragment: str, code: int) -> None:
    assert "Traceback" not in result.err + result.out
    # A third-party library may warn on stderr the first time it is imported in a fresh install
    # (seen once on a clean clone); what we print is one error line followed by one hint line.
    lines = result.err.strip().splitlines()
    ours = [i for i, line in enumerate(lines) if line.startswith(("error: ", "hint: "))]
    assert len(ours) == 2 and ours[1] == ours[0] + 1, result.err  # one message, one fix
    error, hint = lines[ours[0]], lines[ours[1]]
    assert error.startswith("error: ") and fragment in error, result.err
    assert hint.startswith("hint: ") and len(hint) > len("hint: ") + 10, result.err
    assert result.code == code


@pytest.mark.parametrize("case", list(BAD_INVOCATIONS))
def test_a_bad_invocation_prints_one_message_and_a_fix(capsys, monkeypatch, case) -> None:
    args, fragment, code = BAD_INVOCATIONS[case]
    assert_one_error_with_a_hint(run_cli(capsys, monkeypatch, *args), fragment, code)


@pytest.mark.parametrize("args", [("status", "run-nope"), ("show", "run-nope"), ("trials", "tree", "--run", "run-nope"),
                                  ("llm", "export", "run-nope", "-o", "calls.json")])
def test_an_unknown_run_id_is_one_message_naming_it_with_a_fix(capsys, monkeypatch, settings, store, args) -> None:
    new_run(store, settings, store.ensure_user(settings.user), "digits", GOAL, RunOptions(), kind="research")
    result = run_cli(capsys, monkeypatch, *args)
    assert_one_error_with_a_hint(result, "no run 'run-nope' for this user", 1)
    assert "list" in result.err.splitlines()[1]  # the hint says how to see the run ids


@pytest.mark.parametrize("args", [("list",), ("trials", "list"), ("skills", "list"), ("policy", "status")])
def test_a_bad_config_file_is_one_message_naming_the_setting_with_a_fix(capsys, monkeypatch, home, args) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[llm]\nmax_attempts = "lots"\n')
    result = run_cli(capsys, monkeypatch, *args)
    assert_one_error_with_a_hint(result, "llm.max_attempts", 2)
    assert str(home / "config.toml") in result.err and "remove it to get its default" in result.err


def test_an_error_keeps_its_own_hint_and_its_class_exit_code() -> None:
    shown = failure(BudgetExhausted("tokens limit 10 reached (12 spent)", hint="resume with --budget tokens=+1k"))
    assert (shown.message, shown.hint, shown.exit_code) == ("tokens limit 10 reached (12 spent)",
                                                           "resume with --budget tokens=+1k", 3)


@pytest.mark.parametrize("error, fix, code", [
    (ConfigError("bad"), "default", 2), (UserError("bad"), "--help", 1), (StoreError("bad"), "checks the store", 1),
    (EndpointUnavailableError("down"), "endpoint", 1), (NanoResearchError("odd"), "doctor", 1),
])
def test_an_error_without_a_hint_gets_the_fix_of_its_nearest_class(error, fix, code) -> None:
    shown = failure(error)
    assert fix in shown.hint and shown.exit_code == code and shown.message == error.message
