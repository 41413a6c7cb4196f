"""Ready-made profiles. Each differs where the people it is named after differ, nowhere else."""

from __future__ import annotations

from nanoresearch.errors import UserError
from nanoresearch.profile.models import HardConstraints, Profile

DEFAULT_PRESET = "evidence-first"

PRESETS: dict[str, Profile] = {
    "evidence-first": Profile(
        preset="evidence-first", research_style="evidence-first", risk_appetite="low", rigour="strict",
        ablation_strictness="key-components", compute_budget="trials=10,wall=20m", venue="NeurIPS",
        writing_style="measured claims; limitations stated plainly",
    ),
    "ablation-focused": Profile(
        preset="ablation-focused", research_style="ablation-focused", risk_appetite="medium", rigour="strict",
        # Ablating every component over seeds costs trials, so the default budget is larger.
        ablation_strictness="every-component", compute_budget="trials=16,wall=40m", venue="ICML",
        writing_style="organise the method around what each component contributes",
    ),
    "dataset-driven": Profile(
        preset="dataset-driven", research_style="dataset-driven", risk_appetite="medium", rigour="standard",
        ablation_strictness="key-components", compute_budget="trials=12,wall=30m",
        venue="NeurIPS Datasets and Benchmarks",
        writing_style="describe the data, splits and their limits before the method",
    ),
    "exploratory": Profile(
        preset="exploratory", research_style="exploratory", risk_appetite="high", rigour="quick",
        # Many cheap, bold trials; ablations wait until something works.
        ablation_strictness="none", compute_budget="trials=20,wall=30m", venue="workshop",
        writing_style="short and direct; report negative results plainly",
    ),
    "resource-constrained": Profile(
        preset="resource-constrained", research_style="frugal", risk_appetite="low", rigour="standard",
        ablation_strictness="key-components", compute_budget="trials=6,wall=15m", venue="arXiv preprint",
        writing_style="concise; state the compute used",
        # A laptop and a few dollars: these caps hold whatever budget a run asks for.
        hard_constraints=HardConstraints(max_trials=8, max_wall_minutes=30, max_gpu_hours=1, max_tokens=300_000,
                                         max_usd=2),
    ),
}

DESCRIPTIONS: dict[str, str] = {
    "evidence-first": "ground every claim in retrieved papers and measured results; low risk, strict rigour",
    "ablation-focused": "show what each component contributes: ablate every component over seeds",
    "dataset-driven": "start from the data: datasets, splits and baselines first",
    "exploratory": "many cheap, bold hypotheses; quick checks, no ablations until something works",
    "resource-constrained": "a laptop and a few dollars: small, cheap experiments under hard caps",
}


def preset(name: str) -> Profile:
    """A fresh copy of the named preset (callers may change it without touching the table)."""
    try:
        return PRESETS[name].model_copy(deep=True)
    except KeyError:
        raise UserError(f"unknown preset {name!r}", hint=f"presets: {', '.join(PRESETS)}") from None
