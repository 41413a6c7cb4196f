"""What the skill bank and the memory hold, as pydantic models.

A `Skill` is one `SKILL.md` folder: the Agent Skills front matter (`name`, `description`) plus our
fields, and the procedure in the body. A `MemoryRecord` is one thing learned about a user's
research (a preference, a failed hypothesis, a result, ...), scoped to the user and optionally a
project. Both are private to their owner unless `visibility` is "shared".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Visibility = Literal["private", "shared"]
KnowledgeKind = Literal["skill", "memory"]
MemoryType = Literal["preference", "constraint", "failed_hypothesis", "promising_direction", "result", "decision", "lesson"]
MEMORY_TYPES: tuple[str, ...] = MemoryType.__args__  # type: ignore[attr-defined]

# How fast a record's importance halves with age (days since it was written or last supported).
# What a user wants lasts; what one experiment showed fades unless it is confirmed again.
IMPORTANCE_HALF_LIFE_DAYS: dict[str, float] = {
    "preference": 365.0,
    "constraint": 365.0,
    "failed_hypothesis": 180.0,
    "promising_direction": 90.0,
    "result": 180.0,
    "decision": 180.0,
    "lesson": 180.0,
}

# The Agent Skills rule for names: lowercase letters, digits and single hyphens, at most 64.
SKILL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_DESCRIPTION = 1024


def half_life_decay(age_days: Any, half_life_days: Any) -> Any:
    """0.5 ** (age / half-life): 1 when new, 0.5 after one half-life; works on floats and numpy arrays."""
    return 0.5 ** (age_days / half_life_days)


def utcnow() -> datetime:
    """Now, in whole seconds: what SKILL.md front matter can hold."""
    return datetime.now(UTC).replace(microsecond=0)


def normalise_label(label: str) -> str:
    """Tags and stages compare as lowercase words joined by hyphens: "Learning rate" == "learning-rate"."""
    return "-".join(re.findall(r"[^\W_]+", label.lower()))


def normalise_labels(labels: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for label in labels:
        norm = normalise_label(str(label))
        if norm:
            seen[norm] = None
    return list(seen)


class Provenance(BaseModel):
    """Where a skill was learned: a run and the trials of it that showed the procedure working."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    trial_ids: list[int] = []


class Skill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    tags: list[str] = []
    stages: list[str] = []  # the pipeline stages it helps (ideation, planning, experiment, ...); empty: any
    version: int = Field(1, ge=1)
    provenance: list[Provenance] = []
    uses: int = Field(0, ge=0)
    successes: int = Field(0, ge=0)
    created: datetime = Field(default_factory=utcnow)
    updated: datetime = Field(default_factory=utcnow)
    visibility: Visibility = "private"
    extra: dict[str, Any] = {}  # front-matter keys we do not know (license, allowed-tools, ...), kept as they are
    body: str = ""  # the procedure (markdown)
    owner: str | None = None  # the user a private skill belongs to; None for a shared one
    path: Path | None = None  # the skill's folder
    id: int = 0  # its row in the store's index (not written to the file)

    @field_validator("name")
    @classmethod
    def _agent_skills_name(cls, value: str) -> str:
        if len(value) > 64 or not SKILL_NAME.match(value):
            raise ValueError(f"{value!r} is not a skill name: use lowercase letters, digits and single hyphens (at most 64)")
        return value

    @field_validator("description")
    @classmethod
    def _short_description(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the description is empty")
        if len(value) > MAX_DESCRIPTION:
            raise ValueError(f"the description has {len(value)} characters; the limit is {MAX_DESCRIPTION}")
        return value

    @field_validator("tags", "stages")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return normalise_labels(value)

    @field_validator("created", "updated")
    @classmethod
    def _aware_seconds(cls, value: datetime) -> datetime:
        """Whole seconds, as SKILL.md writes them, so a skill compares equal to itself read back."""
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).replace(microsecond=0)

    @property
    def success_rate(self) -> float:
        """Laplace-smoothed: an unused skill counts as 0.5, not as 0 or 1."""
        return (self.successes + 1) / (self.uses + 2)


class Conditions(BaseModel):
    """Under what conditions a record holds; free text each, all optional."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    method: str | None = None
    budget: str | None = None
    failure_mode: str | None = None

    def as_text(self) -> str:
        return " ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.model_dump().items() if v)


class Evidence(BaseModel):
    """What a record rests on: a run, a trial of it, a paper (key, DOI or title)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = None
    trial_id: int | None = None
    paper: str | None = None


class MemoryRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = 0
    user_id: int = 0  # the owner; Memory.remember fills it in
    project_id: int | None = None  # None: about the user, for every project
    visibility: Visibility = "private"
    type: MemoryType
    text: str = Field(min_length=1, max_length=4000)
    conditions: Conditions = Conditions()
    evidence: list[Evidence] = []
    tags: list[str] = []
    stages: list[str] = []
    importance: float = Field(0.5, ge=0.0, le=1.0)
    confidence: float = Field(0.7, ge=0.0, le=1.0)
    support: int = Field(0, ge=0)
    contradictions: int = Field(0, ge=0)
    contradicts: list[int] = []  # records this one conflicts with (the link is stored both ways)
    created: datetime = Field(default_factory=utcnow)
    updated: datetime = Field(default_factory=utcnow)
    reinforced: datetime = Field(default_factory=utcnow)  # creation or last support: importance decays from here

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the text is empty")
        return value.strip()

    @field_validator("tags", "stages")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return normalise_labels(value)

    @field_validator("created", "updated", "reinforced")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Hit(BaseModel):
    """One retrieval result: the item, its score in [0, 1] and each component that made it."""

    item: Skill | MemoryRecord
    score: float
    components: dict[str, float]


@dataclass
class IndexEntry:
    """What the retriever needs of one skill or memory record: the store builds these for a scope."""

    id: int
    document: str  # the text that BM25 and the embedding see
    tags: list[str]
    stages: list[str]
    updated: str  # ISO time
    embedder: str | None = None
    vector: bytes | None = None
    uses: int = 0
    successes: int = 0
    importance: float = 0.0
    confidence: float = 0.0
    reinforced: str = ""
    project_id: int | None = None
    type: str = ""


@dataclass
class SkillFileState:
    """How a SKILL.md looked when it was indexed: a changed size or mtime means read it again."""

    path: str  # the skill's folder
    sha256: str
    mtime_ns: int
    size: int
    id: int = 0
