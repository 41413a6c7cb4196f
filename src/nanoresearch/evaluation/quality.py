"""The research quality of one finished run, measured by code from its store rows and its workspace.

What issue 15's benchmark (bench/bench_research_quality.py) prints for each run: how many of the
model's trial proposals were applied to the recipe and ran, the best improvement over the baseline,
the claims whose quotes were verified, facts in the paper that the fact sheet does not hold, the
citations, the memory records the run wrote (and how many of them are invented preferences or
untested dead ends), the degenerate outputs the gates caught, and the share of model time spent on
the planner and on memory and skill writing. Nothing here asks a model.

The figures are measured, not read from what the run says about itself where code can measure
them again: the paper's facts are checked anew on the final paper.tex, a preference counts as the
user's only when its text is in the user's own words, and a dead end counts as tested only when a
change the model proposed was scored.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from nanoresearch.config import Settings
from nanoresearch.evaluation.judge import read_json
from nanoresearch.evaluation.metrics import improvement, normalised, read_results, scores
from nanoresearch.llm.client import LLM
from nanoresearch.paper.checks import PaperChecks
from nanoresearch.paper.fact_checker import FactContext, check_facts
from nanoresearch.paper.guard import cited_keys
from nanoresearch.paper.results import Results
from nanoresearch.paper.write import BIB_NAME, CHECKS_NAME, TEX_NAME, prose_context
from nanoresearch.pipeline.coevolution.reflect import USER_TYPES, filed_in_this_run
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.gates import read_degenerate
from nanoresearch.pipeline.stages.analysis import MATRIX_PROPOSER
from nanoresearch.pipeline.stages.ideation import Ideas
from nanoresearch.pipeline.stages.writing import fact_sheet, retrieved_papers
from nanoresearch.profile import load_profile
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import MemoryRecord
from nanoresearch.store.models import Run, Trial
from nanoresearch.trials import preflight
from nanoresearch.trials.task import load_task

# Call label -> what the call is for: the co-evolution around the stages. The analysis stage itself
# calls no model; its label carries the memory notes, same-topic judgements and skill distillation.
COEVOLUTION = {"planner": "planner", "analysis": "memory+skills"}
_FLOAT = re.compile(r"\\begin\{(?P<env>table|figure)\*?\}.*?\\end\{(?P=env)\*?\}", re.S)
_STRUCTURE = re.compile(r"\\(?:section|subsection|bibliographystyle|bibliography)\*?\{[^}]*\}|\\(?:begin|end)\{abstract\}"
                        r"|\\maketitle")
_COMMENT = re.compile(r"(?<!\\)%.*")
_TITLE = re.compile(r"\\title\{(?P<title>.*?)\}\s*$", re.M)
_BODY = re.compile(r"\\begin\{document\}(?P<body>.*)\\end\{document\}", re.S)
_BIB_ENTRY = re.compile(r"@\w+\s*\{\s*(?P<key>[^,\s]+)\s*,")


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class Proposals(BaseModel):
    """The model's trial proposals (debugging repairs included; the baseline and the run matrix's cells are code's)."""

    made: int = 0
    applied: int = 0  # the edit matched the recipe and changed it (the trial has a diff)
    ran: int = 0  # the trial's job was started, whatever its score
    caught: int = 0  # refused before running: code saw the edit would crash (trials/preflight.py)
    applied_share: float | None = None
    ran_share: float | None = None


class Citations(BaseModel):
    cited: int = 0  # distinct \cite keys in paper.tex
    bib_entries: int = 0  # entries in references.bib
    cited_without_entry: int = 0  # cited keys references.bib does not hold
    retrieved: int = 0  # papers the run retrieved (ideas.json)


class MemoryCounts(BaseModel):
    """The memory records this run wrote (or supported or contradicted), by what they rest on."""

    by_type: dict[str, int] = {}
    with_evidence: int = 0  # records naming a run, trial or paper they came from
    without_evidence: int = 0
    invented_preferences: list[str] = []  # preference/constraint texts not in the user's own words
    untested_dead_ends: list[str] = []  # failed_hypothesis texts of a run in which no proposed change was scored


class CallTime(BaseModel):
    calls: int = 0
    seconds: float = 0.0


class ModelTime(BaseModel):
    calls: int = 0
    seconds: float = 0.0
    coevolution: dict[str, CallTime] = {}  # purpose (COEVOLUTION's values) -> its calls
    coevolution_seconds: float = 0.0
    coevolution_share: float | None = None  # of all model seconds; None without any


