"""Can a hypothesis be tested on the run's task, and does it serve the goal?

A trial may change only what the task lets it: the files matching `legality.editable` and the
knobs the recipe reads. The data, its split and the score belong to the frozen evaluator in every
task, so "more training samples" cannot be tested however promising it sounds. Feasibility is
judged by code from what the hypothesis says it changes (files, knobs, the change itself) against
the task folder.

Relevance is the mean of two measures, because MiniLM alone rates a hypothesis about machine
translation (0.22) as close to "improve handwritten digit classification accuracy" as one about
the digits recipe's solver (0.22): the embedding similarity to the goal, and the share of the
hypothesis's words (crudely stemmed) that the goal, the task's description and its recipe use.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from nanoresearch.knowledge.embeddings import cosine, default_embedder
from nanoresearch.trials.task import Task, editable_files

# Below this relevance a hypothesis is about something else. On the digits task, nine hypotheses
# written for the calibration scored 0.31-0.61 when on the topic and 0.11-0.24 when off it.
RELEVANCE_FLOOR = 0.27
# Selection score = feasibility × (RELEVANCE_WEIGHT × relevance + (1 − RELEVANCE_WEIGHT) × novelty):
# an idea must serve the goal before its distance from the literature counts.
RELEVANCE_WEIGHT = 0.6
ANCHORED, UNANCHORED = 1.0, 0.5  # the change names something the recipe contains / only a file it may edit

# What the evaluator owns in every task: more data, another split or another score cannot be a trial.
MORE_DATA = re.compile(
    r"\b(more|additional|extra|larger|bigger|increas\w*|collect\w*|gather\w*|add\w*|doubl\w*|expand\w*)"
    r"(\W+\w+){0,4}?\W+(training (data|samples|examples|set|images)|data ?sets?|data|samples|examples|images|labels)\b",
    re.IGNORECASE)
EVALUATION = re.compile(
    r"\b(train(ing)?[-/ ]?(test|validation)[- ]split|test[- ]set|held[- ]out (set|split|data)|"
    r"evaluation (metric|script|protocol)|the evaluator|the split)\b", re.IGNORECASE)
# "accuracy on the held-out split" says where a result is measured, not that the split changes (the
# 1.5B's "raise MAX_ITER ... to improve its accuracy on the held-out split" was refused for it).
MEASURED_ON = re.compile(r"\b(on|over|across|in|against|using|with)\W+(the\W+|a\W+|its\W+|our\W+)?(fixed\W+|frozen\W+|same\W+)?$",
                         re.IGNORECASE)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*(?<![=!<>])=(?!=)")  # MAX_ITER = 20, max_iter=100
STEM = 5  # letters kept of a word: converge/converging, regression/regressions meet
COMMON = set(
    "the a an of to in on and or for with by from is are be this that it its their more less than as at into up down "
    "can will would should may lets let use using make makes made improve improves improved better higher lower raise "
    "raises raising increase increases reduce reduces each per via".split())


class Feasibility(BaseModel):
    score: float  # 0: cannot be tested on the task; UNANCHORED or ANCHORED otherwise
    reason: str


def task_files(task: Task) -> list[str]:
    """Every file of the task folder a hypothesis could name (the manifest and caches aside)."""
    found = []
    for path in sorted(task.folder.rglob("*")):
        relative = path.relative_to(task.folder).as_posix()
        if path.is_file() and relative != "task.toml" and not any(p.startswith((".", "__")) for p in Path(relative).parts):
            found.append(relative)
    return found


def allowed_changes(task: Task) -> str:
    """The prompt's account of what a trial may change, so hypotheses are proposed within it."""
    editable = editable_files(task)
    frozen = [f for f in task_files(task) if f not in editable]
    knobs = "; ".join(f"{name} (default {k.default:g}, lowest {k.min:g})" for name, k in task.knobs.items())
    return (
        f"A trial may change only these files: {', '.join(editable)}"
        + (f"; and these knobs the recipe reads: {knobs}" if knobs else "")
        + f".\nFrozen: {', '.join(frozen) or 'the evaluator'}: the data, its split and the score belong to the "
        "evaluator, so no hypothesis may add data, change the split or change how the score is computed."
    )


