"""The budget gate every live model call of a run passes (compute.budget.ModelCallGate, given to the
LLM client by whoever drives the run), checked against a server that counts what it served: no call once the run's tokens or dollars are spent, `max_tokens` lowered to what is left
(so the overrun is at most one call's prompt), and the ledger equal to what the server served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import CountingServer

from helpers import ScriptedProvider
from nanoresearch.compute.budget import ModelCallGate, parse_budget
from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import BudgetExhausted
from nanoresearch.llm.client import CUT_BY_BUDGET, LLM
from nanoresearch.llm.pricing import call_cost
from nanoresearch.store import Store
from nanoresearch.store.models import RunOptions

PROMPT, ANSWER = 100, 400  # tokens the server reports for each prompt, and answers when max_tokens allows
PRICE = {"input": 1.0, "output": 2.0}  # dollars per million tokens
MAX_CALLS = 10  # a gate that never refuses would go on; the test stops it here


@pytest.fixture
def server() -> Iterator[CountingServer]:
    with CountingServer(prompt_tokens=PROMPT, answer_tokens=ANSWER) as counting:
        yield counting


def settings_for(server: CountingServer, **extra: object) -> Settings:
    return load_settings({
        "endpoints": {"srv": {"kind": "openai", "base_url": server.base_url, "timeout_s": 5}},
        "llm": {"max_attempts": 1, "replay": "off"}, **extra,
    })


def run_llm(settings: Settings, store: Store, home: Path, budget: str, replay_within_run: bool = False) -> LLM:
    """The LLM of a research run whose stored budget is `budget` (as `nanoresearch run` stores it)."""
    user_id = store.ensure_user(settings.user)
    run = store.create_run("run-1", store.ensure_project(user_id, "p"), "goal", str(home / "ws"),
                           RunOptions(budget=parse_budget(budget)))
    return LLM(settings, store, user_id, run_id=run.id, replay_within_run=replay_within_run,
               budget=ModelCallGate(store, user_id, run.id))


def ask_until_refused(llm: LLM) -> BudgetExhausted | None:
    for i in range(MAX_CALLS):
        try:
            llm.complete(f"question {i}", endpoint="srv", model="m1", max_tokens=1000)
        except BudgetExhausted as refused:
            return refused
    return None


def test_a_spent_tokens_budget_refuses_the_next_call_and_the_last_one_answers_only_what_is_left(
    server: CountingServer, store: Store, home: Path
) -> None:
    llm = run_llm(settings_for(server), store, home, "tokens=1200")

    refused = ask_until_refused(llm)

    # each call may answer what is left (1200, 700, 200 tokens): 500 + 500 + 300 tokens, then a refusal
    assert server.calls == 3 and server.max_tokens_asked == [1000, 700, 200]
    ledger = store.spent(llm.user_id, llm.run_id)["tokens"]
    assert ledger == server.tokens_served == 1300  # over by one call's prompt, no more
    assert refused is not None and refused.unit == "tokens"
    assert refused.message == "the tokens budget is spent: 1,300 of 1,200 tokens"
    assert refused.hint == f"give more with `nanoresearch resume {llm.run_id} --budget tokens=+1200`"
    # the last answer, cut off by the budget, was paid for but is no answer: the caller got the stop
    # instead, and a resume with more budget asks that question again rather than replaying it
    calls = store.llm_calls(llm.user_id, llm.run_id)
    assert [c.failure for c in calls] == [None, None, CUT_BY_BUDGET]
    assert calls[2].request["max_tokens"] == 200


def test_a_spent_dollar_budget_refuses_calls_to_a_priced_endpoint(server: CountingServer, store: Store, home: Path) -> None:
    llm = run_llm(settings_for(server, prices={"m1": PRICE}), store, home, "usd=0.002")

    refused = ask_until_refused(llm)

    # $0.0009 a call: two full calls, then $0.0002 left buys at most 100 answer tokens
    assert server.calls == 3 and server.max_tokens_asked[0] == 1000 and server.max_tokens_asked[2] <= 100
    answered = server.tokens_served - server.calls * PROMPT
    served_usd = (server.calls * PROMPT * PRICE["input"] + answered * PRICE["output"]) / 1e6
    assert store.spent(llm.user_id, llm.run_id)["usd"] == pytest.approx(served_usd)
    assert served_usd <= 0.002 + PROMPT * PRICE["input"] / 1e6 + 1e-12
    assert refused is not None and refused.unit == "usd" and refused.message.startswith("the usd budget is spent: $0.002")


def test_recorded_calls_of_the_run_replay_free_after_its_budget_is_spent(
    server: CountingServer, store: Store, home: Path
) -> None:
    llm = run_llm(settings_for(server), store, home, "tokens=500", replay_within_run=True)
    first = llm.complete("question 0", endpoint="srv", model="m1", max_tokens=1000)
    with pytest.raises(BudgetExhausted):
        llm.complete("question 1", endpoint="srv", model="m1", max_tokens=1000)

    again = llm.complete("question 0", endpoint="srv", model="m1", max_tokens=1000)

    assert again.replayed and again.text == first.text
    assert server.calls == 1 and store.spent(llm.user_id, llm.run_id)["tokens"] == 500


def test_calls_outside_a_run_have_no_budget(server: CountingServer, store: Store) -> None:
    settings = settings_for(server)
    llm = LLM(settings, store, store.ensure_user(settings.user))
    for i in range(3):
        llm.complete(f"question {i}", endpoint="srv", model="m1", max_tokens=1000)
    assert server.max_tokens_asked == [1000, 1000, 1000]


def test_a_price_set_for_a_local_model_is_charged(store: Store, home: Path) -> None:
    settings = load_settings({"prices": {"smollm2-135m": PRICE}, "llm": {"replay": "off"}})
    user_id = store.ensure_user(settings.user)
    run = store.create_run("run-1", store.ensure_project(user_id, "p"), "goal", str(home / "ws"))
    llm = LLM(settings, store, user_id, run_id=run.id, providers={"local": ScriptedProvider("one two three")})

    reply = llm.complete("q", endpoint="local", model="smollm2-135m")

    assert reply.cost_usd > 0
    assert reply.cost_usd == pytest.approx((reply.prompt_tokens * 1.0 + reply.completion_tokens * 2.0) / 1e6)
    assert store.spent(user_id, run.id)["usd"] == pytest.approx(reply.cost_usd)


def test_a_local_model_without_a_price_costs_nothing_and_an_unpriced_remote_one_is_unknown() -> None:
    assert call_cost({}, "local", "smollm2-135m", 1000, 1000) == 0.0
    assert call_cost({}, "openai", "some-model", 1000, 1000) is None
