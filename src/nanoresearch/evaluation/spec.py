"""The spec of an `eval run` (a TOML file; docs/evaluation.md#the-spec).

    name = "digits-two-rounds"
    variants = ["full", "static"]          # full, no_skills, no_memory, no_policy, static (all off)
    seeds = [0]
    budget = "trials=2"                    # each round's run
    offline = true
    corpus = "../corpus"                   # paths are relative to the spec file

    [[personas]]
    name = "ablation"                      # also the user name in its homes
    preset = "ablation-focused"            # or: profile = "profiles/me.toml"
    feedback = "scripted"                  # or "llm": a model plays the persona

    [[rounds]]
    goal = "improve handwritten digit classification accuracy"
    task = "../tasks/digits-classifier"

    [models.planner]                       # [stages.<role>] of config.toml, per stage
    model = "smollm2-135m"

    [settings]                             # any other settings for every cell, as in config.toml
    policy = { steps = 4 }

    [judge]
    enabled = true                         # alignment and novelty judged by a model (stage, model)
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nanoresearch.compute.budget import parse_budget
from nanoresearch.config import MODEL_ROLES, USER_NAME
from nanoresearch.errors import UserError
from nanoresearch.profile import PRESETS
from nanoresearch.store.models import COEVOLUTION_LEVELS, CoevolutionLevel

Variant = Literal["full", "no_skills", "no_memory", "no_policy", "static"]
DEFAULT_VARIANTS: tuple[Variant, ...] = ("full", "static")
# The levels each variant leaves on.
VARIANT_LEVELS: dict[str, list[CoevolutionLevel]] = {
    "full": list(COEVOLUTION_LEVELS),
    "no_skills": ["memory", "policy"],
    "no_memory": ["skills", "policy"],
    "no_policy": ["skills", "memory"],
    "static": [],
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Persona(Strict):
    name: str
    preset: str | None = None
    profile: Path | None = None  # a profile TOML file (as `nanoresearch profile` writes it)
    feedback: Literal["scripted", "llm", "none"] = "scripted"

    @field_validator("name")
    @classmethod
    def _a_user_name(cls, value: str) -> str:
        if not USER_NAME.fullmatch(value):
            raise ValueError("a persona's name is its user name: letters, digits, '.', '_' or '-'")
        return value

    @field_validator("preset")
    @classmethod
    def _a_known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; presets: {', '.join(PRESETS)}")
        return value

    @model_validator(mode="after")
    def _one_profile(self) -> Persona:
        if (self.preset is None) == (self.profile is None):
            raise ValueError("give a persona either `preset` or `profile`, not both or neither")
        return self


class Round(Strict):
    goal: str = Field(min_length=10)
    task: Path


class Judge(Strict):
    enabled: bool = True
    stage: str = "review"  # whose model judges (its [stages.<role>]), unless `model` names one
    endpoint: str | None = None
    model: str | None = None


class EvalSpec(Strict):
    name: str = Field(min_length=1, max_length=80)
    personas: list[Persona] = Field(min_length=1)
    rounds: list[Round] = Field(min_length=1)
    variants: list[Variant] = Field(default_factory=lambda: list(DEFAULT_VARIANTS), min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    budget: str = "trials=4"
    offline: bool = False
    corpus: Path | None = None
    executor: str = "local"
    models: dict[str, dict[str, Any]] = {}  # role -> [stages.<role>] fields
    settings: dict[str, Any] = {}  # other settings sections for every cell
    judge: Judge = Judge()

    @field_validator("models")
    @classmethod
    def _known_roles(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(value) - set(MODEL_ROLES))
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(MODEL_ROLES)}")
        return value

    @field_validator("variants", "seeds")
    @classmethod
    def _no_repeats(cls, value: list) -> list:
        if len(set(value)) != len(value):
            raise ValueError("listed twice")
        return value

    @model_validator(mode="after")
    def _unique_personas(self) -> EvalSpec:
        names = [p.name for p in self.personas]
        if len(set(names)) != len(names):
            raise ValueError("two personas share a name")
        if self.offline and self.corpus is None:
            raise ValueError("offline needs a local corpus (corpus = \"DIR\")")
        return self


def load_spec(path: Path) -> EvalSpec:
    """The spec in `path`, its relative paths resolved against the file's folder; bad input is a UserError naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"spec file {path} does not exist", hint="see examples/eval/ for a spec") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: not a readable TOML file: {exc}") from None
    return parse_spec(data, path.resolve().parent, str(path))


def parse_spec(data: dict[str, Any], folder: Path, where: str) -> EvalSpec:
    try:
        spec = EvalSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"{where}: {problems}", hint="docs/evaluation.md describes every key of a spec") from None
    try:
        parse_budget(spec.budget)
    except UserError as exc:
        raise UserError(f"{where}: budget: {exc.message}", hint=exc.hint) from None
    return resolved(spec, folder, where)


def resolved(spec: EvalSpec, folder: Path, where: str) -> EvalSpec:
    def path(value: Path, what: str) -> Path:
        full = value if value.is_absolute() else (folder / value).resolve()
        if not full.exists():
            raise UserError(f"{where}: {what} {value} does not exist (looked in {full})")
        return full

    return spec.model_copy(update={
        "rounds": [r.model_copy(update={"task": path(r.task, "task folder")}) for r in spec.rounds],
        "personas": [p.model_copy(update={"profile": path(p.profile, "profile file") if p.profile else None})
                     for p in spec.personas],
        "corpus": path(spec.corpus, "corpus folder") if spec.corpus else None,
    })