def judge_feasibility(text: str, files: list[str], knobs: list[str], task: Task | None, change: str = "") -> Feasibility:
    """Whether a hypothesis (its words, its `change` and the files and knobs it names) can be tested on the task.

    Knobs reach the recipe through the environment, so a change that only sets knobs the task allows
    touches no file, whatever the hypothesis's file list says."""
    if task is None:
        return Feasibility(score=ANCHORED, reason="no task yet: the planning stage writes one for this hypothesis")
    editable = editable_files(task)
    files = list(dict.fromkeys(files))  # a model may name one file three times
    frozen = [f for f in files if f not in editable]
    only_knobs = knobs_set_alone(change, task)
    unknown = [k for k in knobs if k not in task.knobs]
    touches = data_or_evaluation(text)
    if frozen and not only_knobs:
        return Feasibility(score=0.0, reason=f"changes {', '.join(frozen)}, which the task freezes")
    if unknown:
        return Feasibility(score=0.0, reason=f"sets {', '.join(unknown)}, which the recipe does not read")
    if touches:
        return Feasibility(score=0.0, reason=f"needs {touches.group(0)!r}: the data, split and score are the evaluator's")
    if frozen:
        return Feasibility(score=ANCHORED, reason=(
            f"sets {', '.join(only_knobs)}, {'a knob' if len(only_knobs) == 1 else 'knobs'} the task allows (its file "
            f"list names {', '.join(frozen)}, which a knob does not touch)"))
    changed = [f for f in files if f in editable]
    if not changed and not knobs:
        return Feasibility(score=0.0, reason="names no file or knob of the recipe that it changes")
    anchors = sorted(recipe_identifiers(task) & {w.casefold() for w in IDENTIFIER.findall(text)} | {k.casefold() for k in knobs})
    if anchors:
        return Feasibility(score=ANCHORED, reason=f"changes {', '.join(changed or knobs)}: {', '.join(anchors[:4])}")
    return Feasibility(score=UNANCHORED, reason=f"changes {', '.join(changed)}, but names nothing the recipe contains")


def knobs_set_alone(change: str, task: Task) -> list[str]:
    """The knobs `change` sets when setting knobs the task allows is all it does (every assignment in it sets
    one, and it names no frozen file, no new data and nothing of the evaluation); [] otherwise."""
    assigned = list(dict.fromkeys(ASSIGNMENT.findall(change)))
    editable = editable_files(task)
    frozen = [f for f in task_files(task) if f not in editable]
    if not assigned or any(name not in task.knobs for name in assigned):
        return []
    if any(f.casefold() in change.casefold() for f in frozen) or data_or_evaluation(change):
        return []
    return assigned


def data_or_evaluation(text: str) -> re.Match[str] | None:
    """Where the text asks for more data or another split or score, which the evaluator owns."""
    more_data = MORE_DATA.search(text) if "augment" not in text.casefold() else None
    return more_data or next((m for m in EVALUATION.finditer(text) if not MEASURED_ON.search(text[: m.start()])), None)


def recipe_identifiers(task: Task) -> set[str]:
    """Names in the editable files a concrete change would mention: max_iter, LogisticRegression, MAX_ITER."""
    found = {name.casefold() for name in task.knobs}
    for code in recipe_text(task):
        found |= {w.casefold() for w in IDENTIFIER.findall(code) if len(w) >= 4 and ("_" in w.strip("_") or _camel(w))}
    return found


def relevance(texts: list[str], goal: str, task: Task | None) -> list[float]:
    """How much each text is about the goal on this task, in [0, 1] (the module docstring says how)."""
    embedder = default_embedder()
    about = f"{goal}. {task.description}" if task else goal
    similarity = cosine(embedder.embed(texts), embedder.embed([about]))
    vocabulary = stems(about + " " + " ".join(recipe_text(task))) if task else stems(about)
    return [round((max(0.0, float(row[0])) + _shared(stems(text_), vocabulary)) / 2, 4)
            for row, text_ in zip(similarity, texts)]


def stems(text: str) -> set[str]:
    """The text's words, identifiers split (max_iter → max, iter; LogisticRegression → logistic, regression)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ")
    return {w.casefold()[:STEM] for w in re.findall(r"[A-Za-z][A-Za-z0-9]*", spaced)
            if len(w) >= 3 and w.casefold() not in COMMON}


def recipe_text(task: Task) -> list[str]:
    return [(task.folder / f).read_text(encoding="utf-8", errors="replace") for f in editable_files(task)]


def _shared(words: set[str], vocabulary: set[str]) -> float:
    return len(words & vocabulary) / len(words) if words else 0.0


def selection_score(feasibility: float, relevance_: float, novelty: float) -> float:
    return round(feasibility * (RELEVANCE_WEIGHT * relevance_ + (1 - RELEVANCE_WEIGHT) * novelty), 4)


def _camel(word: str) -> bool:
    return any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)
