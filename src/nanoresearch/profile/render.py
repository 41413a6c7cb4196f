"""The profile as a short block of the planner's prompt."""

from __future__ import annotations

from nanoresearch.profile.models import HardConstraints, Profile

MAX_CHARS = 600  # the planner's prompt is small (a 135M model by default); the profile gets this much

# One line of what each style asks of the planner, so a small model need not know the label.
STYLE_GUIDANCE = {
    "evidence-first": "tie every claim to a cited paper or a measured result",
    "ablation-focused": "show what each component contributes",
    "dataset-driven": "start from the data, its splits and baselines",
    "exploratory": "try bold ideas cheaply, keep what works",
    "frugal": "smallest experiment that can answer the question",
}


def profile_prompt(profile: Profile) -> str:
    """A compact text block (at most MAX_CHARS) describing the user's preferences and hard limits."""
    lines = [
        f"User profile (preset {profile.preset}):",
        f"- style: {profile.research_style} ({STYLE_GUIDANCE[profile.research_style]}); "
        f"risk appetite {profile.risk_appetite}; rigour {profile.rigour}; ablations {profile.ablation_strictness}",
        f"- venue: {profile.venue}" + (f"; writing: {profile.writing_style}" if profile.writing_style else ""),
        f"- hard limits per run (enforced): {limits_text(profile.hard_constraints)}",
    ]
    text = "\n".join(lines)
    if profile.notes:
        # The notes are the user's words: quoted as data, and shortened rather than overflow.
        room = MAX_CHARS - len(text) - len("\n- notes: <data></data>")
        notes = profile.notes if len(profile.notes) <= room else profile.notes[: max(room - 1, 0)] + "…"
        text += f"\n- notes: <data>{notes}</data>"
    return text[:MAX_CHARS]


def limits_text(constraints: HardConstraints) -> str:
    """'gpu_hours<=1, usd<=2, no gpu', or 'none'."""
    values = constraints.model_dump(exclude={"forbid"}, exclude_none=True)
    parts = [f"{name.removeprefix('max_')}<={value:g}" for name, value in values.items()]
    if constraints.forbid:
        parts.append("no " + ", no ".join(constraints.forbid))
    return ", ".join(parts) or "none"
