"""What the LLM proposes for a trial: a hypothesis and line edits to the recipe.

Edits replace whole lines. The JSON schema offers the recipe's current lines as an enum for `find`,
so even a small local model (whose output is schema-guided) can only point at lines that exist,
and a strong model gets the same contract. Proposals come from specialists, each owning some of
the recipe's files; a debugger repairs a crashed edit from its logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

MAX_EDITS = 3
MAX_LINE = 240


class Edit(BaseModel):
    find: str
    replace: str = Field(max_length=MAX_LINE)


class Proposal(BaseModel):
    hypothesis: str = Field(max_length=400)
    edits: list[Edit] = Field(min_length=1, max_length=MAX_EDITS)


class Specialist(BaseModel):
    name: str
    files: list[str]
    focus: str


def proposal_schema(lines: list[str]) -> dict[str, Any]:
    schema = Proposal.model_json_schema()
    schema["$defs"]["Edit"]["properties"]["find"] = {"type": "string", "enum": lines}
    return schema


def editable_lines(workdir: Path, files: list[str]) -> list[str]:
    """Distinct, non-blank lines of the given files, in file order (the choices for `find`)."""
    seen: dict[str, None] = {}
    for name in files:
        for line in (workdir / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.setdefault(line, None)
    return list(seen)


class EditError(Exception):
    pass


def apply_edits(workdir: Path, files: list[str], edits: list[Edit]) -> list[str]:
    """Replace each `find` line with its `replace`; return the touched files.

    All edits refer to the code as it was before any of them (a model may name the same line
    twice: the first edit of a line wins), and a line must exist in one of the files.
    """
    original = {name: (workdir / name).read_text(encoding="utf-8").splitlines(keepends=True) for name in files}
    contents = {name: list(lines) for name, lines in original.items()}
    edited: set[tuple[str, int]] = set()
    for edit in edits:
        spot = _find_line(original, edit.find)
        if spot is None:
            raise EditError(f"no editable file has the line {edit.find!r}")
        if spot in edited:
            continue
        name, index = spot
        contents[name][index] = _keep_indent(edit.find, edit.replace) + "\n"
        edited.add(spot)
    for name in {name for name, _ in edited}:
        (workdir / name).write_text("".join(contents[name]), encoding="utf-8")
    return sorted({name for name, _ in edited})


def _find_line(contents: dict[str, list[str]], line: str) -> tuple[str, int] | None:
    for name, lines in contents.items():
        for index, candidate in enumerate(lines):
            if candidate.rstrip("\r\n") == line:
                return name, index
    return None


def _keep_indent(original: str, replacement: str) -> str:
    # Models often drop leading whitespace; Python cares, so reuse the original line's indent.
    if replacement.strip() and not replacement[:1].isspace():
        indent = original[: len(original) - len(original.lstrip())]
        return indent + replacement.rstrip("\r\n")
    return replacement.rstrip("\r\n")


def numbered(workdir: Path, files: list[str]) -> str:
    parts = []
    for name in files:
        body = (workdir / name).read_text(encoding="utf-8").splitlines()
        parts.append(f"--- {name}\n" + "\n".join(f"{i + 1:4d}  {line}" for i, line in enumerate(body)))
    return "\n\n".join(parts)


def proposal_prompt(task_text: str, code: str, table: str, failures: str, budget: str, specialist: Specialist) -> str:
    return (
        f"You improve an experiment recipe, one trial at a time.\n\nTASK\n{task_text}\n\n"
        f"YOUR ROLE: {specialist.name} — {specialist.focus}. You may change only: {', '.join(specialist.files)}.\n\n"
        f"CURRENT CODE (the best kept trial)\n{code}\n\n"
        f"RESULTS SO FAR\n{table}\n\nRECENT FAILURES (avoid repeating them)\n{failures}\n\n"
        f"BUDGET LEFT\n{budget}\n\n"
        "Propose ONE hypothesis that could improve the score and the line edits that test it. "
        "Each edit replaces one existing line (`find`, copied exactly) with a new line (`replace`)."
    )


def repair_prompt(code: str, logs: str, failure: str, hypothesis: str) -> str:
    return (
        f"An edit to this experiment recipe failed ({failure}). Hypothesis was: {hypothesis}\n\n"
        f"CODE AS RUN\n{code}\n\nEND OF THE LOGS\n<<<LOGS\n{logs[-2500:]}\nLOGS>>>\n\n"
        "Fix the cause with line edits (each replaces one existing line with a corrected line). "
        "Keep the hypothesis; only repair what broke."
    )
