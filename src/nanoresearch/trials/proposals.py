"""What the LLM proposes for a trial: a hypothesis and search/replace edits to the recipe.

An edit is a search/replace block, the format code models are trained on: `find` is one or more
consecutive lines copied from the current code, `replace` the lines that take their place. Models
copy imperfectly (a dropped indent, the line numbers of the listing, a changed quote), so a block
is matched exactly first, then ignoring whitespace at the line ends, then fuzzily, then as a piece
of one line (quote marks ignored); when nothing matches, the error names the closest lines, so a
repair prompt can say precisely what was wrong.

The JSON schema for `find` is a plain string. Only the embedded model, whose JSON decoding is our
own, is given the recipe's lines as an enum (a 135M model cannot copy a line reliably); servers
compile schemas to grammars of their own, and llama.cpp's crashes on enums of code lines.
Proposals come from specialists, each owning some of the recipe's files; a debugger repairs a
crashed edit from its logs.

Where the task declares the settings worth searching (`[search]` in task.toml), a proposal may also
name values for them instead of editing their lines: code turns each into the edit of the default in
the line that reads it (`os.environ.get("LR", "0.05")`), so the lineage shows it as any other diff.
A small model that copies code lines badly can still say "NEIGHBOURS 30".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from nanoresearch.trials.task import SearchRange

MAX_EDITS = 3
MAX_SETTINGS = 8
MAX_BLOCK = 2000
FUZZY_RATIO = 0.85  # a block this similar to exactly one place in the code is taken as meaning it
MIN_PIECE = 8  # characters: a shorter piece of a line (`)`, `x = 1`) names no place reliably
LISTING_NUMBER = re.compile(r"^\s*\d+  ")  # the "  12  " prefix of `numbered`, copied by some models
ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?::[^=]+)?=(?!=)")


class Edit(BaseModel):
    find: str = Field(max_length=MAX_BLOCK)
    replace: str = Field(max_length=MAX_BLOCK)


class Setting(BaseModel):
    name: str
    value: float = Field(allow_inf_nan=False)  # a server without a grammar may send NaN


class Proposal(BaseModel):
    hypothesis: str = Field(max_length=400)
    edits: list[Edit] = Field(max_length=MAX_EDITS)  # at least one, unless `settings` is offered
    settings: list[Setting] = Field([], max_length=MAX_SETTINGS)


class Specialist(BaseModel):
    name: str
    files: list[str]
    focus: str


def proposal_schema(lines: list[str] | None = None, settable: list[str] | None = None) -> dict[str, Any]:
    """The proposal's JSON schema; with `lines`, `find` may only be one of them (embedded model only);
    with `settable`, values for those settings come first and the edits may be none."""
    schema = Proposal.model_json_schema()
    if lines is not None:
        schema["$defs"]["Edit"]["properties"]["find"] = {"type": "string", "enum": lines}
    properties = schema["properties"]
    if not settable:
        del properties["settings"], schema["$defs"]["Setting"]
        # as before settings existed, key order included: prompts show the schema, and recordings key on them
        properties["edits"] = dict(sorted({**properties["edits"], "minItems": 1}.items()))
        return schema
    schema["$defs"]["Setting"]["properties"]["name"] = {"type": "string", "enum": settable}
    schema["properties"] = {"hypothesis": properties["hypothesis"], "settings": properties["settings"],
                            "edits": properties["edits"]}
    return schema


def setting_edits(workdir: Path, files: list[str], settings: list[Setting], space: dict[str, SearchRange]) -> list[Edit]:
    """The settings as edits of the defaults in the lines that read them, each value held to its
    declared range, one edit per line (two settings read on one line both take effect); an EditError
    names a setting that is not declared, or that not exactly one line reads."""
    changed: dict[str, str] = {}  # each reading line -> the line with its new defaults
    for setting in settings:
        bounds = space.get(setting.name)
        if bounds is None:
            raise EditError(f"{setting.name!r} is not a setting worth searching (declared: {', '.join(space) or 'none'})")
        reading = _reading_lines(workdir, files, setting.name)
        if len(reading) != 1:
            raise EditError(f"{len(reading) or 'no'} lines of {', '.join(files)} read {setting.name} from the environment "
                            f"with a default (such as os.environ.get({setting.name!r}, ...)): change it with an edit instead")
        line = reading[0]
        changed[line] = _with_default(changed.get(line, line), setting.name, bounds.value_text(setting.value))
    # a value the line has already is no edit, so none of the model's own edits of that line is skipped
    return [Edit(find=line, replace=new) for line, new in changed.items() if new != line]


def settable(workdir: Path, files: list[str], space: dict[str, SearchRange]) -> list[str]:
    """The declared settings that exactly one line of these files reads with a default: those a proposal may name."""
    return [name for name in space if len(_reading_lines(workdir, files, name)) == 1]


def _default_of(name: str) -> re.Pattern[str]:
    """`os.environ.get("NAME", "default")` or `os.getenv('NAME', 'default')`; the default is group `value`."""
    return re.compile(r"""(?:environ\.get|getenv)\(\s*(['"])""" + re.escape(name) + r"""\1\s*,\s*(['"])(?P<value>[^'"\n]*)\2""")


def _reading_lines(workdir: Path, files: list[str], name: str) -> list[str]:
    pattern = _default_of(name)
    return [line for file in files for line in (workdir / file).read_text(encoding="utf-8").splitlines()
            if pattern.search(line)]


def _with_default(line: str, name: str, value: str) -> str:
    match = _default_of(name).search(line)
    return line if match is None else line[:match.start("value")] + value + line[match.end("value"):]


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


@dataclass(frozen=True)
class Spot:
    """Where a block was found: lines [start, end) of one file."""

    file: str
    start: int
    end: int
    columns: tuple[int, int] | None = None  # a piece of the one line [start, end): only it is replaced


def apply_edits(workdir: Path, files: list[str], edits: list[Edit]) -> list[str]:
    """Replace each `find` block with its `replace`; return the touched files.

    All edits refer to the code as it was before any of them; an edit overlapping an earlier one is
    skipped (the first wins). Nothing is written unless every edit found its place.
    """
    original = {name: (workdir / name).read_text(encoding="utf-8").splitlines() for name in files}
    changes: list[tuple[Spot, list[str]]] = []
    for edit in edits:
        spot = meant_spot(original, locate(original, edit.find), edit.replace)
        if any(s.file == spot.file and s.start < spot.end and spot.start < s.end for s, _ in changes):
            continue
        matched = original[spot.file][spot.start:spot.end]
        changes.append((spot, in_line(matched[0], spot.columns, edit.replace) if spot.columns
                        else reindented(matched, edit.replace)))
    contents = {name: list(lines) for name, lines in original.items()}
    for spot, lines in sorted(changes, key=lambda change: (change[0].file, -change[0].start)):
        contents[spot.file][spot.start:spot.end] = lines
    touched = sorted({spot.file for spot, _ in changes})
    for name in touched:
        ending = "\n" if (workdir / name).read_text(encoding="utf-8").endswith("\n") else ""
        (workdir / name).write_text("\n".join(contents[name]) + ending, encoding="utf-8")
    return touched


def locate(contents: dict[str, list[str]], find: str) -> Spot:
    """The one place `find` names: exact, then ignoring indentation and line ends, then fuzzy, then a
    piece of one line (after fuzzy, so an edit fuzzy matching takes keeps meaning what it meant)."""
    block = block_lines(find)
    if not block:
        raise EditError("an edit has an empty `find`: copy the lines to change from the current code")
    for same in (_exact, _loose):
        spots = [spot for spot in _windows(contents, len(block)) if same(_lines_at(contents, spot), block)]
        if len(spots) == 1:
            return spots[0]
        if len(spots) > 1:
            raise EditError(f"the lines {_quoted(block)} occur {len(spots)} times: include a neighbouring line to say which")
    try:
        return _fuzzy(contents, block)
    except EditError:
        piece = _piece(contents, block)
        if piece is None:
            raise
        return piece


def _piece(contents: dict[str, list[str]], block: list[str]) -> Spot | None:
    """The one place in one line that a `find` of part of a line names, quote marks ignored; None when
    it is not exactly one place, or would cut a name or a number in two.

    A 1.5B model asked to change a default copied `int(float(os.environ.get('NEIGHBOURS', '1'))` from
    `NEIGHBOURS = int(float(os.environ.get("NEIGHBOURS", "1")))`, five times in a row: the piece and its
    replacement say exactly what to change, as a search/replace edit does in any editor."""
    if len(block) != 1 or len(block[0].strip()) < MIN_PIECE:
        return None
    piece = _unquoted(block[0].strip())
    found = [(name, i, m.start(), m.end()) for name, lines in contents.items()
             for i, line in enumerate(lines) for m in re.finditer(re.escape(piece), _unquoted(line))]
    if len(found) != 1:
        return None
    name, i, start, end = found[0]
    line = contents[name][i]
    if _cuts_a_token(line, start, end):
        return None
    whole = not line[:start].strip() and not line[end:].strip()  # then it is the line: reindent as usual
    return Spot(name, i, i + 1, None if whole else (start, end))


def _unquoted(text: str) -> str:
    return text.replace("'", '"')  # one character for one: columns found in the result hold in the original


def _cuts_a_token(line: str, start: int, end: int) -> bool:
    """Whether [start, end) begins or ends inside a name or a number (`x = 1` in `x = 10`, `= 1` in `= 1.5`)."""
    return (start > 0 and _joined(line[start - 1], line[start])) or (end < len(line) and _joined(line[end - 1], line[end]))


def _joined(left: str, right: str) -> bool:
    """Whether two neighbouring characters belong to one name or number."""
    word = (left.isalnum() or left == "_") and (right.isalnum() or right == "_")
    return word or (left.isdigit() and right == ".") or (left == "." and right.isdigit())


def in_line(line: str, columns: tuple[int, int], replace: str) -> list[str]:
    """The line with the piece at `columns` replaced (what the rest of the line held stays)."""
    start, end = columns
    return (line[:start] + replace.strip() + line[end:]).splitlines()


def meant_spot(contents: dict[str, list[str]], spot: Spot, replace: str) -> Spot:
    """The line a comment's replacement was meant for: when `find` names only comment lines and the
    replacement assigns a name that the next line of code assigns too, that line.

    Models pointing at a line by copying it (and a small one choosing among the recipe's lines) often
    name the comment above the line they mean; a 0.5B replaced `# Knobs arrive as ...` with a new
    `MAX_ITER = ...`, which the unchanged `MAX_ITER = ...` below it then overwrote, so the trial would
    have run the recipe as given and recorded the change as tried. The comment stays: a replacement that
    repeats it replaces both, one that does not replaces the line below only."""
    lines = contents[spot.file]
    comments = [line.strip() for line in lines[spot.start:spot.end]]
    if not all(line.startswith("#") for line in comments):
        return spot
    below = next((i for i in range(spot.end, len(lines)) if lines[i].strip() and not lines[i].strip().startswith("#")), None)
    new = [line.strip() for line in replace.splitlines() if line.strip()]
    code = [line for line in new if not line.startswith("#")]
    if below is None or not code or not _assigned(code[0]) or _assigned(code[0]) != _assigned(lines[below]):
        return spot
    return Spot(spot.file, spot.start if set(comments) <= set(new) else below, below + 1)


def _assigned(line: str) -> str | None:
    """The name a line of the form `NAME = ...` assigns (`NAME: type = ...` too); None for any other line."""
    match = ASSIGNMENT.match(line)
    return match.group(1) if match else None


def block_lines(find: str) -> list[str]:
    lines = find.strip("\n").splitlines()
    if lines and all(LISTING_NUMBER.match(line) for line in lines if line.strip()):
        lines = [LISTING_NUMBER.sub("", line, count=1) for line in lines]
    return lines


def _windows(contents: dict[str, list[str]], size: int) -> list[Spot]:
    return [Spot(name, i, i + size) for name, lines in contents.items() for i in range(len(lines) - size + 1)]


def _lines_at(contents: dict[str, list[str]], spot: Spot) -> list[str]:
    return contents[spot.file][spot.start:spot.end]


def _exact(candidate: list[str], block: list[str]) -> bool:
    return candidate == block


def _loose(candidate: list[str], block: list[str]) -> bool:
    return [line.strip() for line in candidate] == [line.strip() for line in block]


def _similarity(candidate: list[str], block: list[str]) -> float:
    squeeze = " ".join  # compare the code, not its layout
    return difflib.SequenceMatcher(None, squeeze(c.strip() for c in candidate), squeeze(b.strip() for b in block)).ratio()


def _fuzzy(contents: dict[str, list[str]], block: list[str]) -> Spot:
    scored = sorted(((_similarity(_lines_at(contents, s), block), s) for s in _windows(contents, len(block))),
                    key=lambda pair: -pair[0])
    if not scored:
        raise EditError(f"no editable file has {len(block)} lines to match {_quoted(block)}")
    best_ratio, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best_ratio >= FUZZY_RATIO and best_ratio - runner_up > 0.05:
        return best
    closest = _quoted(_lines_at(contents, best))
    raise EditError(f"no editable file has the lines {_quoted(block)}; the closest are {closest} in {best.file} "
                    f"(line {best.start + 1}, {best_ratio:.0%} alike): copy them exactly into `find`")


def reindented(matched: list[str], replace: str) -> list[str]:
    """The replacement lines, indented where the matched lines are (their relative indents kept).

    Models often drop or add the leading whitespace of a block; Python cares, so the first
    replacement line takes the indent of the first matched line and the others follow it.
    """
    new = replace.strip("\n").splitlines() if replace.strip() else []
    first = next((line for line in new if line.strip()), None)
    if not matched or first is None:
        return new
    shift = _indent(matched[0]) - _indent(first)
    if shift > 0:
        return [matched[0][:shift] + line if line.strip() else line for line in new]
    return [line[min(-shift, _indent(line)):] for line in new]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _quoted(lines: list[str]) -> str:
    text = "\n".join(lines)
    return repr(text if len(text) <= 160 else text[:157] + "...")


def numbered(workdir: Path, files: list[str]) -> str:
    parts = []
    for name in files:
        body = (workdir / name).read_text(encoding="utf-8").splitlines()
        parts.append(f"--- {name}\n" + "\n".join(f"{i + 1:4d}  {line}" for i, line in enumerate(body)))
    return "\n\n".join(parts)


def proposal_prompt(task_text: str, code: str, table: str, failures: str, budget: str, specialist: Specialist,
                    code_title: str = "CURRENT CODE (the best kept trial)") -> str:
    return (
        f"You improve an experiment recipe, one trial at a time.\n\nTASK\n{task_text}\n\n"
        f"YOUR ROLE: {specialist.name} — {specialist.focus}. You may change only: {', '.join(specialist.files)}.\n\n"
        f"{code_title}\n{code}\n\n"
        f"RESULTS SO FAR\n{table}\n\nRECENT FAILURES (avoid repeating them)\n{failures}\n\n"
        f"BUDGET LEFT\n{budget}\n\n"
        "Propose ONE hypothesis that could improve the score and the edits that test it. Each edit is a "
        "search/replace block: `find` is one or more consecutive lines copied exactly from the current code "
        "(with their indentation, without the line numbers), `replace` is the lines that take their place."
    )


def repair_prompt(code: str, logs: str, failure: str, hypothesis: str) -> str:
    return (
        f"An edit to this experiment recipe failed ({failure}). Hypothesis was: {hypothesis}\n\n"
        f"CODE AS RUN\n{code}\n\nEND OF THE LOGS\n<<<LOGS\n{logs[-2500:]}\nLOGS>>>\n\n"
        "Fix the cause with search/replace edits (`find`: lines copied exactly from the code as run, without "
        "the line numbers; `replace`: the corrected lines). "
        "Keep the hypothesis; only repair what broke."
    )