class RunQuality(BaseModel):
    run_id: str
    task: str = ""
    status: str
    success: bool = False  # results.json: a kept change beat the baseline
    baseline: float | None = None
    best: float | None = None
    improvement: float | None = None  # best - baseline, signed so that positive is better
    proposals: Proposals = Proposals()
    claims_verified: int = 0  # claims whose quote ideation found in their own paper
    claims_dropped: int = 0
    paper: bool = False  # the run wrote paper.tex (a negative result writes report.md instead)
    unsupported_facts: list[str] = []  # sentences of the final paper.tex naming facts the fact sheet does not hold
    paper_removed: dict[str, int] = {}  # sentences the writing stage's own checks removed, by check (checks.json)
    citations: Citations = Citations()
    memory: MemoryCounts = MemoryCounts()
    degenerate: int = 0  # degenerate model outputs the gates caught (degenerate.json)
    degenerate_by_stage: dict[str, int] = {}
    model_time: ModelTime = ModelTime()


def measure_run_quality(settings: Settings, store: Store, user_id: int, run: Run) -> RunQuality:
    """Every figure of one run. `settings` are the run's home's: a context to read the run with the
    stages' own functions (the fact sheet, the retrieved papers) is built from them; it calls no model."""
    ctx = reading_context(settings, store, user_id, run)
    trials = store.trials(run.id)
    results = read_results(ctx.workspace)
    ideas = read_ideas(ctx.workspace)
    baseline, best = scores(trials, run.options.direction)
    degenerate = read_degenerate(ctx.workspace)
    paper = ctx.workspace / "paper"
    tex = paper / TEX_NAME
    return RunQuality(
        run_id=run.id, task=ctx.task.name if ctx.task else "", status=f"stopped: {run.stop_reason}" if run.stop_reason else run.status,
        success=bool(results and results.success), baseline=baseline, best=best,
        improvement=improvement(baseline, best, run.options.direction), proposals=count_proposals(trials),
        claims_verified=len(ideas.evidence) if ideas else 0, claims_dropped=len(ideas.evidence_dropped) if ideas else 0,
        paper=tex.is_file(), unsupported_facts=paper_unsupported_facts(ctx, results, tex),
        paper_removed=removed_by_check(paper / CHECKS_NAME),
        citations=count_citations(tex, paper / BIB_NAME, len(ideas.papers) if ideas else 0),
        memory=count_memory(run_records(ctx), user_words(ctx), trials),
        degenerate=len(degenerate), degenerate_by_stage=dict(Counter(d.stage for d in degenerate)),
        model_time=model_time((c.stage, c.latency_s) for c in store.llm_calls(user_id, run.id)),
    )


def reading_context(settings: Settings, store: Store, user_id: int, run: Run) -> RunContext:
    """The run as its stages saw it, to read it with their functions; its LLM is never called."""
    generated = Path(run.workspace) / "task"  # a run started without --task wrote its task here
    folder = run.options.task or (str(generated) if (generated / "task.toml").is_file() else None)
    task = load_task(folder) if folder and Path(folder).is_dir() else None
    return RunContext(settings, store, user_id, run, LLM(settings, store, user_id, run_id=run.id), run.options, task=task)


def read_ideas(workspace: Path) -> Ideas | None:
    data = read_json(workspace / "ideas.json")
    return Ideas.model_validate(data) if data else None


def count_proposals(trials: list[Trial]) -> Proposals:
    proposed = [t for t in trials if t.proposer != "baseline" and not t.proposer.startswith(MATRIX_PROPOSER)]
    applied = sum(1 for t in proposed if t.diff.strip())
    ran = sum(1 for t in proposed if t.job_id)
    caught = sum(1 for t in proposed if t.failure == "bad_proposal" and preflight.MARK in t.detail)
    return Proposals(made=len(proposed), applied=applied, ran=ran, caught=caught,
                     applied_share=share(applied, len(proposed)), ran_share=share(ran, len(proposed)))


# ---------------------------------------------------------------- the paper


def paper_prose(tex: str) -> str:
    """The model-written text of a paper.tex: its title and the body's prose, without the floats
    (tables and figure captions are drawn by code from results.json) and the structural commands."""
    tex = _COMMENT.sub("", tex)
    title = _TITLE.search(tex)
    body = _BODY.search(tex)
    text = body["body"] if body else tex
    text = _STRUCTURE.sub("\n\n", _FLOAT.sub("\n\n", text))
    return ((title["title"] + ".\n\n") if title else "") + text


