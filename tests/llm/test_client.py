"""The client's behaviour around any provider: retries, repair, record/replay, cost."""

import pytest
from pydantic import BaseModel, Field

from helpers import ScriptedProvider
from nanoresearch.config import load_settings
from nanoresearch.errors import (
    AuthError,
    EndpointUnavailableError,
    ReplayMissError,
    StructuredOutputError,
    TransientLLMError,
)
from nanoresearch.llm.client import LLM
from nanoresearch.store import Store


class Verdict(BaseModel):
    name: str
    score: int = Field(ge=1, le=10)


def make_llm(
    store: Store, provider: ScriptedProvider, user: str = "alice", run_id: str | None = None,
    replay_within_run: bool = False, **overrides,
) -> LLM:
    settings = load_settings({"llm": {"backoff_initial_s": 0, "backoff_max_s": 0, **overrides}})
    return LLM(settings, store, store.ensure_user(user), run_id=run_id, providers={"local": provider},
               replay_within_run=replay_within_run)


def test_transient_errors_are_retried(store):
    provider = ScriptedProvider(TransientLLMError("503"), TransientLLMError("429"), "fine")
    assert make_llm(store, provider).complete("q").text == "fine"
    assert len(provider.history) == 3


def test_retries_stop_at_max_attempts_with_endpoint_unavailable(store):
    provider = ScriptedProvider(*[TransientLLMError("HTTP 503: overloaded")] * 5)
    with pytest.raises(EndpointUnavailableError, match="'local' .* failed all 3 attempts; the last: HTTP 503") as caught:
        make_llm(store, provider, max_attempts=3).complete("q")
    assert len(provider.history) == 3  # the outage error itself is not retried
    assert not isinstance(caught.value, TransientLLMError)
    assert str(caught.value.__cause__) == "HTTP 503: overloaded"
    assert "check that the server is up" in caught.value.hint


def test_auth_errors_are_not_retried(store):
    provider = ScriptedProvider(AuthError("bad key", hint="set it"), "never")
    with pytest.raises(AuthError):
        make_llm(store, provider).complete("q")
    assert len(provider.history) == 1


def test_not_json_is_repaired_by_asking_again(store):
    provider = ScriptedProvider("I think the name is a and the score 3", '{"name": "a", "score": 3}')
    reply = make_llm(store, provider).complete("judge", schema=Verdict)
    assert reply.parsed == Verdict(name="a", score=3)
    assert reply.attempts == 2
    repair_prompt = provider.history[1].messages[-1].content
    assert "not valid" in repair_prompt and "no JSON object" in repair_prompt


def test_schema_violation_is_sent_back_to_the_model(store):
    provider = ScriptedProvider('{"name": "a", "score": 42}', '{"name": "a", "score": 9}')
    reply = make_llm(store, provider).complete("judge", schema=Verdict)
    assert reply.parsed.score == 9
    assert "42 is greater than the maximum of 10" in provider.history[1].messages[-1].content


def test_truncated_json_is_not_an_answer_but_sent_back_for_repair(store):
    provider = ScriptedProvider('{"name": "a", "score": 3, "extra": "cut off he', '{"name": "a", "score": 3}')
    reply = make_llm(store, provider).complete("judge", schema=Verdict)
    assert reply.parsed == Verdict(name="a", score=3)
    assert reply.attempts == 2
    assert "stops before its end" in provider.history[1].messages[-1].content


def test_repair_is_bounded(store):
    provider = ScriptedProvider("no", "still no", "nope")
    with pytest.raises(StructuredOutputError, match="after 3 attempts"):
        make_llm(store, provider, max_repairs=2).complete("judge", schema=Verdict)


def test_schema_instruction_goes_into_the_system_message(store):
    provider = ScriptedProvider('{"name": "a", "score": 3}')
    make_llm(store, provider).complete("judge", schema=Verdict)
    system = provider.history[0].messages[0]
    assert system.role == "system" and '"score"' in system.content


def test_a_recorded_call_is_not_paid_twice(store):
    provider = ScriptedProvider("first answer")
    llm = make_llm(store, provider)
    first = llm.complete("same question")
    again = llm.complete("same question")
    assert (again.text, again.replayed, len(provider.history)) == (first.text, True, 1)
    assert store.spent(llm.user_id)["tokens"] == first.prompt_tokens + first.completion_tokens


def test_replay_only_answers_from_recordings(store):
    make_llm(store, ScriptedProvider("recorded")).complete("question")
    offline = make_llm(store, ScriptedProvider(), replay="only")
    assert offline.complete("question").text == "recorded"
    with pytest.raises(ReplayMissError, match="no recording"):
        offline.complete("a question never asked")


def test_replay_endpoint_name_forces_replay(store):
    llm = make_llm(store, ScriptedProvider("live"), replay="off")
    llm.complete("q")
    assert llm.complete("q", endpoint="replay:local").replayed
    with pytest.raises(ReplayMissError):
        llm.complete("other", endpoint="replay")


def test_one_users_recordings_never_answer_another(store):
    make_llm(store, ScriptedProvider("alice's answer"), user="alice").complete("q")
    bob = make_llm(store, ScriptedProvider("bob's answer"), user="bob")
    assert bob.complete("q").text == "bob's answer"
    with pytest.raises(ReplayMissError):
        make_llm(store, ScriptedProvider(), user="carol", replay="only").complete("q")


