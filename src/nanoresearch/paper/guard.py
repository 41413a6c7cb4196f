"""LLM prose made safe for the paper: no TeX code runs, no number is typed, no citation is invented.

`escape_prose` keeps a small whitelist of commands (citations, references, emphasis, subsections
and our `\\Res...` number macros) and turns everything else into plain text, so prose from an LLM,
which may have read adversarial paper text, cannot `\\input` a file or redefine a command.
`guard_citations` drops citation keys that are not in the bibliography, `guard_macros` and
`guard_numbers` drop whole sentences that use an undefined macro or type a number of their own.
`guard_prose` runs them in the order that makes the guarantees hold: escaping first, so the guards
see the text exactly as LaTeX will.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from nanoresearch.paper.latex import tex_char

_CITE_NAME = r"cite(?:alp|alt|author|year|num|p|t)?(?![A-Za-z])"
_CITE = re.compile(
    rf"(?P<lead>~?)\\(?P<command>{_CITE_NAME})(?P<star>\*?)(?P<options>(?:\s*\[[^\[\]{{}}]*\])*)\s*\{{(?P<keys>[^{{}}]*)\}}"
)
_REF = re.compile(r"\\(?P<command>ref|eqref|autoref)\s*\{(?P<label>[^{}]*)\}")
_KEY = re.compile(r"[A-Za-z0-9_:.+/-]+")  # the characters BibTeX and natbib take in a key
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9:._-]")
_CONTROL_WORD = re.compile(r"\\([A-Za-z]+)")
_RESULT_MACRO = re.compile(r"\\(Res[A-Z][A-Za-z]*)")

_PROSE_SPECIALS = {"%": r"\%", "&": r"\&", "#": r"\#", "_": r"\_", "$": r"\$", "^": r"\textasciicircum{}"}
_KEPT_SYMBOLS = set("%&#_${}")  # \% \& ... print the character
_ACCENTS = set("'`\"~=.")  # \'e, \"o: kept when a letter follows
_TEXT_COMMANDS = {"emph", "textbf", "textit", "subsection", "subsubsection", "paragraph"}
_SYMBOL_COMMANDS = {"textasciicircum", "textasciitilde", "textbackslash", "textbraceleft", "textbraceright"}
# Dropped together with their arguments, so that neither the command nor its payload reaches the PDF.
_DROPPED_WITH_ARGUMENTS = {
    "input", "include", "includeonly", "InputIfFileExists", "write", "immediate", "openout", "openin", "read",
    "catcode", "def", "edef", "gdef", "xdef", "let", "newcommand", "renewcommand", "providecommand",
    "DeclareRobustCommand", "usepackage", "RequirePackage", "documentclass", "begin", "end", "bibliography",
    "bibliographystyle", "nocite", "label", "special", "newwrite", "newread", "csname", "url", "href",
    "includegraphics", "section", "chapter",
}  # fmt: skip
_ARGUMENT = re.compile(r"\s*(?:\\[A-Za-z@]+|\\.|[0-9=#]+|\[[^\[\]]*\])")
_OPTION = re.compile(r"\s*\[[^\[\]]*\]")
_FILE_COMMANDS = {"input", "include", "openin", "openout"}  # TeX also takes their file name without braces
_FILE_NAME = re.compile(r"\s*[^\s{}\\]+")
_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n\s*)")
# A sentence ends at . ! or ?, perhaps followed by a closing brace, bracket or quote, then white space.
_SENTENCE_BREAK = re.compile(r"((?:(?<=[.!?])|(?<=[.!?][}\])\"'”’]))\s+(?=[A-Z\\(\[\"`'“‘])|\n[ \t]*\n\s*)")

_NUMBER = re.compile(
    r"""
    (?<![\w.])(?<![A-Za-z]-)                         # not inside a word, nor a name such as ResNet-50
    (?P<number>[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?|\.[0-9]+)
    (?P<exponent>[eE][-+]?[0-9]+)?
    (?P<percent>\s*(?:\\%|%|percent\b))?
    (?:x|×|k|K|M|B|G|ms|s|h)?                        # a unit does not make "12x" a name
    (?![\w]|\.[0-9])
    """,
    re.X,
)


class GuardedText(BaseModel):
    text: str
    removed_sentences: list[str] = []
    removed_keys: list[str] = []


# ---------------------------------------------------------------- escaping


def escape_prose(text: str) -> str:
    """LLM prose as LaTeX that typesets it and runs nothing but whitelisted commands."""
    paragraphs = _PARAGRAPH_BREAK.split(text)
    escaped = [_escape_paragraph(part) for part in paragraphs[::2]]
    return "\n\n".join(part.strip() for part in escaped if part.strip())


def _escape_paragraph(text: str) -> str:
    out: list[str] = []
    depth, index = 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            piece, index = _command(text, index)
            out.append(piece)
            continue
        if char == "{":
            depth += 1
            out.append(char)
        elif char == "}" and depth:
            depth -= 1
            out.append(char)
        elif char != "}":  # an unmatched closing brace is dropped
            out.append(_PROSE_SPECIALS.get(char) or tex_char(char))
        index += 1
    return "".join(out) + "}" * depth  # groups left open close with the paragraph


def _command(text: str, index: int) -> tuple[str, int]:
    """What to emit for the command starting at text[index] (a backslash), and where to go on."""
    cite = _CITE.match(text, index)
    if cite:
        keys = [key.strip() for key in cite["keys"].split(",") if _KEY.fullmatch(key.strip())]
        emitted = rf"\{cite['command']}{cite['star']}{{{','.join(keys)}}}" if keys else ""
        return emitted, cite.end()
    ref = _REF.match(text, index)
    if ref:
        label = _LABEL_UNSAFE.sub("", ref["label"])
        return (rf"\{ref['command']}{{{label}}}" if label else ""), ref.end()
    word = _CONTROL_WORD.match(text, index)
    if word:
        return _control_word(text, word.group(1), word.end())
    symbol = text[index + 1 : index + 2]
    accented = text[index + 2 : index + 3]
    if symbol in _KEPT_SYMBOLS or (symbol in _ACCENTS and accented.isascii() and accented.isalpha()):
        return "\\" + symbol, index + 2
    return (" " if symbol.isspace() or symbol == "\\" else ""), index + 2


def _control_word(text: str, name: str, end: int) -> tuple[str, int]:
    if _RESULT_MACRO.fullmatch("\\" + name):
        # "{}" ends the macro name, so the space after it is not swallowed: "\ResProposedMean{} on".
        return "\\" + name + ("" if text.startswith("{", end) else "{}"), end
    if name in _SYMBOL_COMMANDS:
        return rf"\{name}{{}}", end + 2 if text.startswith("{}", end) else end
    after_spaces = len(text) - len(text[end:].lstrip())
    if name in _TEXT_COMMANDS and text.startswith("{", after_spaces):
        return "\\" + name, after_spaces
    if name in _DROPPED_WITH_ARGUMENTS:
        return "", _skip_arguments(text, end, takes_file=name in _FILE_COMMANDS)
    return "", end  # any other command: its name goes, what follows stays as text


def _skip_arguments(text: str, index: int, takes_file: bool) -> int:
    """Past what a dropped command would take: \\def\\x#1{...}, \\newcommand{\\x}[1]{...}, \\openout1=f.

    Before the first brace group it may take command names, digits, '=' and '#'; after it, only
    more groups and [options], so that the sentence after `\\begin{itemize}` stays."""
    had_group = False
    while True:
        argument = (_OPTION if had_group else _ARGUMENT).match(text, index)
        if argument and argument.end() > index:
            index = argument.end()
            continue
        after_spaces = len(text) - len(text[index:].lstrip())
        if text.startswith("{", after_spaces):
            index, had_group = _group_end(text, after_spaces), True
            continue
        file_name = _FILE_NAME.match(text, index) if takes_file and not had_group else None
        return file_name.end() if file_name else index


def _group_end(text: str, start: int) -> int:
    """Index just past the brace group opening at text[start]; the end of the text if it never closes."""
    depth, index = 0, start
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        index += 1
        if depth == 0:
            return index
    return len(text)


def balance_braces(text: str) -> str:
    """Drop unmatched closing braces and close open groups, paragraph by paragraph (escaped braces ignored)."""
    paragraphs = _PARAGRAPH_BREAK.split(text)
    return "".join(part if number % 2 else _balance_paragraph(part) for number, part in enumerate(paragraphs))


def _balance_paragraph(text: str) -> str:
    out: list[str] = []
    depth, index = 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            out.append(text[index : index + 2])
            index += 2
            continue
        if char == "}" and not depth:
            index += 1
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        out.append(char)
        index += 1
    return "".join(out) + "}" * depth


# ---------------------------------------------------------------- sentences


def split_sentences(text: str) -> list[tuple[str, str]]:
    """(sentence, the whitespace after it) pairs; joining them all gives the text back."""
    parts = _SENTENCE_BREAK.split(text)
    parts.append("")
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


def _drop_sentences(text: str, unwanted: Callable[[str], bool]) -> tuple[str, list[str]]:
    clean, removed = drop_sentences_with_reasons(text, lambda s: "unwanted" if unwanted(s) else None)
    return clean, [sentence for sentence, _ in removed]


def drop_sentences_with_reasons(text: str, reason: Callable[[str], str | None]) -> tuple[str, list[tuple[str, str]]]:
    """Drop each sentence for which `reason` gives a reason; (text left, [(sentence, reason)])."""
    kept: list[str] = []
    removed: list[tuple[str, str]] = []
    for sentence, gap in split_sentences(text):
        why = reason(sentence) if sentence.strip() else None
        if why:
            removed.append((sentence.strip(), why))
            if "\n\n" in gap.replace(" ", "").replace("\t", ""):
                kept.append(gap)  # keep the paragraph break the sentence ended
            continue
        kept.extend((sentence, gap))
    clean = re.sub(r"[ \t]*\n[ \t]*", "\n", "".join(kept))
    clean = re.sub(r"\n{3,}", "\n\n", clean).strip()
    return balance_braces(clean), removed


# ---------------------------------------------------------------- guards


def guard_citations(text: str, keys: set[str]) -> tuple[str, list[str]]:
    """Drop cited keys not in `keys` from every \\cite, \\citep, \\citet...; drop a command left with none."""
    removed: list[str] = []

    def keep_known(match: re.Match[str]) -> str:
        cited = [key.strip() for key in match["keys"].split(",") if key.strip()]
        known = [key for key in cited if key in keys]
        removed.extend(key for key in cited if key not in keys and key not in removed)
        if not known:
            return ""
        return rf"{match['lead']}\{match['command']}{match['star']}{match['options']}{{{','.join(known)}}}"

    return _CITE.sub(keep_known, text), removed


def cited_keys(text: str) -> list[str]:
    """Every key cited in `text`, first citation first, each once."""
    keys: list[str] = []
    for match in _CITE.finditer(text):
        keys.extend(key.strip() for key in match["keys"].split(",") if key.strip() and key.strip() not in keys)
    return keys


def guard_macros(text: str, defined: set[str]) -> tuple[str, list[str]]:
    """Drop sentences that use a \\Res... macro that is not defined (an LLM inventing a result)."""
    return _drop_sentences(text, lambda s: any("\\" + m not in defined for m in _RESULT_MACRO.findall(s)))


def guard_numbers(text: str, allowed: set[str]) -> tuple[str, list[str]]:
    """Drop sentences that type a number (a decimal, a percentage, an integer above 10) not in `allowed`.

    `allowed` holds the formatted values the paper may state (NumberRef.text) and the years of the
    cited papers; everything else must come in through a \\Res... macro.
    """
    allowed_numbers = {number for value in allowed for number, _ in _numbers(value)}
    return _drop_sentences(
        text, lambda s: any(flagged and number not in allowed_numbers for number, flagged in _numbers(prose_only(s)))
    )


def prose_only(sentence: str) -> str:
    """The sentence without citation keys, labels and command names, whose digits are not numbers."""
    sentence = _REF.sub(" ", _CITE.sub(" ", sentence))
    return _CONTROL_WORD.sub(" ", sentence)


def _numbers(text: str) -> Iterable[tuple[str, bool]]:
    """(canonical number, whether it counts as a typed number) for each numeric literal in `text`."""
    for match in _NUMBER.finditer(text):
        number = match["number"].replace(",", "")
        number = "0" + number if number.startswith(".") else number
        exponent = (match["exponent"] or "").lower()
        flagged = "." in number or bool(exponent) or bool(match["percent"]) or int(number) > 10
        yield number + exponent, flagged


def guard_prose(text: str, keys: set[str], macros: set[str], allowed: set[str]) -> GuardedText:
    """escape_prose, then the three guards: the result cites only `keys`, uses only `macros`."""
    escaped = escape_prose(text)
    without_keys, removed_keys = guard_citations(escaped, keys)
    without_macros, removed_for_macros = guard_macros(without_keys, macros)
    clean, removed_for_numbers = guard_numbers(without_macros, allowed)
    return GuardedText(text=clean, removed_sentences=removed_for_macros + removed_for_numbers, removed_keys=removed_keys)
