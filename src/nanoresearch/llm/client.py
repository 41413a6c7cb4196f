"""The one entry point the rest of NanoResearch uses to talk to a model.

`LLM.complete()` resolves a stage to its endpoint and model, then for each call:
reuse a recording when replay allows it, else pass the run's budget gate (no live call once the
run's tokens or dollars are spent, and `max_tokens` lowered to what is left) and call the provider
with retries on transient errors (an endpoint that fails every retry is an EndpointUnavailableError);
record the call and charge its tokens and dollars to the ledger in one transaction; and for
structured calls validate the reply against the schema, give a reply cut off by the token limit
more room once, and ask the model to repair it a bounded number of times. A reply that failed
validation is recorded as a failure, which replay never serves as an answer, so a resumed or
replayed run asks that question again; so is a reply the budget's lowered limit cut off.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from nanoresearch.config import Settings
from nanoresearch.errors import (
    EndpointUnavailableError,
    NanoResearchError,
    ReplayMissError,
    StructuredOutputError,
    TransientLLMError,
)
from nanoresearch.llm import structured
from nanoresearch.llm.pricing import call_cost, model_price
from nanoresearch.llm.provider import (
    LLMRequest,
    LLMResponse,
    Message,
    Provider,
    ProviderContext,
    check_endpoint_kinds,
    create_provider,
)
from nanoresearch.llm.replay import ReplayProvider, call_key, split_replay_endpoint
from nanoresearch.store import Store
from nanoresearch.store.models import LLMCall

REDACTED = "[REDACTED]"
# A structured reply cut off by the token limit is asked again once with twice the limit, at most this.
MAX_RAISED_TOKENS = 8192
# Why a reply cut short by the budget gate's lowered limit is recorded as no answer (replay skips it).
CUT_BY_BUDGET = "cut off at the last tokens the budget allowed"


class BudgetGate(Protocol):
    """What the client asks the run's budget before each live call (compute.budget.ModelCallGate)."""

    def room(self, usd_per_output_token: float | None) -> float:
        """Tokens a call may still answer with; raises BudgetExhausted once the run's tokens or dollars are spent."""
        ...

    def spent_error(self) -> NanoResearchError:
        """The stop to raise when a call's answer was cut off at the last tokens the budget allowed."""
        ...


class Completion(BaseModel):
    text: str
    parsed: Any = None
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float = 0.0
    finish_reason: str | None = None
    replayed: bool = False
    attempts: int = 1  # calls a structured answer took: 1 + retries with a raised limit + repair rounds
    prompt_ids: list[int] | None = None  # exact token ids, from local models
    output_ids: list[int] | None = None


# A structured call's check of a reply: the parsed object, or structured.InvalidOutput.
Judge = Callable[[Completion], Any]


class RejectedReply(Exception):
    """A reply that failed its structured call's check; `completion` is what came back."""

    def __init__(self, completion: Completion, problem: str) -> None:
        super().__init__(problem)
        self.completion = completion
        self.problem = problem