def test_cost_comes_from_the_price_table(store, monkeypatch):
    settings = load_settings({
        "endpoints": {"paid": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "prices": {"m1": {"input": 1.0, "output": 2.0}},
    })
    llm = LLM(settings, store, store.ensure_user("alice"), providers={"paid": ScriptedProvider("one two three", "four")})
    reply = llm.complete("q", endpoint="paid", model="m1")
    assert reply.cost_usd == pytest.approx((10 * 1.0 + 3 * 2.0) / 1e6)
    assert store.spent(llm.user_id)["usd"] == pytest.approx(reply.cost_usd)
    unknown = llm.complete("q2", endpoint="paid", model="unpriced-model")
    assert unknown.cost_usd is None


def test_another_endpoint_brings_its_own_default_model(store):
    llm = make_llm(store, ScriptedProvider())
    assert llm.default_model("planning", "local") == "smollm2-135m"
    assert llm.default_model("planning", "replay:local") == "smollm2-135m"
    assert llm.default_model("planning", "openai") == "gpt-4o-mini"
    assert llm.default_model("review", "anthropic") == "claude-3-5-haiku-latest"


# --- failed replies are recorded as failures and never replayed as answers --------------------


def make_run(store, user_id: int, home, run_id: str = "run-1") -> str:
    return store.create_run(run_id, store.ensure_project(user_id, "p"), "goal", str(home / "ws")).id


def test_a_failed_structured_call_is_recorded_as_a_failure_and_still_charged(store):
    llm = make_llm(store, ScriptedProvider("no", "still no", "nope"))
    with pytest.raises(StructuredOutputError):
        llm.complete("judge", schema=Verdict)
    calls = store.llm_calls(llm.user_id)
    assert [c.response_text for c in calls] == ["no", "still no", "nope"]
    assert all("no JSON object" in c.failure for c in calls)
    assert store.spent(llm.user_id)["tokens"] == sum(c.prompt_tokens + c.completion_tokens for c in calls)


def test_prefer_asks_again_what_failed_instead_of_replaying_it(store):
    with pytest.raises(StructuredOutputError):
        make_llm(store, ScriptedProvider("no", "still no", "nope")).complete("judge", schema=Verdict)
    later = ScriptedProvider('{"name": "a", "score": 3}')
    reply = make_llm(store, later, replay="prefer").complete("judge", schema=Verdict)
    assert reply.parsed == Verdict(name="a", score=3)
    assert (reply.replayed, len(later.history)) == (False, 1)


def test_a_resumed_run_asks_again_what_failed_even_with_replay_off(store, home):
    run_id = make_run(store, store.ensure_user("alice"), home)
    with pytest.raises(StructuredOutputError):
        make_llm(store, ScriptedProvider("no", "no", "no"), run_id=run_id, replay="off").complete("judge", schema=Verdict)
    recovered = ScriptedProvider('{"name": "a", "score": 3}')
    resumed = make_llm(store, recovered, run_id=run_id, replay_within_run=True, replay="off")
    assert resumed.complete("judge", schema=Verdict).parsed == Verdict(name="a", score=3)
    assert len(recovered.history) == 1


def test_a_resume_that_gets_the_same_bad_reply_replays_the_recorded_repair(store, home):
    # Run 1: the first reply was bad, the repair round fixed it. A deterministic model says the same bad
    # thing again on resume; the repair request is then identical, so its recorded answer is reused.
    run_id = make_run(store, store.ensure_user("alice"), home)
    first = make_llm(store, ScriptedProvider("score three", '{"name": "a", "score": 3}'), run_id=run_id, replay="off")
    first.complete("judge", schema=Verdict)
    same = ScriptedProvider("score three")
    resumed = make_llm(store, same, run_id=run_id, replay_within_run=True, replay="off")
    reply = resumed.complete("judge", schema=Verdict)
    assert (reply.parsed, reply.replayed, len(same.history)) == (Verdict(name="a", score=3), True, 1)
    # A model that now answers differently is simply taken at its word: nothing recorded can block it.
    other = ScriptedProvider('{"name": "b", "score": 5}')
    again = make_llm(store, other, run_id=run_id, replay_within_run=True, replay="off")
    assert again.complete("judge", schema=Verdict).parsed == Verdict(name="b", score=5)


def test_offline_replay_follows_a_recording_through_its_repair_round(store):
    make_llm(store, ScriptedProvider("score three", '{"name": "a", "score": 3}')).complete("judge", schema=Verdict)
    offline = make_llm(store, ScriptedProvider(), replay="only")
    reply = offline.complete("judge", schema=Verdict)
    assert (reply.parsed, reply.replayed, reply.attempts) == (Verdict(name="a", score=3), True, 2)


def test_a_bad_reply_recorded_before_failures_were_marked_is_asked_again(store):
    with pytest.raises(StructuredOutputError):
        make_llm(store, ScriptedProvider("no", "no", "no")).complete("judge", schema=Verdict)
    store._conn.execute("UPDATE llm_calls SET failure = NULL")  # as a database from before the migration
    later = ScriptedProvider('{"name": "a", "score": 3}')
    assert make_llm(store, later).complete("judge", schema=Verdict).parsed == Verdict(name="a", score=3)
    assert len(later.history) == 1


def test_the_configured_seed_reaches_every_call_that_names_none(store):
    provider = ScriptedProvider("a", "b", "c")
    make_llm(store, provider).complete("q")
    make_llm(store, provider, seed=7).complete("q")
    make_llm(store, provider, seed=7).complete("q", seed=3)
    assert [r.seed for r in provider.history] == [None, 7, 3]  # unset: the recorded runs' keys are unchanged
