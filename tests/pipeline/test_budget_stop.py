"""A research run whose budget is spent stops there: `stopped: budget`, a report written by code, no
dead end in memory, and no model call after the limit; `resume --budget` gives it more and goes on.

The model is the researcher on loopback (an OpenAI-compatible server that counts the tokens it
served), so the ledger is checked against what was really served.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from researcher import ResearcherProvider, ResearcherServer, write_config

from conftest import CORPUS, DIGITS, GOAL
from helpers import run_cli
from nanoresearch.compute.budget import Spent
from nanoresearch.config import Price
from nanoresearch.errors import BudgetExhausted
from nanoresearch.llm.provider import LLMRequest, LLMResponse
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.orchestrator import Unattended, run_pipeline
from nanoresearch.pipeline.stages.experiment import loop_model_limits
from nanoresearch.store import Store
from nanoresearch.store.budget import Budget
from nanoresearch.store.models import LLMCall

RUN = ["run", GOAL, "--task", str(DIGITS), "--offline", "--corpus", str(CORPUS), "--yes"]


def calls_after_the_limit(calls: list[LLMCall], limit: float) -> int:
    """Model calls made when the tokens already charged had reached the limit."""
    charged, after = 0, 0
    for call in calls:
        after += charged >= limit
        charged += call.prompt_tokens + call.completion_tokens
    return after


def the_run(home: Path) -> tuple[Store, object]:
    store = Store(home / "nanoresearch.db")
    (run,) = store.list_runs(store.ensure_user("alice"))
    return store, run


def test_a_spent_tokens_budget_stops_the_run_with_a_report_and_no_dead_end(capsys, monkeypatch, home: Path) -> None:
    with ResearcherServer(honor_max_tokens=True) as server:
        write_config(home, server.url)
        result = run_cli(capsys, monkeypatch, *RUN, "--budget", "trials=3,tokens=3000")
        served, calls = server.tokens_served, server.calls

    store, run = the_run(home)
    user_id = store.ensure_user("alice")
    recorded = store.llm_calls(user_id, run.id)
    tokens = store.spent(user_id, run.id)["tokens"]
    stopped = [e for e in map(json.loads, (Path(run.workspace) / "log.jsonl").read_text().splitlines())
               if e["event"] == "run_stopped"]
    with capsys.disabled():  # the measured figures, for the record (pytest -s shows them)
        print(f"\ntokens budget 3000: served {served} in {calls} calls, ledger {tokens:.0f}, calls after the "
              f"limit {calls_after_the_limit(recorded, 3000)}, stopped in {stopped[0]['stage'] if stopped else '-'}")
    assert result.code == BudgetExhausted.exit_code and "Traceback" not in result.err
    assert "the tokens budget is spent:" in result.err and "of 3,000 tokens" in result.err
    assert f"nanoresearch resume {run.id} --budget tokens=+3000" in result.err
    # the ledger is what the server served, every call was recorded, and none was made past the limit
    assert tokens == served and len(recorded) == calls
    assert calls_after_the_limit(recorded, 3000) == 0
    assert tokens - 3000 <= recorded[-1].prompt_tokens + recorded[-1].completion_tokens  # over by one call at most
    assert (run.status, run.stop_reason) == ("paused", "budget")
    report = (Path(run.workspace) / "report.md").read_text()
    assert report.startswith("# Stopped: budget") and "Negative result" not in report
    assert "the tokens budget is spent" in report and "--budget tokens=+3000" in report
    assert not store.visible_memories(user_id, types=["failed_hypothesis"])
    shown = run_cli(capsys, monkeypatch, "status", run.id)
    assert f"{run.id} (stopped: budget)" in shown.out and "not run: budget" in shown.out
    assert "stopped:" in run_cli(capsys, monkeypatch, "list").out  # the table may wrap "stopped: budget"
    assert stopped and stopped[0]["reason"] == "budget" and stopped[0]["unit"] == "tokens"


def test_resume_with_more_tokens_continues_a_stopped_run(capsys, monkeypatch, home: Path) -> None:
    with ResearcherServer(honor_max_tokens=True) as server:
        write_config(home, server.url)
        run_cli(capsys, monkeypatch, *RUN, "--budget", "trials=3,tokens=3000")
        store, run = the_run(home)
        first_calls = server.calls
        done_before = {s.stage for s in store.steps(run.id) if s.step == "stage" and s.status == "done"}

        resumed = run_cli(capsys, monkeypatch, "resume", run.id, "--budget", "tokens=+6k", "--yes")

    run = store.get_run(run.id)
    assert "budget: trials=3,tokens=9000" in resumed.err
    assert run.options.budget == Budget(trials=3, tokens=9000)
    assert server.calls > first_calls  # it went on asking the model
    done_after = {s.stage for s in store.steps(run.id) if s.step == "stage" and s.status == "done"}
    assert done_after > done_before
    tokens = store.spent(store.ensure_user("alice"), run.id)["tokens"]
    if run.stop_reason == "budget":  # stopped again, at the new limit, and said so
        assert "of 9,000 tokens" in resumed.err and resumed.code == BudgetExhausted.exit_code
        assert calls_after_the_limit(store.llm_calls(store.ensure_user("alice"), run.id), 9000) == 0
    else:
        assert resumed.code == 0 and run.status == "done" and tokens <= 9000


def test_resume_refuses_to_add_to_a_limit_the_run_does_not_have(capsys, monkeypatch, home: Path) -> None:
    with ResearcherServer(honor_max_tokens=True) as server:
        write_config(home, server.url)
        run_cli(capsys, monkeypatch, *RUN, "--budget", "trials=3,tokens=3000")
        _, run = the_run(home)
        refused = run_cli(capsys, monkeypatch, "resume", run.id, "--budget", "usd=+1", "--yes")
    assert refused.code != 0 and "Traceback" not in refused.err
    assert "the run has no usd limit to add to" in refused.err


@pytest.mark.parametrize("budget", ["cpu_hours=0.00001"])
def test_a_budget_that_refuses_every_trial_is_a_budget_stop_not_a_negative_result(make_context, budget: str) -> None:
    ctx = make_context(budget=budget)
    with pytest.raises(BudgetExhausted):
        run_pipeline(ctx, Unattended())
    run = ctx.store.get_run(ctx.run.id)
    assert run.stop_reason == "budget"
    assert not [t for t in ctx.store.trials(ctx.run.id) if t.job_id]  # nothing was evaluated
    report = (ctx.workspace / "report.md").read_text()
    assert report.startswith("# Stopped: budget") and "Negative result" not in report
    assert not ctx.store.visible_memories(ctx.user_id, types=["failed_hypothesis"])
    experiment = next(s for s in ctx.store.steps(ctx.run.id) if s.stage == "experiment" and s.step == "stage")
    assert experiment.status == "running" and experiment.payload["stopped"]


def test_a_priced_model_stops_the_run_at_its_dollar_budget(make_context, settings) -> None:
    priced = settings.model_copy(update={"prices": {**settings.prices, "smollm2-135m": Price(input=1.0, output=2.0)}})
    ctx = make_context(base=priced, budget="trials=3,usd=0.001")
    with pytest.raises(BudgetExhausted) as stop:
        run_pipeline(ctx, Unattended())
    usd = ctx.store.spent(ctx.user_id, ctx.run.id)["usd"]
    calls = ctx.store.llm_calls(ctx.user_id, ctx.run.id)
    last = calls[-1].cost_usd
    print(f"usd budget 0.001: spent ${usd:.6f} in {len(calls)} calls; the last ${last:.6f}")
    assert stop.value.unit == "usd" and stop.value.message.startswith("the usd budget is spent:")
    assert usd - 0.001 <= last  # over by one call at most
    assert ctx.store.get_run(ctx.run.id).stop_reason == "budget"


@pytest.mark.parametrize(("share", "tokens", "usd"), [("100%", 6000, 1.5), ("25%", 4000, 1.25)])
def test_the_trial_loop_leaves_at_least_half_of_the_tokens_and_dollars_left_to_later_stages(
    share: str, tokens: int, usd: float
) -> None:
    used = Spent(tokens=2000, usd=1.0)
    fraction = StagePlan(objectives=["run the trial loop"], budget_share=share).fraction()
    limits = loop_model_limits(Budget(trials=8, tokens=10000, usd=2.0), used, fraction)
    assert limits == {"tokens": tokens, "usd": usd}  # run totals: spent + the loop's share of what is left
    assert loop_model_limits(Budget(trials=8), used, fraction) == {}  # no limit, nothing to share


class CostlyProposals(ResearcherProvider):
    """The researcher, except that each trial proposal is charged PROPOSAL_TOKENS (a long-winded coder)."""

    def complete(self, request: LLMRequest) -> LLMResponse:
        response = super().complete(request)
        if "edits" in (request.json_schema or {}).get("properties", {}):
            return response.model_copy(update={"completion_tokens": PROPOSAL_TOKENS})
        return response


PROPOSAL_TOKENS = 300_000


def test_tokens_spent_in_the_trial_loop_stop_the_run_before_the_matrix(make_context) -> None:
    ctx = make_context(CostlyProposals(), budget="trials=6,tokens=200k")
    with pytest.raises(BudgetExhausted) as stop:
        run_pipeline(ctx, Unattended())
    assert stop.value.unit == "tokens" and "of 200,000 tokens" in stop.value.message
    trials = ctx.store.trials(ctx.run.id)
    assert not [t for t in trials if t.proposer.startswith("matrix:")] and not (ctx.workspace / "matrix.json").exists()
    experiment = next(s for s in ctx.store.steps(ctx.run.id) if s.stage == "experiment" and s.step == "stage")
    assert experiment.status == "running" and "tokens budget is spent" in experiment.payload["stopped"]
    assert "Best so far: trial" in (ctx.workspace / "report.md").read_text()  # the baseline's measured score
