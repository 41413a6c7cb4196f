"""Every number the paper states, as a LaTeX macro traced to its place in results.json.

The writer LLM never types a measured number: it is shown `facts_text` and writes `\\ResProposedMean`.
`numbers.json` beside the paper maps each macro to a JSON pointer into results.json, so a reader can
check any number in the PDF against the file that produced it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

from pydantic import BaseModel

from nanoresearch.paper.latex import ascii_letters
from nanoresearch.paper.results import Comparison, Condition, Results

SIGNIFICANT_DIGITS = 3
P_FLOOR = 0.001  # p-values below it are reported as "<0.001"
CI_LEVEL = "95%"  # the tables and descriptions name it; results.py computes 95% t-intervals
_DIGIT_WORDS = "Zero One Two Three Four Five Six Seven Eight Nine".split()


class NumberRef(BaseModel):
    macro: str  # with its backslash: \ResProposedMean
    value: float
    text: str  # how the paper prints it: 0.947, -0.012, <0.001, 1.2e-05, 3
    source: str  # JSON pointer into results.json: /conditions/1/mean
    description: str


def format_value(value: float) -> str:
    """Three significant digits, whole numbers from 100 up, scientific notation below 1e-4."""
    if not math.isfinite(value):
        return str(value)  # printed nowhere: number_macros drops non-finite values
    if value == 0:
        return "0"
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")  # round first: 0.09999 becomes 0.1, not 0.1000
    if abs(rounded) >= 10 ** (SIGNIFICANT_DIGITS - 1):
        return f"{value:.0f}"
    magnitude = math.floor(math.log10(abs(rounded)))
    if magnitude < -4:
        return f"{value:.{SIGNIFICANT_DIGITS - 1}e}"
    return f"{rounded:.{SIGNIFICANT_DIGITS - 1 - magnitude}f}"


def format_p(p: float) -> str:
    return f"<{P_FLOOR}" if p < P_FLOOR else f"{p:.3f}"


def tex_number(text: str) -> str:
    """A formatted number as LaTeX that works in running text: minus, '<' and exponents need math mode."""
    mantissa, _, exponent = text.partition("e")
    body = mantissa + (rf"\times 10^{{{int(exponent)}}}" if exponent else "")
    if body.startswith(("-", "<")) or exponent:
        return rf"\ensuremath{{{body}}}"
    return body


def macro_stem(name: str, fallback: str) -> str:
    """'ablation: without layer 2' -> 'AblationWithoutLayerTwo'; TeX macro names may only hold letters."""
    words = re.findall(r"[A-Za-z]+|\d", ascii_letters(name))
    stem = "".join(_DIGIT_WORDS[int(w)] if w.isdigit() else w[0].upper() + w[1:] for w in words)
    return stem or fallback


def _letters(index: int) -> str:
    """1 -> 'B', 2 -> 'C', ..., 25 -> 'Z', 26 -> 'BA': a suffix that keeps macro names letters-only."""
    suffix = ""
    while True:
        index, digit = divmod(index, 26)
        suffix = chr(ord("A") + digit) + suffix
        if index == 0:
            return suffix


class _Stems:
    """Hands out unique stems. No field name is a suffix of another, so unique stems give unique macros."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def claim(self, stem: str) -> str:
        candidate, index = stem, 0
        while candidate in self.used:
            index += 1
            candidate = stem + _letters(index)
        self.used.add(candidate)
        return candidate


def _refs(stem: str, base: str, rows: list[tuple[str, str, float | None, str]]) -> Iterator[NumberRef]:
    """rows: (macro field, key under `base`, value, description); values that are missing are skipped."""
    for field, key, value, description in rows:
        if value is not None:
            text = format_p(value) if field == "P" else str(value) if field == "N" else format_value(value)
            yield NumberRef(
                macro=f"\\Res{stem}{field}", value=value, text=text, source=f"{base}/{key}", description=description
            )


def _condition_refs(condition: Condition, index: int, stem: str, metric: str) -> Iterator[NumberRef]:
    name, n = condition.name, condition.n
    seeds = f"{n} seed" + ("" if n == 1 else "s")
    low, high = condition.ci95 or (None, None)
    interval = f"the {CI_LEVEL} confidence interval of the mean {metric} of {name}"
    yield from _refs(
        stem,
        f"/conditions/{index}",
        [
            ("Mean", "mean", condition.mean, f"mean {metric} of {name} over {seeds}"),
            ("Std", "std", condition.std, f"sample standard deviation of {metric} of {name} over {seeds}"),
            ("CILow", "ci95/0", low, f"lower end of {interval}"),
            ("CIHigh", "ci95/1", high, f"upper end of {interval}"),
            ("N", "n", n, f"number of successful seeds of {name}"),
        ],
    )


def _comparison_refs(comparison: Comparison, index: int, stem: str, metric: str) -> Iterator[NumberRef]:
    a, b, test = comparison.a, comparison.b, comparison.test
    yield from _refs(
        stem,
        f"/comparisons/{index}",
        [
            ("Diff", "difference", comparison.difference, f"difference in mean {metric}, {a} minus {b}"),
            ("Stat", "statistic", comparison.statistic, f"{test} statistic, {a} vs {b}"),
            ("P", "p_value", comparison.p_value, f"p-value of the {test}, {a} vs {b}"),
        ],
    )


def _best_trial_refs(results: Results, stem: str) -> Iterator[NumberRef]:
    for index, trial in enumerate(results.trials):
        if trial.id == results.best_trial_id:
            description = f"{results.metric} of the best trial (trial {trial.id}) of the closed loop"
            yield from _refs(stem, f"/trials/{index}", [("Score", "score", trial.score, description)])


def number_macros(results: Results) -> list[NumberRef]:
    """One macro per reportable number in `results`; NaN and infinite values are left out."""
    stems = _Stems()
    refs = list(_best_trial_refs(results, stems.claim("BestTrial")))
    for index, condition in enumerate(results.conditions):
        refs += _condition_refs(condition, index, stems.claim(macro_stem(condition.name, "Condition")), results.metric)
    for index, comparison in enumerate(results.comparisons):
        stem = macro_stem(comparison.a, "Condition") + "Vs" + macro_stem(comparison.b, "Condition")
        refs += _comparison_refs(comparison, index, stems.claim(stem), results.metric)
    return [ref for ref in refs if math.isfinite(ref.value)]


def macros_tex(refs: list[NumberRef]) -> str:
    return "".join(f"\\newcommand{{{ref.macro}}}{{{tex_number(ref.text)}}}\n" for ref in refs)


def number_map_json(refs: list[NumberRef]) -> str:
    """numbers.json: macro -> value, printed text, JSON pointer into results.json, description."""
    entries = {ref.macro: ref.model_dump(exclude={"macro"}) for ref in refs}
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


def facts_text(refs: list[NumberRef]) -> str:
    """The numbers as the writer LLM sees them: it cites a number by writing its macro."""
    return "\n".join(f"{ref.macro} = {ref.text}: {ref.description}" for ref in refs)
