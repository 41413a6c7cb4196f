"""A budget stop says how to get more with the command that continues this kind of run: a trial session
is continued by `trials run --task … --resume RUN --budget …` (whose --budget replaces the session's own,
so the hint names every limit), a research run by `resume RUN --budget unit=+amount`. And the loop's
tokens share (a research run gives the loop part of its budget) bounds each proposal's answer."""

import re
import shlex
from pathlib import Path

import pytest
from tiny import make_loop, proposal

from helpers import ScriptedProvider, run_cli
from nanoresearch.compute.budget import Budget, ModelCallGate, parse_budget
from nanoresearch.errors import BudgetExhausted
from nanoresearch.runs import new_run
from nanoresearch.store.models import RunOptions

HINTED = re.compile(r"`nanoresearch (trials run .*?)`")


def test_trials_run_stopped_by_its_budget_names_the_trials_command_that_continues_it(capsys, monkeypatch, tiny_folder):
    result = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(tiny_folder), "--budget", "trials=1,wall=10m")
    assert result.code == 0, result.err
    err = " ".join(result.err.split())  # the terminal wraps long lines
    assert "stopping: the trial budget is used up" in err
    command = HINTED.search(err)
    assert command is not None, err  # before: no hint at all, or `nanoresearch resume RUN`, which refuses trial sessions
    words = shlex.split(command.group(1))
    assert words[:4] == ["trials", "run", "--task", str(tiny_folder)] and words[4] == "--resume"
    assert parse_budget(words[words.index("--budget") + 1]) == Budget(trials=2, wall_s=600)


def test_the_model_gate_of_a_trial_session_names_the_trials_command(settings, store, tiny_folder):
    user = store.ensure_user(settings.user)
    options = RunOptions(task=str(tiny_folder), budget=Budget(trials=6, tokens=100))
    run = new_run(store, settings, user, "tiny", "optimise", options, kind="trials")
    store.charge(user, run.id, "tokens", 120, "call:1")
    with pytest.raises(BudgetExhausted) as stop:
        ModelCallGate(store, user, run.id).room(None)
    hint = stop.value.hint or ""
    assert f"`nanoresearch trials run --task {tiny_folder} --resume {run.id} --budget trials=6,tokens=200`" in hint
    assert "nanoresearch resume" not in hint


def test_the_model_gate_of_a_research_run_names_resume(settings, store):
    user = store.ensure_user(settings.user)
    run = new_run(store, settings, user, "p", "a goal", RunOptions(budget=Budget(tokens=100)), kind="research")
    store.charge(user, run.id, "tokens", 120, "call:1")
    with pytest.raises(BudgetExhausted) as stop:
        ModelCallGate(store, user, run.id).room(None)
    assert stop.value.hint == f"give more with `nanoresearch resume {run.id} --budget tokens=+100`"


def test_a_proposal_answers_within_what_is_left_of_the_loops_tokens_share(store, tiny_task, tmp_path: Path):
    provider = ScriptedProvider(proposal("bigger", ("VALUE = 1", "VALUE = 2")))
    loop = make_loop(store, tiny_task, provider, Budget(trials=2, tokens=300), tmp_path)
    store.charge(loop.user_id, loop.run_id, "tokens", 250, "call:earlier")
    loop.run()
    (request,) = provider.history
    # Before, the call asked for the stage's whole max_tokens: the share could be overrun by a full answer.
    assert request.max_tokens == 50
