"""Pipeline fixtures: a research run in a tmp home, driven by an injected provider."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from researcher import ResearcherProvider

from nanoresearch.compute.budget import ModelCallGate
from nanoresearch.config import Settings
from nanoresearch.llm.client import LLM
from nanoresearch.pipeline.context import RunContext, RunOptions
from nanoresearch.policy.adapters import adapter_loader
from nanoresearch.runs import new_run
from nanoresearch.store import Store
from nanoresearch.trials.task import load_task

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "tasks" / "digits-classifier"
CORPUS = REPO / "examples" / "corpus"
GOAL = "improve handwritten digit classification accuracy"

MakeContext = Callable[..., RunContext]


@pytest.fixture
def make_context(settings: Settings, store: Store) -> MakeContext:
    """A new research run on the digits task, offline on the example corpus, with `provider` as the model."""

    def make(provider: object | None = None, task: Path | None = DIGITS, real_model: bool = False, user: str | None = None,
             base: Settings | None = None, **options: object) -> RunContext:
        fields = {"task": str(task) if task else None, "budget": "trials=8", "offline": True,
                  "corpus": str(CORPUS), **options}
        opts = RunOptions.model_validate(fields)
        chosen = base or settings
        who = chosen.model_copy(update={"user": user}) if user else chosen
        user_id = store.ensure_user(who.user)
        run = new_run(store, who, user_id, "digits", GOAL, opts, kind="research")
        providers = {} if real_model else {"local": provider or ResearcherProvider()}
        llm = LLM(who, store, user_id, run_id=run.id, providers=providers, replay_within_run=True,
                  budget=ModelCallGate(store, user_id, run.id), adapters=adapter_loader(who))
        return RunContext(who, store, user_id, run, llm, opts, task=load_task(opts.task) if opts.task else None)

    return make


def resumed(ctx: RunContext, provider: object) -> RunContext:
    """The same run opened again, as `nanoresearch resume` does, with a fresh provider."""
    llm = LLM(ctx.settings, ctx.store, ctx.user_id, run_id=ctx.run.id, providers={"local": provider},
              replay_within_run=True, budget=ModelCallGate(ctx.store, ctx.user_id, ctx.run.id),
              adapters=adapter_loader(ctx.settings))
    return RunContext(ctx.settings, ctx.store, ctx.user_id, ctx.store.get_run(ctx.run.id), llm, ctx.options, task=ctx.task)
