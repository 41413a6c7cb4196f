"""Fixtures for the dashboard tests: the tiny world, the app, and the app served on a free loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from web_world import World, build_world, free_port

from nanoresearch.config import Settings
from nanoresearch.store import Store


@pytest.fixture
def world(settings: Settings, store: Store) -> World:
    return build_world(settings, store)


@pytest.fixture
def dashboard(request: pytest.FixtureRequest, world: World) -> FastAPI:
    """The app for alice; with the tiny planner's settings when the test asked for `trainable`."""
    from nanoresearch.web.app import create_app

    chosen = request.getfixturevalue("trainable") if "trainable" in request.fixturenames else world
    return create_app(chosen.settings)


@pytest.fixture
def served(dashboard: FastAPI) -> Iterator[str]:
    """The dashboard on a free loopback port in a thread (real uvicorn, real sockets): its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(dashboard, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def tiny_planner_dir(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a Path
    from tiny_planner import write_tiny_planner

    return write_tiny_planner(tmp_path_factory.mktemp("tiny-planner"))


@pytest.fixture
def trainable(world: World, tiny_planner_dir) -> World:  # noqa: ANN001
    """The world with the tiny planner as the user's planner and a finished planning stage whose plan it
    wrote (exact token ids), so that feedback on it trains a real adapter."""
    from nanoresearch.config import load_settings
    from nanoresearch.llm.local_model import load_hf_folder, prompt_ids
    from nanoresearch.store.models import StagePlanRecord
    from tiny_planner import planner_prompt

    settings = load_settings({
        "stages": {"planner": {"model": str(tiny_planner_dir)}},
        "policy": {"steps": 6, "lr": 0.02, "lora_r": 4, "lora_alpha": 8, "min_relevance": 0.0, "replay": 2,
                   "drift_kl_max": 100.0, "drift_ppl_ratio_max": 100.0},
    })
    lm = load_hf_folder(tiny_planner_dir)
    plan = '{"objectives": ["train a small network"], "constraints": ["use three seeds"], "budget_share": "50%"}'
    messages = planner_prompt(world.run.goal, "planning")
    user_id = world.store.ensure_user(settings.user)
    plan_id = world.store.save_stage_plan(StagePlanRecord(
        user_id=user_id, run_id=world.run.id, stage="planning", provider="local", model=settings.stage("planner").model,
        prompt=[m.model_dump() for m in messages], prompt_ids=prompt_ids(lm, messages), output_text=plan,
        output_ids=lm.tokenizer(plan, add_special_tokens=False)["input_ids"], plan={}))
    world.store.save_step(world.run.id, "planning", "stage", "done", {"summary": "a blueprint", "plan_id": plan_id})
    return world.model_copy(update={"settings": settings})
