"""Gates against degenerate model output: the checks every free-text field a stage keeps must pass.

A small model fills a schema with the schema's own words (`"strengths"`, `"Claim 1"`), with
placeholders (`"True"`, `"Draft"`, `"none"`), with counting (`"1. 1. 2. 3. 4. 5."`) or with the goal
copied back. The JSON is valid, so the structured-output repair lets it through; these gates catch
it. A stage asks once more with the gate's message (`gated_complete`), and what is still degenerate
is dropped, replaced by what code knows, or labelled: every such output is recorded in the run's
`degenerate.json` and log (`record_degenerate`), so `status` and the paper can say which outputs
were degenerate.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from nanoresearch.errors import EndpointUnavailableError, LLMError
from nanoresearch.pipeline.context import RunContext

DEGENERATE_FILE = "degenerate.json"  # {"outputs": [Degenerate, ...]}: what `status` and the paper read
REPAIR_ROUNDS = 1  # a degenerate answer is asked for again once; a model that echoes rarely recovers later

PLACEHOLDERS = {
    "true", "false", "none", "null", "nil", "na", "n a", "tbd", "todo", "draft", "untitled", "example",
    "placeholder", "string", "text", "lorem ipsum", "unknown", "yes", "no", "ok", "answer", "same",
    # JSON-schema keywords, which a small model copies from the format instruction
    "type", "items", "properties", "object", "array", "enum", "required", "integer", "number", "boolean",
}
# A word of the form the schema names, numbered or not: "Claim 1", "strength", "Hypothesis #2".
NUMBERED_FORM_WORD = re.compile(
    r"(claim|hypothesis|strength|weakness|question|idea|item|point|step|option|example|baseline|dataset|method|"
    r"query|title|summary|answer|description|name)s?\s*#?\d*", re.IGNORECASE)
SCHEMA_TEXT = re.compile(
    r"max_?items|min_?items|max_?length|min_?length|\$defs|\$ref|additional_?properties|json schema|"
    r"\"type\"\s*:|\btype\s*:\s*'?(array|string|object|integer|number)", re.IGNORECASE)
NUMBER_TOKEN = re.compile(r"[\d.,;:()#/%+-]+")
GOAL_COPY_RATIO = 0.9  # this similar to the goal (difflib ratio) is a copy of it, not an answer
# A line that must say what to do (a plan objective or constraint) needs this many words of its own:
# words neither in what it was given, nor stop words, nor vague ones.
OWN_WORDS_NEEDED = 2
STOP_WORDS = frozenset(
    "a an the and or but of to in on at for from by with as into onto than then so such that this these those "
    "it its is are be been being was were will would can could should may might must do does did done have has "
    "had more less most least very much many few all any each every some no not our we us you your they them "
    "their which what who how when where while if also only just over under about per via up down out".split())
# Words that fit any plan and so name nothing to do: "refine the process", "improve performance".
VAGUE_WORDS = frozenset(
    "improve improved improving improvement improvements enhance enhanced enhancing refine refined refining "
    "optimize optimise optimized optimised optimizing better best good great process approach overall general "
    "quality performance thing things stuff work task tasks".split())
WORD = re.compile(r"[a-z0-9_]+")


class Degenerate(BaseModel):
    """One degenerate output of a run, and what became of it."""

    stage: str
    field: str  # where in the stage's output: "hypotheses[0].statement", "blueprint.title"
    value: str
    reason: str
    outcome: Literal["dropped", "labelled", "replaced by code"] = "labelled"


class Finding(BaseModel):
    """A problem one gate found in an answer: said to the model in the repair round, recorded if it stays."""

    field: str
    value: str
    reason: str
    degenerate: bool = True  # False: real content that is wrong (a quote not in its paper), not degenerate output

    def message(self) -> str:
        return f"{self.field} = {self.value[:80]!r}: {self.reason}"


def degenerate_reason(value: str, goal: str = "", names: Collection[str] = ()) -> str | None:
    """Why `value`, written in a free-text field, is no real content; None when it may be.

    `names` are the field names of the schema (an echo of one is no answer) and `goal` the run's goal
    (a copy of it is no hypothesis, claim or title)."""
    text = " ".join(value.split())
    plain = _plain(text)
    if not plain:
        return "empty, or no words at all"
    if plain in PLACEHOLDERS:
        return f"a placeholder ({text!r}), not content"
    if plain in {_plain(n) for n in names} or _singular(plain) in {_singular(_plain(n)) for n in names}:
        return f"echoes the field name {text!r} instead of filling it"
    if NUMBERED_FORM_WORD.fullmatch(text):
        return f"a numbered placeholder ({text!r}), not content"
    if SCHEMA_TEXT.search(text):
        return "repeats the schema's text instead of answering"
    if _number_list(text):
        return "a list of numbers, not sentences"
    if goal and difflib.SequenceMatcher(None, plain, _plain(goal)).ratio() >= GOAL_COPY_RATIO:
        return "a copy of the research goal, not an answer to it"
    return None


def vacuous_reason(value: str, given: str) -> str | None:
    """Why a line that should say what to do names nothing beyond what it was `given` (the goal, the stage's
    description and the prompt's headings); None when it has at least OWN_WORDS_NEEDED words of its own,
    not counting stop words or vague ones ("improve", "refine", "process"). A given word that a number
    counts is new ("5 trials" in the experiment stage)."""
    known = {_stem(word) for word in WORD.findall(given.casefold())}
    words = WORD.findall(value.casefold())
    own = [word for before, word in zip(["", *words], words)
           if word not in STOP_WORDS and word not in VAGUE_WORDS and (_stem(word) not in known or before.isdigit())]
    if len(own) >= OWN_WORDS_NEEDED:
        return None
    return ("names nothing to do beyond the goal and the stage's description"
            + (f" (its only own word: {own[0]!r})" if own else ""))


def find_degenerate(data: Any, goal: str = "", names: Collection[str] = (), skip: Collection[str] = (),
                    where: str = "") -> list[Finding]:
    """Every degenerate string in a parsed answer. Keys in `skip` hold no free text (enums: paper keys,
    knob names, section names) and are not checked."""
    return [Finding(field=path, value=value, reason=reason)
            for path, value in _strings(data, where, skip)
            if (reason := degenerate_reason(value, goal, names)) is not None]


def schema_names(schema: dict[str, Any]) -> set[str]:
    """The property names and titles in a JSON schema: words a model may echo instead of answering."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.update(str(k) for k in node.get("properties", {}))
            if isinstance(node.get("title"), str):
                found.add(node["title"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)
    return found


def gated_complete(ctx: RunContext, prompt: str, *, stage: str, schema: type[BaseModel] | dict[str, Any],
                   max_tokens: int, problems: Callable[[Any], list[Finding]]) -> tuple[Any, list[Finding]]:
    """A structured answer, asked for again (at most REPAIR_ROUNDS times) with the gate's message while
    `problems` finds any; returns the answer and what is still wrong with it. A repair the model cannot
    give (no valid JSON, no recording) keeps the previous answer: the caller drops or labels the rest."""
    parsed = ctx.llm.complete(prompt, stage=stage, schema=schema, max_tokens=max_tokens).parsed
    found = problems(parsed)
    for _ in range(REPAIR_ROUNDS):
        if not found:
            break
        try:
            repaired = ctx.llm.complete(repair_prompt(prompt, found), stage=stage, schema=schema, max_tokens=max_tokens).parsed
        except EndpointUnavailableError:
            raise
        except LLMError as exc:
            ctx.log("gate_repair_failed", stage=stage, problem=exc.message)
            break
        parsed, found = repaired, problems(repaired)
    return parsed, found


def repair_prompt(prompt: str, found: list[Finding]) -> str:
    listed = "\n".join(f"- {f.message()}" for f in found)
    return (f"{prompt}\n\nYour previous answer had these problems; answer again with real content in every field "
            f"(sentences about this research, not field names, placeholders or numbers):\n{listed}")


def record_degenerate(ctx: RunContext, items: list[Degenerate], announce: bool = True) -> None:
    """Add to the run's degenerate.json and log; the same output recorded twice (a resumed stage) counts once.
    `announce=False`: the caller labels the outputs on the terminal itself (the planner's plan lines)."""
    if not items:
        return
    known = read_degenerate(ctx.workspace)
    new = [d for d in items if d not in known]
    ctx.write_json(DEGENERATE_FILE, {"outputs": [d.model_dump() for d in known + new]})
    for item in new:
        ctx.log("degenerate_output", **item.model_dump())
    if new and announce:
        ctx.say(f"  degenerate model output ({len(new)}, {new[0].stage}): {new[0].field}: {new[0].reason}"
                + (f"; and {len(new) - 1} more (degenerate.json)" if len(new) > 1 else ""))


def read_degenerate(workspace: Path) -> list[Degenerate]:
    """The degenerate outputs recorded in a run's workspace (none when it has no degenerate.json):
    what `status` and the paper say about the run's model output."""
    path = workspace / DEGENERATE_FILE
    if not path.is_file():
        return []
    return [Degenerate.model_validate(d) for d in json.loads(path.read_text(encoding="utf-8"))["outputs"]]


def recorded(stage: str, findings: list[Finding], outcome: Literal["dropped", "labelled", "replaced by code"]) -> list[Degenerate]:
    """The degenerate ones among a stage's remaining findings, as degenerate.json records them."""
    return [Degenerate(stage=stage, field=f.field, value=f.value, reason=f.reason, outcome=outcome)
            for f in findings if f.degenerate]


def _strings(data: Any, where: str, skip: Collection[str]) -> Iterator[tuple[str, str]]:
    if isinstance(data, str):
        yield where, data
    elif isinstance(data, dict):
        for key, value in data.items():
            if key not in skip:
                yield from _strings(value, f"{where}.{key}" if where else key, skip)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, f"{where}[{i}]", skip)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.casefold()).split())


def _singular(word: str) -> str:
    return re.sub(r"\s*\d+$", "", word).removesuffix("s")


def _stem(word: str) -> str:
    """The word without a plural's "s" ("digits" is "digit"; "process" and "its" stay)."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _number_list(text: str) -> bool:
    tokens = text.split()
    numeric = sum(1 for t in tokens if NUMBER_TOKEN.fullmatch(t))
    letters = sum(c.isalpha() for c in text)
    return letters < 2 or (len(tokens) >= 3 and numeric / len(tokens) >= 0.6)
