"""What the start of a run says about its models when only the planner is a small one: the research
stages on a 1.5B GGUF are real work, so the run is not called a demonstration (issue 15)."""

from __future__ import annotations

from pathlib import Path

from nanoresearch.config import Settings
from nanoresearch.doctor import run_start_lines

RESEARCH_STAGES = ("ideation", "planning", "coding", "analysis", "writing", "review")
DEMONSTRATION = "this run demonstrates the mechanics"


def with_stages(settings: Settings, gguf: Path, small: tuple[str, ...]) -> Settings:
    """The lead's configuration: a 1.5B GGUF for every research stage but `small`, which keep SmolLM2."""
    stages = {role: {"endpoint": "local", "model": "smollm2-135m" if role in small else str(gguf)}
              for role in (*RESEARCH_STAGES, "planner")}
    return settings.model_copy(update={"stages": settings.stages.model_validate(stages)})


def test_a_small_planner_alone_is_said_plainly_not_called_a_demonstration(settings: Settings, tmp_path: Path) -> None:
    lines = run_start_lines(with_stages(settings, tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", ("planner",)))
    assert not any(DEMONSTRATION in line for line in lines)
    (planner,) = [line for line in lines if line.startswith("the planner")]
    assert "local/smollm2-135m" in planner and "small model" in planner
    assert "labels" in planner and "adapter" in planner and "docs/co-evolution.md" in planner


def test_a_small_model_on_any_research_stage_makes_the_run_a_demonstration(settings: Settings, tmp_path: Path) -> None:
    gguf = tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    for stage in RESEARCH_STAGES:
        lines = run_start_lines(with_stages(settings, gguf, ("planner", stage)))
        assert any(DEMONSTRATION in line for line in lines), stage
        assert not any(line.startswith("the planner") for line in lines), stage


def test_a_real_planner_and_real_stages_get_neither_line(settings: Settings, tmp_path: Path) -> None:
    lines = run_start_lines(with_stages(settings, tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", ()))
    assert all(line.startswith("model ") for line in lines)
