"""How the lineage of trials is shown: to the LLM as a results table, to people as a tree."""

from __future__ import annotations

from rich.tree import Tree

from nanoresearch.store.models import Trial


def head(trials: list[Trial], direction: str) -> Trial | None:
    """The best kept trial: the code new proposals start from."""
    kept = [t for t in trials if t.kept and t.score is not None]
    if not kept:
        return None
    pick = max if direction == "maximize" else min
    return pick(kept, key=lambda t: t.score)


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


def render_tree(trials: list[Trial], direction: str) -> Tree:
    best = head(trials, direction)
    root = Tree("[bold]lineage[/]")
    nodes: dict[int, Tree] = {}
    for t in trials:
        style = "bold green" if best and t.id == best.id else ("red" if t.failure else ("green" if t.kept else "dim"))
        label = f"[{style}]#{t.id} {t.proposer}: {outcome_text(t)}[/] {_short(t.hypothesis)}"
        parent = nodes.get(t.parent_id) if t.parent_id else None
        nodes[t.id] = (parent or root).add(label)
    return root


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
