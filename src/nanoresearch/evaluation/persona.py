"""The simulated user of a persona: after each stage it approves or comments, through the same
feedback gate a person at the terminal uses (pipeline/orchestrator.py: the answer is stored with the
stage's planner call, filed in memory as the user's words and trained on by the planner's SDPO round).

Two kinds: `scripted` comments derived from the persona's profile (an ablation-focused persona asks for
an ablation of each component after planning, and so on), and `llm`, a model that plays the persona
with its profile and the stage's summary. The model's comments are calls like any other, stored in the
cell's store (outside the run, so they are not charged to the run they judge).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.errors import EndpointUnavailableError, LLMError
from nanoresearch.llm.client import LLM
from nanoresearch.pipeline.orchestrator import Answer
from nanoresearch.profile import Profile, profile_prompt

STYLE_COMMENTS = {
    "evidence-first": "ground each hypothesis in a retrieved paper and say which one",
    "ablation-focused": "prefer hypotheses whose components can each be ablated",
    "dataset-driven": "start from the data: its splits and a strong baseline first",
    "exploratory": "propose bolder hypotheses, even if they may fail",
    "frugal": "prefer hypotheses that are cheap to test",
}
ABLATION_COMMENTS = {
    "every-component": "always include an ablation of each component",
    "key-components": "include an ablation of the key component",
    "none": "skip ablations until something works",
}
RIGOUR_COMMENTS = {
    "strict": "report every result over several seeds",
    "standard": "repeat the main comparison over a few seeds",
    "quick": "one seed is enough for a first look",
}
RISK_COMMENTS = {
    "low": "prefer small, safe changes to the recipe",
    "medium": "try a few real changes to the recipe, not only knob tweaks",
    "high": "try bolder changes to the recipe",
}


def scripted_comments(profile: Profile) -> dict[str, str]:
    """What this persona says after each stage; a stage not listed is approved."""
    comments = {
        "ideation": STYLE_COMMENTS[profile.research_style],
        "planning": f"{ABLATION_COMMENTS[profile.ablation_strictness]}; {RIGOUR_COMMENTS[profile.rigour]}",
        "experiment": RISK_COMMENTS[profile.risk_appetite],
    }
    if profile.writing_style:
        comments["writing"] = profile.writing_style
    return comments


class ScriptedUser:
    """A persona's fixed comments, stage by stage."""

    def __init__(self, profile: Profile) -> None:
        self.comments = scripted_comments(profile)

    def ask(self, stage: str, summary: str) -> Answer | None:
        text = self.comments.get(stage)
        return Answer(action="comment", text=text) if text else Answer(action="approve")


class PersonaReply(BaseModel):
    action: Literal["approve", "comment"]
    text: str = Field("", max_length=240)


class ModelUser:
    """A model playing the persona: its profile, the stage and what the stage did, then one reply."""

    def __init__(self, profile: Profile, llm: LLM, stage_model: str = "review") -> None:
        self.profile, self.llm, self.stage_model = profile, llm, stage_model

    def ask(self, stage: str, summary: str) -> Answer | None:
        prompt = (
            "You are a researcher with this profile; answer as this person would.\n"
            f"{profile_prompt(self.profile)}\n\n"
            f"The research assistant just finished the {stage} stage: <data>{summary}</data>\n"
            "Approve it, or comment in one sentence on what this person wants done differently next time."
        )
        try:
            reply = PersonaReply.model_validate(
                self.llm.complete(prompt, stage=self.stage_model, schema=PersonaReply, max_tokens=80).parsed)
        except EndpointUnavailableError:
            raise
        except (LLMError, ValidationError):  # a model that cannot play the part says nothing, as a person may
            return Answer(action="approve")
        if reply.action == "comment" and reply.text.strip():
            return Answer(action="comment", text=reply.text.strip())
        return Answer(action="approve")


class Silent:
    """feedback = "none": nobody answers, as with `run --yes`."""

    def ask(self, stage: str, summary: str) -> Answer | None:
        return None
