"""The user's profile shapes a run: the planner sees it, its caps bound the budget, rigour sets the seeds."""

from __future__ import annotations

from researcher import ResearcherProvider

from helpers import run_cli
from nanoresearch.cli.research import profile_budget
from nanoresearch.compute.budget import parse_budget
from nanoresearch.pipeline.orchestrator import STAGES, Unattended, run_stage
from nanoresearch.pipeline.stages.planning import Blueprint
from nanoresearch.profile import preset, save_profile


def test_the_planner_prompt_carries_the_profile(make_context, settings) -> None:
    save_profile(settings, preset("ablation-focused"))
    provider = ResearcherProvider()
    ctx = make_context(provider)
    run_stage(ctx, STAGES[0], Unattended())
    planner_prompt = provider.requests[0].messages[-1].content
    assert "User profile (preset ablation-focused)" in planner_prompt
    assert "show what each component contributes" in planner_prompt


def test_hard_caps_lower_the_budget_and_fill_in_missing_limits(settings) -> None:
    save_profile(settings, preset("resource-constrained"))
    budget = parse_budget(profile_budget(settings, "trials=20", "local", gpus=0))
    assert budget.trials == 8 and budget.gpu_hours == 1 and budget.usd == 2  # lowered, and added
    assert parse_budget(profile_budget(settings, "trials=3", "local", gpus=0)).trials == 3  # under the cap: kept


def test_without_a_budget_the_run_takes_the_profiles_usual_one(settings) -> None:
    profile = preset("exploratory").model_copy(update={"compute_budget": "trials=5,wall=10m"})
    save_profile(settings, profile)
    budget = parse_budget(profile_budget(settings, None, "local", gpus=0))
    assert budget.trials == 5 and budget.wall_s == 600


def test_a_forbidden_executor_is_refused_before_the_run_starts(capsys, monkeypatch, settings) -> None:
    run_cli(capsys, monkeypatch, "profile", "set", "hard_constraints.forbid", "slurm")
    result = run_cli(capsys, monkeypatch, "run", "improve digit classification accuracy", "--executor", "slurm",
                     "--offline", "--corpus", "examples/corpus", "--yes")
    assert result.code != 0 and "slurm" in result.err and "Traceback" not in result.err
    assert run_cli(capsys, monkeypatch, "list").out.count("run-") == 0


def test_quick_rigour_runs_one_seed_and_no_ablations_when_the_user_wants_none(make_context, settings) -> None:
    profile = preset("exploratory").model_copy(update={"rigour": "quick", "ablation_strictness": "none"})
    save_profile(settings, profile)
    ctx = make_context(ResearcherProvider())
    for stage in STAGES[:2]:
        run_stage(ctx, stage, Unattended())
    blueprint = Blueprint.model_validate_json((ctx.workspace / "blueprint.json").read_text())
    assert blueprint.seeds == 1 and blueprint.ablations == []
    assert [row.kind for row in blueprint.run_matrix] == ["baseline", "proposed"]