class Spending(BaseModel):
    """Tokens, dollars and time summed over the calls behind one structured answer."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float | None = 0.0  # None once any call had no known price

    def add(self, completion: Completion) -> None:
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.latency_s += completion.latency_s
        if self.cost_usd is None or completion.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += completion.cost_usd


class LLM:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        user_id: int,
        run_id: str | None = None,
        providers: dict[str, Provider] | None = None,
        replay_within_run: bool = False,
        adapters: Callable[[str], Any] | None = None,
        budget: BudgetGate | None = None,
    ) -> None:
        check_endpoint_kinds(settings)  # a typo in a kind stops here, not at that endpoint's first call
        self.settings = settings
        self.adapters = adapters
        self.store = store
        self.user_id = user_id
        self.run_id = run_id
        # A resumed run answers its own earlier calls from the store, so nothing paid is paid
        # twice, without letting another run's recordings stand in for fresh calls.
        self.replay_within_run = replay_within_run
        self._providers: dict[str, Provider] = dict(providers or {})
        self.budget = budget  # the run's budget, checked before every live call; None: no limits

    def provider(self, endpoint: str) -> Provider:
        if endpoint not in self._providers:
            ctx = ProviderContext(self.settings, self.adapters)
            self._providers[endpoint] = create_provider(endpoint, self.settings.endpoint(endpoint), ctx)
        return self._providers[endpoint]

    def complete(
        self,
        messages: list[Message] | str,
        *,
        stage: str = "planning",
        schema: type[BaseModel] | dict[str, Any] | None = None,
        endpoint: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> Completion:
        if isinstance(messages, str):
            messages = [Message(role="user", content=messages)]
        stage_cfg = self.settings.stage(stage)
        endpoint = endpoint or stage_cfg.endpoint
        json_schema = structured.schema_of(schema) if schema is not None else None
        request = LLMRequest(
            model=model or self.default_model(stage, endpoint),
            messages=structured.with_schema_instruction(messages, json_schema) if json_schema else messages,
            temperature=stage_cfg.temperature if temperature is None else temperature,
            max_tokens=max_tokens or stage_cfg.max_tokens,
            json_schema=json_schema,
            seed=self.settings.llm.seed if seed is None else seed,
        )
        if json_schema is None:
            return self._call(endpoint, stage, request)
        pydantic_model = schema if isinstance(schema, type) else None
        return self._structured(endpoint, stage, request, json_schema, pydantic_model)

    def default_model(self, stage: str, endpoint: str) -> str:
        """The stage's model on the stage's endpoint; another endpoint's own default elsewhere."""
        stage_cfg = self.settings.stage(stage)
        target, _ = split_replay_endpoint(endpoint, stage_cfg.endpoint)
        if target == stage_cfg.endpoint:
            return stage_cfg.model
        return self.settings.endpoint(target).default_model or stage_cfg.model

    def _structured(
        self, endpoint: str, stage: str, request: LLMRequest, schema: dict, model: type[BaseModel] | None
    ) -> Completion:
        def judge(completion: Completion) -> Any:
            return structured.parse(completion.text, schema, model, completion.finish_reason)

        spending = Spending()
        problem = ""
        first_limit = request.max_tokens
        rounds = self.settings.llm.max_repairs + 1
        for attempt in range(1, rounds + 1):
            try:
                completion = self._call(endpoint, stage, request, judge)
            except RejectedReply as rejected:
                spending.add(rejected.completion)
                problem = rejected.problem
                request = next_request(request, rejected, first_limit)
                continue
            spending.add(completion)
            return completion.model_copy(update={"attempts": attempt, **spending.model_dump()})
        raise StructuredOutputError(
            f"{endpoint}/{request.model} gave no valid JSON for the schema after {rounds} attempts; last problem: {problem}",
            hint="use a stronger model for this stage, or raise llm.max_repairs",
        )

    def _call(self, endpoint: str, stage: str, request: LLMRequest, judge: Judge | None = None) -> Completion:
        """One answer, replayed or live; a structured call's reply that fails `judge` is a RejectedReply."""
        endpoint, replay_only = split_replay_endpoint(endpoint, self.settings.stage(stage).endpoint)
        mode = "only" if replay_only else self.settings.llm.replay
        if mode == "off" and self.replay_within_run and self.run_id:
            mode = "prefer"
        if mode != "off":
            replayed = self._replayed(endpoint, request, mode)
            if replayed is not None:
                try:
                    return judged(replayed, judge)
                except RejectedReply:
                    # Offline, a recorded failure leads on to the recording's own repair round. Otherwise a
                    # recording that fails the check today (made before failures were marked) is no answer.
                    if mode == "only":
                        raise
        sent = self._within_budget(request)
        completion = self._live(endpoint, sent)
        if self.budget is not None and completion.finish_reason == "length" and sent.max_tokens < request.max_tokens:
            # Cut off by the budget, not by the caller's limit: paid and recorded, but no answer to use.
            self._record(endpoint, stage, request, sent, completion, failure=CUT_BY_BUDGET)
            raise self.budget.spent_error()
        try:
            done = judged(completion, judge)
        except RejectedReply as rejected:
            self._record(endpoint, stage, request, sent, completion, failure=rejected.problem)
            raise
        self._record(endpoint, stage, request, sent, completion, failure=None)
        return done

    def _replayed(self, endpoint: str, request: LLMRequest, mode: str) -> Completion | None:
        scope = self.run_id if self.replay_within_run and mode == "prefer" else None
        # Offline replay follows a recording's failed replies into its repair rounds; a live mode re-asks them.
        recordings = ReplayProvider(self.store, self.user_id, endpoint, run_id=scope, include_failed=mode == "only")
        try:
            response = recordings.complete(request)
        except ReplayMissError:
            if mode == "only":
                raise
            return None
        return Completion(
            text=response.text, provider=endpoint, model=request.model, finish_reason=response.finish_reason,
            prompt_tokens=response.prompt_tokens, completion_tokens=response.completion_tokens,
            cost_usd=0.0, replayed=True, prompt_ids=response.prompt_ids, output_ids=response.output_ids,
        )

    def _within_budget(self, request: LLMRequest) -> LLMRequest:
        """The budget gate every live call of a run passes: refused (BudgetExhausted) once the run's
        tokens or dollars are spent, else allowed to answer at most what is left, so a run overruns
        its budget by at most this one call's prompt. The call is charged when it is recorded."""
        if self.budget is None:
            return request
        price = model_price(self.settings.prices, request.model)
        room = self.budget.room(price.output / 1_000_000 if price else None)
        if room >= request.max_tokens:
            return request
        return request.model_copy(update={"max_tokens": max(1, int(room))})

    def _live(self, endpoint: str, request: LLMRequest) -> Completion:
        started = time.perf_counter()
        response = self._with_retries(endpoint, request)
        latency = time.perf_counter() - started
        kind = self.settings.endpoint(endpoint).kind
        cost = call_cost(self.settings.prices, kind, request.model, response.prompt_tokens, response.completion_tokens)
        return Completion(
            text=response.text, provider=endpoint, model=request.model, finish_reason=response.finish_reason,
            prompt_tokens=response.prompt_tokens, completion_tokens=response.completion_tokens,
            cost_usd=cost, latency_s=latency, prompt_ids=response.prompt_ids, output_ids=response.output_ids,
        )

    def _with_retries(self, endpoint: str, request: LLMRequest) -> LLMResponse:
        cfg = self.settings.llm
        retrying = Retrying(
            stop=stop_after_attempt(cfg.max_attempts),
            wait=wait_exponential_jitter(multiplier=cfg.backoff_initial_s, max=cfg.backoff_max_s, jitter=cfg.backoff_initial_s),
            retry=retry_if_exception_type(TransientLLMError),
            reraise=True,
        )
        try:
            return retrying(self.provider(endpoint).complete, request)
        except TransientLLMError as exc:
            raise self._unavailable(endpoint, exc) from exc

    def _unavailable(self, endpoint: str, last: TransientLLMError) -> EndpointUnavailableError:
        """An outage, not a bad answer: the caller can pause the run instead of spending trials on it."""
        where = self.settings.endpoint(endpoint).base_url or "the model on this machine"
        then = f"continue with `nanoresearch resume {self.run_id}`" if self.run_id else "try again"
        fix = f"{last.hint}; " if last.hint else ""
        return EndpointUnavailableError(
            f"endpoint {endpoint!r} ({where}) failed all {self.settings.llm.max_attempts} attempts; "
            f"the last: {last.message}",
            hint=f"{fix}check that the server is up and reachable, then {then}",
        )

    def _record(
        self, endpoint: str, stage: str, asked: LLMRequest, sent: LLMRequest, completion: Completion, failure: str | None
    ) -> None:
        """Keyed by the call as asked, so a resume replays it, with the request as sent (the budget may have
        lowered its max_tokens)."""
        secrets = self._secret_values()
        call = LLMCall(
            key=call_key(endpoint, asked), user_id=self.user_id, run_id=self.run_id, stage=stage,
            provider=endpoint, model=sent.model, request=json.loads(redact(sent.model_dump_json(), secrets)),
            response_text=redact(completion.text, secrets), finish_reason=completion.finish_reason, failure=failure,
            prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
            cost_usd=completion.cost_usd, latency_s=completion.latency_s,
            prompt_ids=completion.prompt_ids, output_ids=completion.output_ids,
        )
        self.store.record_llm_call(call)

    def _secret_values(self) -> list[str]:
        names = {e.api_key_env for e in self.settings.endpoints.values() if e.api_key_env}
        return [os.environ[n] for n in names if len(os.environ.get(n, "")) >= 8]


def judged(completion: Completion, judge: Judge | None) -> Completion:
    """The completion with its parsed object, or RejectedReply when it fails the check."""
    if judge is None:
        return completion
    try:
        parsed = judge(completion)
    except structured.InvalidOutput as exc:
        raise RejectedReply(completion, exc.problem) from None
    return completion.model_copy(update={"parsed": parsed})


def next_request(request: LLMRequest, rejected: RejectedReply, first_limit: int) -> LLMRequest:
    """What to ask after a rejected reply: the same with twice the room, once, if the token limit cut
    it off; otherwise the conversation so far plus the problem, for the model to repair."""
    raised = min(first_limit * 2, MAX_RAISED_TOKENS)
    if rejected.completion.finish_reason == "length" and request.max_tokens == first_limit < raised:
        return request.model_copy(update={"max_tokens": raised})
    messages = structured.repair_messages(request.messages, rejected.completion.text, rejected.problem)
    return request.model_copy(update={"messages": messages})


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    # json.dumps escapes nothing in a typical key, so the plain replacement covers serialized text.
    return text
