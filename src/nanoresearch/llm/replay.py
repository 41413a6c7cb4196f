"""Replay: answer a call from its recording in the store, never from a live model.

Calls are keyed by `call_key(provider, request)`. Replaying with the same provider name, model,
messages and params gives back exactly what was recorded; anything else is a `ReplayMissError`
rather than a silent live call. Lookups are scoped to the user, so one user's recordings never
answer another's calls. A reply recorded as a failure (it failed its schema) is no answer: it is
skipped unless `include_failed` asks for it, to follow a recording into its repair rounds.
"""

from __future__ import annotations

import hashlib
import json

from nanoresearch.errors import ReplayMissError
from nanoresearch.llm.provider import LLMRequest, LLMResponse
from nanoresearch.store import Store
from nanoresearch.store.budget import format_budget

PREFIX = "replay"


def call_key(provider: str, request: LLMRequest) -> str:
    """Stable identity of a call: same provider, model, messages and params -> same key."""
    canonical = json.dumps(
        {
            "provider": provider,
            "model": request.model,
            "messages": [m.model_dump() for m in request.messages],
            "params": request.params(),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def split_replay_endpoint(endpoint: str, default: str) -> tuple[str, bool]:
    """'replay:local' -> ('local', True); 'replay' -> (default, True); 'local' -> ('local', False)."""
    if endpoint == PREFIX:
        return default, True
    if endpoint.startswith(PREFIX + ":"):
        return endpoint.split(":", 1)[1], True
    return endpoint, False


class ReplayProvider:
    def __init__(
        self, store: Store, user_id: int, replays: str, run_id: str | None = None, include_failed: bool = False
    ) -> None:
        self.name = f"{PREFIX}:{replays}"
        self.store = store
        self.user_id = user_id
        self.replays = replays
        self.run_id = run_id  # only this run's recordings, when given
        self.include_failed = include_failed

    def complete(self, request: LLMRequest) -> LLMResponse:
        key = call_key(self.replays, request)
        recorded = self.store.find_llm_call(self.user_id, key, self.run_id, include_failed=self.include_failed)
        if recorded is None:
            last = request.messages[-1].content.replace("\n", " ")[:80] if request.messages else ""
            raise ReplayMissError(
                f"no recording of this call to {self.replays}/{request.model} (key {key[:12]}): {last!r}",
                hint="record it first by running live (llm.replay = 'prefer' or 'off'), "
                "and check that prompt, model and settings match the recorded run",
            )
        return LLMResponse(
            text=recorded.response_text,
            finish_reason=recorded.finish_reason,
            prompt_tokens=recorded.prompt_tokens,
            completion_tokens=recorded.completion_tokens,
            prompt_ids=recorded.prompt_ids,
            output_ids=recorded.output_ids,
        )


RECORDING_VERSION = 1


def export_recording(store: Store, user_id: int, run_id: str) -> dict:
    """A run's LLM calls as a portable recording (secrets were redacted when they were stored)."""
    calls = [call.model_dump(exclude={"user_id", "run_id"}) for call in store.llm_calls(user_id, run_id)]
    run = store.get_run(run_id)
    return {"version": RECORDING_VERSION, "run_id": run_id, "goal": run.goal, "budget": format_budget(run.options.budget),
            "calls": calls}


def import_recording(store: Store, user_id: int, data: dict) -> int:
    """Load a recording for this user, so its calls replay (`llm.replay = "only"` or "prefer")."""
    from pydantic import ValidationError

    from nanoresearch.errors import UserError
    from nanoresearch.store.models import LLMCall

    if not isinstance(data, dict) or data.get("version") != RECORDING_VERSION or not isinstance(data.get("calls"), list):
        raise UserError(f"not a recording of version {RECORDING_VERSION}: expected {{'version', 'run_id', 'calls'}}")
    try:
        calls = [LLMCall.model_validate({**c, "user_id": user_id, "run_id": None}) for c in data["calls"]]
    except (ValidationError, TypeError) as exc:
        raise UserError(f"a call in the recording is malformed: {exc}") from None
    for call in calls:  # charged to no run: replaying them later costs nothing
        store.record_llm_call(call)
    return len(calls)
