"""The one entry point the rest of NanoResearch uses to talk to a model.

`LLM.complete()` resolves a stage to its endpoint and model, then for each call:
reuse a recording when replay allows it, else call the provider with retries on transient errors;
record the call; charge tokens and dollars to the ledger; and for structured calls validate the
reply against the schema and ask the model to repair it a bounded number of times.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pydantic import BaseModel
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from nanoresearch.config import Settings
from nanoresearch.errors import (
    ReplayMissError,
    StructuredOutputError,
    TransientLLMError,
)
from nanoresearch.llm import structured
from nanoresearch.llm.pricing import call_cost
from nanoresearch.llm.provider import (
    LLMRequest,
    LLMResponse,
    Message,
    Provider,
    ProviderContext,
    create_provider,
)
from nanoresearch.llm.replay import ReplayProvider, call_key, split_replay_endpoint
from nanoresearch.store import Store
from nanoresearch.store.models import LLMCall

REDACTED = "[REDACTED]"


class Completion(BaseModel):
    text: str
    parsed: Any = None
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float = 0.0
    replayed: bool = False
    attempts: int = 1  # 1 + number of repair rounds for structured calls
    prompt_ids: list[int] | None = None  # exact token ids, from local models
    output_ids: list[int] | None = None


class LLM:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        user_id: int,
        run_id: str | None = None,
        providers: dict[str, Provider] | None = None,
        replay_within_run: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.user_id = user_id
        self.run_id = run_id
        # A resumed run answers its own earlier calls from the store, so nothing paid is paid
        # twice, without letting another run's recordings stand in for fresh calls.
        self.replay_within_run = replay_within_run
        self._providers: dict[str, Provider] = dict(providers or {})

    def provider(self, endpoint: str) -> Provider:
        if endpoint not in self._providers:
            ctx = ProviderContext(self.settings)
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
            seed=seed,
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
        totals = {"prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0}
        cost: float | None = 0.0
        problem = ""
        rounds = self.settings.llm.max_repairs + 1
        for attempt in range(1, rounds + 1):
            completion = self._call(endpoint, stage, request)
            for key in totals:
                totals[key] += getattr(completion, key)
            cost = None if cost is None or completion.cost_usd is None else cost + completion.cost_usd
            try:
                parsed = structured.parse(completion.text, schema, model)
            except structured.InvalidOutput as exc:
                problem = exc.problem
                request = request.model_copy(
                    update={"messages": structured.repair_messages(request.messages, completion.text, problem)}
                )
                continue
            return completion.model_copy(update={"parsed": parsed, "attempts": attempt, "cost_usd": cost, **totals})
        raise StructuredOutputError(
            f"{endpoint}/{request.model} gave no valid JSON for the schema after {rounds} attempts; last problem: {problem}",
            hint="use a stronger model for this stage, or raise llm.max_repairs",
        )

    def _call(self, endpoint: str, stage: str, request: LLMRequest) -> Completion:
        endpoint, replay_only = split_replay_endpoint(endpoint, self.settings.stage(stage).endpoint)
        mode = "only" if replay_only else self.settings.llm.replay
        if mode == "off" and self.replay_within_run and self.run_id:
            mode = "prefer"
        if mode != "off":
            scope = self.run_id if self.replay_within_run and mode == "prefer" else None
            try:
                response = ReplayProvider(self.store, self.user_id, endpoint, run_id=scope).complete(request)
                return Completion(
                    text=response.text, provider=endpoint, model=request.model,
                    prompt_tokens=response.prompt_tokens, completion_tokens=response.completion_tokens,
                    cost_usd=0.0, replayed=True, prompt_ids=response.prompt_ids, output_ids=response.output_ids,
                )
            except ReplayMissError:
                if mode == "only":
                    raise
        key = call_key(endpoint, request)
        provider = self.provider(endpoint)
        started = time.perf_counter()
        response = self._with_retries(provider, request)
        latency = time.perf_counter() - started
        kind = self.settings.endpoint(endpoint).kind
        cost = call_cost(self.settings.prices, kind, request.model, response.prompt_tokens, response.completion_tokens)
        self._record(key, endpoint, stage, request, response, cost, latency)
        return Completion(
            text=response.text, provider=endpoint, model=request.model,
            prompt_tokens=response.prompt_tokens, completion_tokens=response.completion_tokens,
            cost_usd=cost, latency_s=latency, prompt_ids=response.prompt_ids, output_ids=response.output_ids,
        )

    def _with_retries(self, provider: Provider, request: LLMRequest) -> LLMResponse:
        cfg = self.settings.llm
        retrying = Retrying(
            stop=stop_after_attempt(cfg.max_attempts),
            wait=wait_exponential_jitter(multiplier=cfg.backoff_initial_s, max=cfg.backoff_max_s, jitter=cfg.backoff_initial_s),
            retry=retry_if_exception_type(TransientLLMError),
            reraise=True,
        )
        return retrying(provider.complete, request)

    def _record(
        self, key: str, endpoint: str, stage: str, request: LLMRequest, response: LLMResponse,
        cost: float | None, latency: float,
    ) -> None:
        secrets = self._secret_values()
        call = LLMCall(
            key=key, user_id=self.user_id, run_id=self.run_id, stage=stage, provider=endpoint,
            model=request.model, request=json.loads(redact(request.model_dump_json(), secrets)),
            response_text=redact(response.text, secrets), finish_reason=response.finish_reason,
            prompt_tokens=response.prompt_tokens, completion_tokens=response.completion_tokens,
            cost_usd=cost, latency_s=latency, prompt_ids=response.prompt_ids, output_ids=response.output_ids,
        )
        self.store.record_llm_call(call)

    def _secret_values(self) -> list[str]:
        names = {e.api_key_env for e in self.settings.endpoints.values() if e.api_key_env}
        return [os.environ[n] for n in names if len(os.environ.get(n, "")) >= 8]


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    # json.dumps escapes nothing in a typical key, so the plain replacement covers serialized text.
    return text
