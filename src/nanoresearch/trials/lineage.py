"""The lineage of trials as the LLM sees it: the head to start from, outcomes, a results table, recent failures.

The tree people see is drawn by the command line (`nanoresearch trials tree`)."""

from __future__ import annotations

from nanoresearch.store.models import Trial


def head(trials: list[Trial], direction: str) -> Trial | None:
    """The best kept trial: the code new proposals start from."""
    kept = [(t.score, t) for t in trials if t.kept and t.score is not None]
    if not kept:
        return None
    pick = max if direction == "maximize" else min
    return pick(kept, key=lambda scored: scored[0])[1]


def outcome_text(trial: Trial) -> str:
    if trial.status in ("proposed", "running"):
        return trial.status
    if trial.failure:
        return f"FAILED {trial.failure}"
    return f"{trial.score:.4g}" + (" kept" if trial.kept else " reverted")


def results_table(trials: list[Trial], limit: int = 20) -> str:
    """The recent trials as a plain-text table for prompts (ids, parents, outcomes, hypotheses)."""
    rows = ["id | parent | proposer | outcome | hypothesis"]
    for t in trials[-limit:]:
        hypothesis = " ".join(t.hypothesis.split())[:100]
        rows.append(f"{t.id} | {t.parent_id or '-'} | {t.proposer} | {outcome_text(t)} | {hypothesis}")
    return "\n".join(rows)


def failures_text(trials: list[Trial], limit: int = 5) -> str:
    failed = [t for t in trials if t.failure][-limit:]
    if not failed:
        return "none so far"
    lines = []
    for t in failed:
        reason = " ".join((t.detail or t.logs_tail[-300:]).split())[:300]
        lines.append(f"trial {t.id} ({t.failure}): {reason}")
    return "\n".join(lines)

