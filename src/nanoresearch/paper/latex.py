"""Text as safe LaTeX: special characters escaped and Unicode mapped to what pdflatex can typeset.

pdflatex stops with an error on a Unicode character its fonts do not declare, and a paper title from
a literature source or a sentence from an LLM can hold anything, so every character passes through
`tex_char` on its way into a .tex or .bib file.
"""

from __future__ import annotations

import re
import unicodedata

_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",  # not \{ : BibTeX counts escaped braces too, so \{ would unbalance an entry
    "}": r"\textbraceright{}",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "_": r"\_",
    "$": r"\$",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
}

# Greek letters by Unicode name: the small letters and the capitals LaTeX has as math commands,
# the other capitals as the Latin letters they look like.
_GREEK_SMALL = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi chi psi omega"
).split()
_GREEK_CAPITAL = "gamma delta theta lambda xi pi sigma upsilon phi psi omega".split()
_GREEK_LATIN = {"alpha": "A", "beta": "B", "epsilon": "E", "zeta": "Z", "eta": "H", "iota": "I", "kappa": "K",
                "mu": "M", "nu": "N", "omicron": "O", "rho": "P", "tau": "T", "chi": "X"}  # fmt: skip
_GREEK_NAME = re.compile(r"GREEK (SMALL|CAPITAL) LETTER ([A-Z ]+)")
# Code points the utf8 input encoding maps to a glyph of the T1, TS1, OT1 or OMS fonts that LaTeX
# loads (from TeX Live's t1enc.dfu, ts1enc.dfu, ot1enc.dfu, omsenc.dfu); pdflatex stops on any other.
_TYPESETTABLE_RANGES = (
    "00A0-0125 0128-0137 0139-013E 0141-0148 014A-0165 0168-017E 0192 01C4-01D4 01E2-01E3 01E6-01EB 01F0 "
    "01F4-01F5 0218-021B 0232-0233 0237 02C7 02D8-02D9 02DB 02DD 0E3F 1E02-1E03 1E0D 1E1E-1E21 1E25 1E30-1E31 "
    "1E37 1E43 1E45 1E47 1E5B 1E63 1E6D 1E8E-1E91 1E9E 1EF2-1EF3 2010-2016 2018-201A 201C-201E 2020-2022 "
    "2030-2031 2039-203B 203D 2044 204E 2052 20A1 20A4 20A6 20A9 20AB-20AC 20B1 2103 2116-2117 211E 2120 2122 "
    "2126-2127 212E 2190-2193 2329-232A 2422-2423 25E6 25EF 266A 27E8-27E9 3008-3009 FB00-FB06"
)
_MATH_SYMBOLS = {
    "≤": r"\leq",
    "≥": r"\geq",
    "≈": r"\approx",
    "≠": r"\neq",
    "∞": r"\infty",
    "⇒": r"\Rightarrow",
    "∈": r"\in",
    "∑": r"\sum",
    "√": r"\surd",
    "∼": r"\sim",
    "∝": r"\propto",
}
_PLAIN_SUBSTITUTES = {"−": "-", "′": "'", "″": "''"}


def _code_points(ranges: str) -> frozenset[str]:
    points: set[str] = set()
    for item in ranges.split():
        first, _, last = item.partition("-")
        points.update(chr(code) for code in range(int(first, 16), int(last or first, 16) + 1))
    return frozenset(points)


_TYPESETTABLE = _code_points(_TYPESETTABLE_RANGES)


def _math(command: str) -> str:
    return rf"\ensuremath{{{command}}}"


def _greek(char: str) -> str | None:
    base = unicodedata.normalize("NFKD", char)[:1]  # accented letters: ά -> α
    match = _GREEK_NAME.fullmatch(unicodedata.name(base, ""))
    if not match:
        return None
    small = match.group(1) == "SMALL"
    name = {"LAMDA": "lambda", "FINAL SIGMA": "varsigma"}.get(match.group(2), match.group(2).lower())
    if small and (name in _GREEK_SMALL or name == "varsigma"):
        return _math("\\" + name)
    if small and name == "omicron":
        return "o"
    if not small and name in _GREEK_CAPITAL:
        return _math("\\" + name.capitalize())
    return None if small else _GREEK_LATIN.get(name)


def tex_char(char: str) -> str:
    """One non-special character as something pdflatex with T1 fonts can typeset ('' when nothing fits)."""
    if char in ("\n", "\t", " ") or " " <= char <= "~":
        return " " if char == "\t" else char
    if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
        return ""  # control and invisible characters: TeX would read some of them as commands
    if char in _TYPESETTABLE:
        return char
    if char in _MATH_SYMBOLS:
        return _math(_MATH_SYMBOLS[char])
    if char in _PLAIN_SUBSTITUTES:
        return _PLAIN_SUBSTITUTES[char]
    greek = _greek(char)
    if greek is not None:
        return greek
    # Ligatures, full-width forms, accented letters outside Latin-1: their ASCII skeleton, if any.
    folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return "".join(_SPECIALS.get(c, c) for c in folded)


def latex_escape(text: str) -> str:
    """Data (a title, a name, a caption from code) as LaTeX that prints it literally, on one line."""
    text = " ".join(text.split())
    return "".join(_SPECIALS.get(char) or tex_char(char) for char in text)


def ascii_letters(text: str) -> str:
    """Text folded to ASCII, accents dropped: 'Schrödinger' -> 'Schrodinger'."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
