"""The planner's policy in a run: feedback on a stage trains the user's adapter at the end of the run,
and the next run's planner plans with it; another user's planner stays the base model."""

from __future__ import annotations

import json

import pytest
from researcher import ResearcherProvider

from nanoresearch.config import load_settings
from nanoresearch.pipeline.orchestrator import STAGES, Answer, run_stage, train_planner
from nanoresearch.policy.adapters import active_version, policy_paths
from tiny_planner import write_tiny_planner

FEEDBACK = "always include an ablation of each component"


class Commenting:
    def ask(self, stage: str, summary: str) -> Answer:
        return Answer(action="comment", text=FEEDBACK)


@pytest.fixture
def tiny_settings(home, tmp_path):
    """Every stage on the researcher model except the planner: a tiny random local model with weights to train."""
    tiny = str(write_tiny_planner(tmp_path / "tiny-planner"))
    return load_settings({
        "endpoints": {"planner": {"kind": "local", "default_model": tiny}},
        "stages": {"planner": {"endpoint": "planner", "model": tiny}},
        "local": {"engine": "transformers"},
        "policy": {"steps": 4, "lr": 0.02, "lora_r": 4, "lora_alpha": 8, "min_relevance": 0.0, "replay": 0,
                   "drift_kl_max": 100.0, "drift_ppl_ratio_max": 100.0},
    })


@pytest.mark.slow  # trains a (tiny) adapter; MiniLM for recall
def test_feedback_trains_the_adapter_that_plans_the_next_run_and_only_for_that_user(make_context, tiny_settings) -> None:
    first = make_context(ResearcherProvider(), base=tiny_settings)
    run_stage(first, STAGES[0], Commenting())
    (plan,) = first.store.stage_plans(first.user_id, first.run.id)
    assert plan.output_ids and first.store.feedback(first.user_id, first.run.id)[0].plan_id == plan.id

    (round_,) = train_planner(first)
    assert round_["status"] == "trained" and round_["version"] == 1, round_
    assert active_version(policy_paths(tiny_settings)) == 1
    metrics = json.loads((policy_paths(tiny_settings).version(1) / "metrics.json").read_text())
    assert {"before", "after"} <= set(metrics)

    second = make_context(ResearcherProvider(), base=tiny_settings)
    run_stage(second, STAGES[0], Commenting())
    (planned,) = second.store.stage_plans(second.user_id, second.run.id)
    assert planned.model.endswith("+lora:v1")  # the next run's planner is the trained adapter

    other = make_context(ResearcherProvider(), base=tiny_settings, user="bob")
    run_stage(other, STAGES[0], Commenting())
    (theirs,) = other.store.stage_plans(other.user_id, other.run.id)
    assert "+lora:" not in theirs.model and active_version(policy_paths(tiny_settings, "bob")) is None
