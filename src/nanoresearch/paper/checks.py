"""checks.json: what the paper's checks removed, repaired and flagged, so that nothing is compiled silently.

Written beside paper.tex by `write_paper`; the writing stage logs each item to the run log and its
summary (shown by `nanoresearch status`) counts them.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel

Check = Literal["guard", "facts", "claims"]
RepairKind = Literal["markdown", "cut_off", "empty_section", "bibliography"]


class Removal(BaseModel):
    section: str
    check: Check  # guard: typed number or undefined macro; facts: not on the fact sheet; claims: not in results.json
    sentence: str
    reason: str


class Repair(BaseModel):
    section: str
    kind: RepairKind
    detail: str


class PaperChecks(BaseModel):
    removed: list[Removal] = []
    removed_cite_keys: list[str] = []  # cited keys that are not among the retrieved papers
    repairs: list[Repair] = []

    def summary(self) -> str:
        """One line for the stage summary: '3 sentences removed (2 facts, 1 claims), 2 repairs (markdown, cut_off)'."""
        parts = []
        if self.removed:
            by_check = Counter(r.check for r in self.removed)
            parts.append(
                f"{len(self.removed)} sentence(s) removed ({', '.join(f'{n} {c}' for c, n in by_check.items())})"
            )
        if self.removed_cite_keys:
            parts.append(f"{len(self.removed_cite_keys)} unknown cite key(s) removed")
        if self.repairs:
            kinds = ", ".join(dict.fromkeys(r.kind for r in self.repairs))
            parts.append(f"{len(self.repairs)} repair(s) ({kinds})")
        return "; ".join(parts)