def unsupported_sentences(tex: str, context: FactContext) -> list[str]:
    """Each sentence of the paper that names a dataset, model family or size the fact sheet does not hold."""
    return [sentence for sentence, _ in check_facts(paper_prose(tex), context)[1]]


def paper_unsupported_facts(ctx: RunContext, results: Results | None, tex: Path) -> list[str]:
    """The fact checker run again on the final paper.tex against the run's fact sheet, rebuilt as the
    writing stage builds it: an independent check of what the paper states, title and repairs included
    (the stage's own removals are in checks.json, counted apart)."""
    if not tex.is_file() or results is None or ctx.task is None:
        return []
    facts = prose_context(results, retrieved_papers(ctx), fact_sheet(ctx, results)).facts
    return unsupported_sentences(tex.read_text(encoding="utf-8"), facts) if facts else []


def removed_by_check(checks_file: Path) -> dict[str, int]:
    data = read_json(checks_file)
    return dict(Counter(r.check for r in PaperChecks.model_validate(data).removed)) if data else {}


def count_citations(tex: Path, bib: Path, retrieved: int) -> Citations:
    cited = cited_keys(tex.read_text(encoding="utf-8")) if tex.is_file() else []
    entries = set(_BIB_ENTRY.findall(bib.read_text(encoding="utf-8"))) if bib.is_file() else set()
    return Citations(cited=len(cited), bib_entries=len(entries), cited_without_entry=len(set(cited) - entries),
                     retrieved=retrieved)


# ---------------------------------------------------------------- memory


def run_records(ctx: RunContext) -> list[MemoryRecord]:
    """The user's records this run wrote (their evidence names it) or filed support or contradiction to."""
    filed = filed_in_this_run(ctx)
    return [r for r in ctx.store.visible_memories(ctx.user_id) if r.user_id == ctx.user_id
            and (r.id in filed or any(e.run_id == ctx.run.id for e in r.evidence))]


def user_words(ctx: RunContext) -> str:
    """Everything the user said that a run may take a preference from: the goal, their feedback on the
    run and their profile, normalised (metrics.normalised) so that a verbatim copy is found in it."""
    feedback = [f.text for f in ctx.store.feedback(ctx.user_id, ctx.run.id)]
    return normalised("\n".join([ctx.run.goal, *feedback, load_profile(ctx.settings).model_dump_json()]))


def scored_change(trials: list[Trial]) -> bool:
    """Whether a change the model proposed ran and was scored: what testing a hypothesis takes."""
    return any(t.proposer != "baseline" and not t.proposer.startswith(MATRIX_PROPOSER) and t.score is not None
               and t.failure is None for t in trials)


def count_memory(records: list[MemoryRecord], words: str, trials: list[Trial]) -> MemoryCounts:
    """`words`: the user's own words, normalised; `trials`: the run's."""
    evidenced = [r for r in records if any(e.run_id or e.trial_id is not None or e.paper for e in r.evidence)]
    invented = [r.text for r in records if r.type in USER_TYPES and f" {normalised(r.text)} " not in f" {words} "]
    tested = scored_change(trials)
    return MemoryCounts(
        by_type=dict(Counter(r.type for r in records)), with_evidence=len(evidenced),
        without_evidence=len(records) - len(evidenced), invented_preferences=invented,
        untested_dead_ends=[r.text for r in records if r.type == "failed_hypothesis" and not tested],
    )


# ---------------------------------------------------------------- model time


def model_time(calls: Iterable[tuple[str | None, float]]) -> ModelTime:
    """(label, seconds) of each model call -> the total and the co-evolution's part of it. Used for a
    run's llm_calls rows here and for a recording's calls by bench/bench_pipeline.py --share-only."""
    total = ModelTime(coevolution={purpose: CallTime() for purpose in COEVOLUTION.values()})
    for label, seconds in calls:
        total.calls += 1
        total.seconds += seconds
        purpose = COEVOLUTION.get(label or "")
        if purpose is not None:
            total.coevolution[purpose].calls += 1
            total.coevolution[purpose].seconds += seconds
            total.coevolution_seconds += seconds
    total.coevolution_share = total.coevolution_seconds / total.seconds if total.seconds else None
    return total
