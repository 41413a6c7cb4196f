"""The co-evolution switches: a run with a level off neither reads nor writes that level's state,
and the run records which levels were on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.compute.budget import ModelCallGate
from nanoresearch.config import Settings, load_settings
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.llm.client import LLM
from nanoresearch.pipeline.coevolution.distill import distill_skills
from nanoresearch.pipeline.coevolution.planner import plan_stage
from nanoresearch.pipeline.coevolution.reflect import reflect
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.orchestrator import STAGES, Answer, run_stage, train_planner
from nanoresearch.pipeline.stages.ideation import past_hypotheses
from nanoresearch.policy.adapters import active_version, policy_paths
from nanoresearch.policy.train import after_feedback, at_end_of_run
from nanoresearch.runs import new_run
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import MemoryRecord, Skill
from nanoresearch.store.models import RunOptions, Trial
from pipeline.researcher import ResearcherProvider

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "tasks" / "digits-classifier"
CORPUS = REPO / "examples" / "corpus"
GOAL = "improve handwritten digit classification accuracy"
COMMENT = "always include an ablation of each component"


def context(settings: Settings, store: Store, levels: list[str]) -> RunContext:
    options = RunOptions.model_validate({"task": str(DIGITS), "budget": "trials=4", "offline": True,
                                         "corpus": str(CORPUS), "coevolution": levels})
    run_settings = settings.for_run(options.coevolution)
    user_id = store.ensure_user(run_settings.user)
    run = new_run(store, run_settings, user_id, "digits", GOAL, options, kind="research")
    llm = LLM(run_settings, store, user_id, run_id=run.id, providers={"local": ResearcherProvider()},
              replay_within_run=True, budget=ModelCallGate(store, user_id, run.id))
    from nanoresearch.trials.task import load_task

    return RunContext(run_settings, store, user_id, run, llm, options, task=load_task(DIGITS))


class Commenting:
    def ask(self, stage: str, summary: str) -> Answer:
        return Answer(action="comment", text=COMMENT)


def seed_knowledge(settings: Settings, store: Store) -> None:
    """A memory and a skill about exactly this goal, so a run with the level on recalls them."""
    user_id = store.ensure_user(settings.user)
    Memory(store, user_id).remember(MemoryRecord(type="failed_hypothesis", text=GOAL + " with a deeper network",
                                                 tags=["hypothesis"], stages=["ideation"], importance=0.9))
    SkillBank(settings, store).add_skill(Skill(
        name="digit-accuracy-search", description="how to improve handwritten digit classification accuracy",
        stages=["ideation", "planning"], tags=["digits"], body="1. Search the literature on digit classification.\n"))


def test_the_run_command_records_the_levels_its_flags_leave_on(capsys, monkeypatch, home: Path) -> None:
    monkeypatch.setenv("NANORESEARCH_LLM__REPLAY", "only")  # the run stops at its first model call: no recording
    result = run_cli(capsys, monkeypatch, "run", GOAL, "--task", str(DIGITS), "--offline", "--corpus", str(CORPUS),
                     "--budget", "trials=2", "--yes", "--no-memory", "--no-policy")
    assert result.code != 0
    with Store(load_settings().db_path) as store:
        (run,) = store.list_runs(store.ensure_user("alice"))
    assert run.options.coevolution == ["skills"]


def test_the_settings_switch_a_level_off_for_every_run(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[coevolution]\nskills = false\n")
    settings = load_settings()
    assert settings.coevolution.levels_on() == ["memory", "policy"]
    assert settings.for_run(["policy"]).coevolution.levels_on() == ["policy"]


def test_without_memory_a_run_recalls_and_writes_no_memory(settings: Settings, store: Store) -> None:
    seed_knowledge(settings, store)
    before = len(Memory(store, store.ensure_user(settings.user)).list())
    for levels, expect_memory in ((["skills", "policy"], False), (["skills", "memory", "policy"], True)):
        ctx = context(settings, store, levels)
        run_stage(ctx, STAGES[0], Commenting())
        written = reflect(ctx, "ideation")
        recalled = json.loads((ctx.workspace / "plans" / "ideation.recall.json").read_text())
        assert bool(recalled["memories"]) is expect_memory, levels
        assert bool(past_hypotheses(ctx)) is expect_memory, levels  # ideation's dead ends come from memory
        assert bool(written) is expect_memory, levels  # the user's comment is filed only with memory on
        if not expect_memory:
            assert len(Memory(store, ctx.user_id).list()) == before


def test_without_skills_a_run_recalls_and_distils_no_skill(settings: Settings, store: Store) -> None:
    seed_knowledge(settings, store)
    for levels, expect_skills in ((["memory", "policy"], False), (["skills", "memory", "policy"], True)):
        ctx = context(settings, store, levels)
        plan_stage(ctx, "ideation", STAGES[0].description)
        recalled = json.loads((ctx.workspace / "plans" / "ideation.recall.json").read_text())
        assert bool(recalled["skills"]) is expect_skills, levels
        store.add_trial(Trial(run_id=ctx.run.id, proposer="coding", hypothesis="ten times the solver iterations",
                              diff="-max_iter=10\n+max_iter=100", command="python train.py", executor="local",
                              status="done", kept=True, score=0.95))
        skills_before = len(SkillBank(settings, store).list_skills())
        outcomes = distill_skills(ctx)
        assert bool(outcomes) is expect_skills, levels
        assert (len(SkillBank(settings, store).list_skills()) > skills_before) is expect_skills


def test_without_policy_nothing_trains_at_the_end_of_a_run(settings: Settings, store: Store) -> None:
    off = settings.for_run(["skills", "memory"])
    assert at_end_of_run(off, store) == []
    background = off.model_copy(update={"policy": off.policy.model_copy(update={"when": "background"})})
    assert after_feedback(background) is None


@pytest.mark.slow  # a (tiny) planner model with weights
def test_without_policy_the_planner_is_the_base_model_and_feedback_does_not_train(settings: Settings, store: Store,
                                                                                   tmp_path: Path) -> None:
    from tiny_planner import write_tiny_planner

    tiny = str(write_tiny_planner(tmp_path / "tiny-planner"))
    base = load_settings({
        "endpoints": {"planner": {"kind": "local", "default_model": tiny}},
        "stages": {"planner": {"endpoint": "planner", "model": tiny}}, "local": {"engine": "transformers"},
        "policy": {"steps": 2, "lr": 0.02, "lora_r": 4, "lora_alpha": 8, "min_relevance": 0.0, "replay": 0,
                   "drift_kl_max": 100.0, "drift_ppl_ratio_max": 100.0},
    })
    trained = context(base, store, ["skills", "memory", "policy"])
    run_stage(trained, STAGES[0], Commenting())
    assert train_planner(trained)[0]["version"] == 1  # with the level on, the comment trains v1

    off = context(base, store, ["skills", "memory"])
    run_stage(off, STAGES[0], Commenting())
    (plan,) = store.stage_plans(off.user_id, off.run.id)
    assert "+lora:" not in plan.model  # the base planner, though v1 is active
    assert train_planner(off) == []
    assert active_version(policy_paths(base)) == 1
