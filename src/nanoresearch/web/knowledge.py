"""The user's knowledge page: skills with provenance and success rate, memory search with the score
components, and the planner policy's adapter versions with their gap, margins and drift."""

from __future__ import annotations

from pydantic import BaseModel

from nanoresearch.config import Settings
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.policy.adapters import active_version, policy_paths, read_metrics, version_numbers
from nanoresearch.policy.metrics import UpdateMetrics
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import Hit, Skill

MEMORY_HITS = 10


class SkillRow(BaseModel):
    skill: Skill
    runs: list[str]  # provenance runs that belong to this user (linked); others are listed by count only
    foreign: int  # provenance entries from runs the page may not show (a shared skill learned elsewhere)

    @property
    def success_rate(self) -> float | None:
        return self.skill.successes / self.skill.uses if self.skill.uses else None


class VersionRow(BaseModel):
    version: int
    active: bool
    metrics: UpdateMetrics | None  # None: the version's figures are missing or unreadable


def skill_rows(settings: Settings, store: Store, user_id: int) -> list[SkillRow]:
    mine = {run.id for run in store.list_runs(user_id)}
    rows = []
    for skill in SkillBank(settings, store, user=settings.user).list_skills():
        runs = [p.run_id for p in skill.provenance if p.run_id in mine]
        rows.append(SkillRow(skill=skill, runs=runs, foreign=len(skill.provenance) - len(runs)))
    return rows


def memory_hits(store: Store, user_id: int, query: str) -> list[Hit]:
    if not query.strip():
        return []
    return Memory(store, user_id).search(query, k=MEMORY_HITS)


def policy_versions(settings: Settings) -> list[VersionRow]:
    """Newest first: the latest round is what the user just caused."""
    paths = policy_paths(settings)
    active = active_version(paths)
    return [VersionRow(version=v, active=v == active, metrics=read_metrics(paths, v))
            for v in reversed(version_numbers(paths))]
