"""Skills and memories across runs: distilled and written by one run, recalled by the next, never by another user."""

from __future__ import annotations

import json

import pytest
from researcher import ResearcherProvider

from helpers import ScriptedProvider
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.llm.provider import LLMRequest, LLMResponse
from nanoresearch.pipeline.coevolution.distill import SkillCandidates, distill_skills
from nanoresearch.pipeline.coevolution.recall import count_uses
from nanoresearch.pipeline.coevolution.reflect import file_record, reflect_run
from nanoresearch.pipeline.orchestrator import STAGES, Unattended, run_pipeline, run_stage
from nanoresearch.pipeline.stages.ideation import Ideas
from nanoresearch.store.knowledge_models import MemoryRecord, Skill
from nanoresearch.store.models import Trial

RELATED_GOAL = "raise the accuracy of a handwritten digit classifier with better training"


def events(ctx, name: str) -> list[dict]:
    lines = (ctx.workspace / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


@pytest.mark.slow  # one whole run and the first stages of two more
def test_a_second_run_recalls_what_the_first_taught_and_another_users_run_does_not(make_context) -> None:
    first = make_context(ResearcherProvider())
    run_pipeline(first, Unattended())
    learned = json.loads((first.workspace / "skills.json").read_text())
    assert [o["decision"] for o in learned["outcomes"]] == ["new"]
    trials = learned["provenance"]["trial_ids"]
    assert trials and all(first.store.trial(t).kept for t in trials)  # provenance: the kept, improving trials
    skill = SkillBank(first.settings, first.store).get_skill(learned["outcomes"][0]["skill"])
    assert skill.provenance[0].run_id == first.run.id and skill.uses == 0
    records = Memory(first.store, first.user_id).list()
    outcome = [r for r in records if "hypothesis" in r.tags]
    assert len(outcome) == 1 and outcome[0].type == "promising_direction"  # the kept trial beat the baseline
    assert outcome[0].evidence[0].run_id == first.run.id

    second = make_context(ResearcherProvider(), goal=RELATED_GOAL)
    for stage in STAGES[:2]:
        run_stage(second, stage, Unattended())
    plan = json.loads((second.workspace / "plans" / "planning.json").read_text())
    assert skill.name in [s["name"] for s in plan["recalled"]["skills"]]
    assert plan["skills"] == [skill.name] and skill.name in plan["procedures"]  # chosen, and its procedure injected
    assert {m["id"] for m in plan["recalled"]["memories"]} & {r.id for r in records}
    assert events(second, "skills_used")[0]["skills"] == [skill.name]
    assert SkillBank(second.settings, second.store).get_skill(skill.name).uses >= 1

    stranger = make_context(ResearcherProvider(), goal=RELATED_GOAL, user="mallory")
    run_stage(stranger, STAGES[0], Unattended())
    seen = json.loads((stranger.workspace / "plans" / "ideation.json").read_text())["recalled"]
    assert seen == {"skills": [], "memories": []}
    prompt = (stranger.workspace / "plans" / "ideation.recall.json").read_text()
    assert skill.name not in prompt


class Distiller(ResearcherProvider):
    """Proposes fixed candidate skills and judges every related pair a merge."""

    def __init__(self, candidates: list[dict]) -> None:
        super().__init__()
        self.candidates = candidates
        self.judged = 0

    def complete(self, request: LLMRequest) -> LLMResponse:
        props = (request.json_schema or {}).get("properties", {})
        if "skills" in props and "procedure" in json.dumps(request.json_schema):
            return LLMResponse(text=json.dumps({"skills": self.candidates}), finish_reason="stop")
        if "decision" in props:
            self.judged += 1
            return LLMResponse(text='{"decision": "merge"}', finish_reason="stop")
        return super().complete(request)


EXISTING = [
    Skill(name="more-solver-iterations", description="Give an iterative solver more iterations when it stops before converging",
          tags=["optimisation"], stages=["experiment"], body="1. Find max_iter.\n2. Multiply it by ten.\n3. Compare the score."),
    Skill(name="train-longer", description="Train for more epochs when the validation curve is still rising",
          tags=["optimisation"], stages=["experiment"], body="1. Plot the validation curve.\n2. Double the epochs while it rises."),
]
CANDIDATES = [
    {"name": "ten-times-iterations", "description": "Give an iterative solver more iterations when it stops early",
     "stages": ["experiment"], "tags": ["optimisation"], "procedure": EXISTING[0].body},  # the same procedure
    {"name": "longer-training-curves", "description": "Train for more epochs while the validation accuracy curve still rises",
     "stages": ["experiment"], "tags": ["schedule"], "procedure": "1. Log validation accuracy per epoch.\n2. Add epochs until it flattens."},
    {"name": "cite-primary-sources", "description": "Cite the paper that introduced a dataset when describing it",
     "stages": ["writing"], "tags": ["writing"], "procedure": "1. Find the dataset's original paper.\n2. Cite it in the experiments section."},
]


def kept_trial(ctx) -> Trial:
    return ctx.store.add_trial(Trial(run_id=ctx.run.id, proposer="optimizer", hypothesis="ten times the solver's iterations",
                                     diff="-max_iter=MAX_ITER\n+max_iter=MAX_ITER * 10", command="python train.py",
                                     executor="local", status="done", kept=True, score=0.97))


@pytest.mark.slow  # MiniLM
def test_distillation_drops_a_duplicate_merges_a_variant_and_adds_a_new_skill(make_context) -> None:
    provider = Distiller(CANDIDATES)
    ctx = make_context(provider)
    bank = SkillBank(ctx.settings, ctx.store)
    for skill in EXISTING:
        bank.add_skill(skill)
    trial = kept_trial(ctx)

    outcomes = {o.candidate: o for o in distill_skills(ctx)}

    assert outcomes["ten-times-iterations"].decision == "duplicate"
    assert outcomes["ten-times-iterations"].similar_to == "more-solver-iterations"
    assert outcomes["longer-training-curves"].decision == "merge" and provider.judged == 1
    merged = SkillBank(ctx.settings, ctx.store).get_skill("train-longer")
    assert merged.version == 2 and "Add epochs until it flattens" in merged.body
    assert merged.provenance[-1].run_id == ctx.run.id and merged.provenance[-1].trial_ids == [trial.id]
    assert "schedule" in merged.tags
    assert outcomes["cite-primary-sources"].decision == "new"
    new = SkillBank(ctx.settings, ctx.store).get_skill("cite-primary-sources")
    assert new.provenance[0].trial_ids == [trial.id] and new.visibility == "private"
    assert len(SkillBank(ctx.settings, ctx.store).list_skills()) == 3


def test_a_skill_name_in_camel_case_or_snake_case_is_spelled_by_code_not_refused() -> None:
    # The recorded 1.5B run answered "IncreaseTrainingIterations" three times to a pattern it never met.
    draft = {"description": "When the solver stops early.", "stages": ["planning"], "procedure": "1. Raise max_iter tenfold. 2. Rerun."}
    names = ["IncreaseTrainingIterations", "tune_solver  iterations!", "raise-max-iter"]
    parsed = SkillCandidates.model_validate({"skills": [{**draft, "name": name} for name in names]})
    assert [s.name for s in parsed.skills] == ["increase-training-iterations", "tune-solver-iterations", "raise-max-iter"]
    schema = SkillCandidates.model_json_schema()["$defs"]["SkillDraft"]["properties"]["name"]
    assert "pattern" not in schema and "hyphens" in schema["description"]
    with pytest.raises(ValueError, match="at least one letter"):
        SkillCandidates.model_validate({"skills": [{**draft, "name": "!!"}]})


def test_a_run_with_nothing_that_worked_distils_nothing(make_context) -> None:
    ctx = make_context(Distiller(CANDIDATES))
    assert distill_skills(ctx) == []
    assert SkillBank(ctx.settings, ctx.store).list_skills() == []
    assert "nothing to learn" in json.loads((ctx.workspace / "skills.json").read_text())["note"]


class Contradicting(ResearcherProvider):
    def complete(self, request: LLMRequest) -> LLMResponse:
        if "relation" in (request.json_schema or {}).get("properties", {}):
            return LLMResponse(text='{"relation": "contradicts"}', finish_reason="stop")
        return super().complete(request)


@pytest.mark.slow  # MiniLM
def test_a_contradicting_observation_lowers_the_old_records_confidence_and_links_both(make_context) -> None:
    ctx = make_context(Contradicting())
    mine = Memory(ctx.store, ctx.user_id)
    old = mine.remember(MemoryRecord(user_id=ctx.user_id, type="result", text="Feature scaling does not change digit accuracy",
                                     confidence=0.8))
    new_id = file_record(ctx, MemoryRecord(user_id=ctx.user_id, type="result",
                                           text="Feature scaling does change digit accuracy a lot", confidence=0.6))
    before, after = old, mine.get(old.id)
    assert after.confidence < before.confidence and after.contradictions == 1
    assert new_id in after.contradicts and old.id in mine.get(new_id).contradicts


@pytest.mark.slow  # MiniLM
def test_ideation_will_not_choose_a_hypothesis_that_already_failed(make_context) -> None:
    ctx = make_context(ResearcherProvider())
    # The researcher model's hypothesis, remembered as a dead end from an earlier run.
    Memory(ctx.store, ctx.user_id).remember(MemoryRecord(
        user_id=ctx.user_id, type="failed_hypothesis", tags=["hypothesis"],
        text="More solver iterations let logistic regression converge and classify digits better",
    ))
    run_stage(ctx, STAGES[0], Unattended())
    ideas = Ideas.model_validate_json((ctx.workspace / "ideas.json").read_text())
    assert all(h.dead_end for h in ideas.hypotheses)
    assert ideas.hypotheses[0].closest.kind == "past hypothesis" and ideas.hypotheses[0].closest.failed
    assert "dead ends already tried" in ideas.reason


def test_a_stage_counts_its_skills_once_even_when_resumed_and_survives_a_removed_skill(make_context) -> None:
    ctx = make_context(ResearcherProvider())
    bank = SkillBank(ctx.settings, ctx.store)
    bank.add_skill(EXISTING[0])
    count_uses(ctx, "experiment", 7, ["more-solver-iterations", "since-removed"], succeeded=True)
    count_uses(ctx, "experiment", 7, ["more-solver-iterations", "since-removed"], succeeded=True)  # resumed
    skill = SkillBank(ctx.settings, ctx.store).get_skill("more-solver-iterations")
    assert (skill.uses, skill.successes) == (1, 1)
    assert events(ctx, "skill_use_not_counted")[0]["skill"] == "since-removed"


@pytest.mark.slow  # MiniLM
def test_a_run_that_repeats_itself_supports_a_memory_once_at_most(make_context) -> None:
    note = {"type": "lesson", "text": "The solver stopped before converging at ten iterations", "stage": "experiment"}
    ctx = make_context(ScriptedProvider(json.dumps({"records": [note, note, note]})))  # the same note three times
    reflect_run(ctx)
    (record,) = Memory(ctx.store, ctx.user_id).list()
    assert record.support == 0 and record.evidence[0].run_id == ctx.run.id
