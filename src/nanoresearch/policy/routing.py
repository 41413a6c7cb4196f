"""Which weights the planner's calls use: the base model, or the user's active LoRA adapter.

The adapter version is part of the model name (`smollm2-135m+lora:v3`), so every recorded planner
call says which version wrote the plan, and a call recorded under one version never replays
under another. The local provider reads the suffix and generates with `load_planner`, which
only ever opens the adapters of the user the settings belong to.
"""

from __future__ import annotations

from nanoresearch.config import Settings
from nanoresearch.errors import UserError
from nanoresearch.llm.local import LORA
from nanoresearch.policy.adapters import active_version, check_version, planner_base, policy_paths


def planner_model_name(settings: Settings) -> tuple[str | None, str | None]:
    """(model name for the planner's calls, or None for the stage default; why the adapter is not used, or None)."""
    stage = settings.stage("planner")
    if settings.endpoint(stage.endpoint).kind != "local":
        return None, None
    paths = policy_paths(settings)
    try:
        version = active_version(paths)
        if version is None:
            return None, None
        check_version(paths, version, planner_base(settings))
    except UserError as exc:  # a broken adapter never stops a run: the base planner plans
        return None, f"{exc.message}; the base planner is used"
    return f"{stage.model}{LORA}v{version}", None

