"""User profiles: how one person likes research done, and the limits they set.

A profile lives in `~/.nanoresearch/users/<user>/profile.toml`. Its soft preferences (style, risk,
rigour, venue, writing) go into the planner's prompt; its hard constraints are applied to the run
budget before any work starts, so the ledger enforces them.

    profile = load_profile(settings)           # the default preset when the user has no file
    text = profile_prompt(profile)              # a short block for the planner prompt
    budget, notes = cap_budget_text("trials=10,gpu_hours=8", profile)
    check_allowed(profile, gpus=1, executor="slurm")   # UserError when the profile forbids it
"""

from nanoresearch.profile.enforce import cap_budget_text, capped_budget, check_allowed, format_budget
from nanoresearch.profile.models import HardConstraints, Profile
from nanoresearch.profile.presets import DEFAULT_PRESET, PRESETS, preset
from nanoresearch.profile.render import profile_prompt
from nanoresearch.profile.store import load_profile, profile_path, save_profile

__all__ = [
    "DEFAULT_PRESET", "PRESETS", "HardConstraints", "Profile", "cap_budget_text", "capped_budget", "check_allowed",
    "format_budget", "load_profile", "preset", "profile_path", "profile_prompt", "save_profile",
]
