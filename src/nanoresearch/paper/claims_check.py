"""No sentence may claim an improvement that results.json does not show.

Three checks, each removing the sentence with its reason:

- an improvement claim ("improves", "outperforms", "higher accuracy than the baseline") when no kept
  change beat the baseline (`results.success` is false), unless the sentence negates it ("did not
  improve"), hedges it ("we hypothesise that ... improves") or cites a paper (then it is about that
  paper's work);
- a comparison whose own numbers contradict it: "0.947 is higher than the baseline accuracy of 0.947",
  with numbers typed or written as \\Res... macros, compared as the paper prints them;
- "significant(ly)" about our result when the proposed-versus-baseline test is not significant.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from nanoresearch.paper.guard import cited_keys, drop_sentences_with_reasons
from nanoresearch.paper.numbers import NumberRef
from nanoresearch.paper.results import Results

_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|without|fails?|failed|unable|cannot|none|n't)\b|n't\b", re.I)
NEGATION_WINDOW = 5  # words before a claim that can negate it: "did not clearly improve"
_VALUE = re.compile(r"\\(?P<macro>Res[A-Z][A-Za-z]*)|(?<![\w.])(?P<number>\d+(?:\.\d+)?|\.\d+)(?![\w.]\d)")
_UP = "higher|greater|larger|more|above|exceeds?|exceeded|exceeding"
_DOWN = "lower|less|smaller|fewer|below|under"
_BETTER = "better|outperforms?|outperformed|outperforming|surpass(?:es|ed|ing)?|beats?|superior"
_WORSE = "worse|inferior|underperforms?|underperformed"
_COMPARATIVE = re.compile(rf"\b(?P<word>{_UP}|{_DOWN}|{_BETTER}|{_WORSE})\b", re.I)
# A hypothesis, a question or a plan is no claim: "we hypothesise that more iterations improve accuracy".
_HEDGE = re.compile(
    r"\b(?:hypothes\w*|expect\w*|whether|if|may|might|could|would|aims?|goal|question|test(?:s|ed)? if)\b", re.I
)
_SIGNIFICANT = re.compile(r"\b(?:statistically\s+)?significant(?:ly)?\b", re.I)
# "However, this approach failed due to crashes." of a run whose debugged edit was kept: a failure of
# our change, told when results.json shows it won. A trial that "failed to run" is a true crash.
_OUR_CHANGE_FAILED = re.compile(
    r"\b(?:approach|method|hypothesis|change|edit|modification)\b[^.;]{0,60}?"
    r"\b(?P<word>fail(?:ed|s)(?!\s+to\s+(?:run|execute|start|compile|import|load))|was unsuccessful"
    r"|did not (?:improve|work|help))\b",
    re.I,
)
_ABOUT_RESULTS = re.compile(r"\\Res[A-Z]|\b(?:difference|improv\w*|baseline|result|accura\w*|score)", re.I)


class ClaimContext(BaseModel):
    success: bool  # a kept change beat the baseline
    direction: str  # "maximize" or "minimize"
    metric: str
    significant: bool  # the proposed-vs-baseline test found a significant difference
    values: dict[str, float]  # \Res... macro (with backslash) -> the value the paper prints


def claim_context(results: Results, refs: list[NumberRef]) -> ClaimContext:
    significant = any(c.a == "proposed" and c.b == "baseline" and c.significant for c in results.comparisons)
    return ClaimContext(
        success=results.success,
        direction=results.direction,
        metric=results.metric,
        significant=significant,
        values={ref.macro: _printed(ref) for ref in refs},
    )


def _printed(ref: NumberRef) -> float:
    """The value as the paper prints it: 0.9472 and 0.9468 both print 0.947, and are equal to a reader."""
    try:
        return float(ref.text)
    except ValueError:  # "<0.001"
        return ref.value


def _improvement(context: ClaimContext) -> re.Pattern[str]:
    """Words that claim our result is better than the baseline's, for this metric's direction."""
    good = "higher|greater|more accurate" if context.direction == "maximize" else "lower|smaller|fewer errors"
    metric = re.escape(context.metric)
    return re.compile(
        rf"\b(?:improv\w*|outperform\w*|surpass\w*|beats?|exceed\w*|superior|boost\w*|(?:{good}|better)\s+than"
        rf"|(?:{good}|better)\s+{metric}|increas\w*\s+(?:the\s+)?(?:\w+\s+)?{metric}|{metric}\s+gains?)\b",
        re.I,
    )


def negated(sentence: str, start: int) -> bool:
    """A negation among the few words before position `start`: "did not improve", "no gain"."""
    before = sentence[:start].split()[-NEGATION_WINDOW:]
    return _NEGATION.search(" ".join(before)) is not None


def _value(match: re.Match[str], context: ClaimContext) -> float | None:
    if match["macro"]:
        return context.values.get("\\" + match["macro"])
    return float(match["number"])


def first_is_larger(word: str, direction: str) -> bool:
    """Whether the comparative says the number before it is the larger one ("better" depends on the metric)."""
    if re.fullmatch(_UP, word):
        return True
    if re.fullmatch(_DOWN, word):
        return False
    says_better = re.fullmatch(_BETTER, word) is not None
    return says_better == (direction == "maximize")


def contradicted_comparison(sentence: str, context: ClaimContext) -> str | None:
    """Why "A is higher than B" is false by its own numbers; None when it holds or names no two numbers."""
    for comparative in _COMPARATIVE.finditer(sentence):
        before = list(_VALUE.finditer(sentence, 0, comparative.start()))
        after = _VALUE.search(sentence, comparative.end())
        if not before or after is None or negated(sentence, comparative.start()):
            continue
        a, b = _value(before[-1], context), _value(after, context)
        if a is None or b is None:
            continue
        word = comparative["word"].lower()
        holds = a > b if first_is_larger(word, context.direction) else a < b
        if not holds:
            return f"says {a:g} is {word} than {b:g}, which its own numbers contradict"
    return None


def unbacked_claim(sentence: str, context: ClaimContext) -> str | None:
    """Why the sentence claims more than results.json shows; None when it does not."""
    contradiction = contradicted_comparison(sentence, context)
    if contradiction:
        return contradiction
    if cited_keys(sentence):
        return None  # about a cited paper's work, not ours
    if not context.success and not _HEDGE.search(sentence):
        claim = next((m for m in _improvement(context).finditer(sentence) if not negated(sentence, m.start())), None)
        if claim:
            return f"claims an improvement ('{claim.group(0)}'), but results.json shows no kept change that beat the baseline"
    if context.success and not _HEDGE.search(sentence):
        failure = _OUR_CHANGE_FAILED.search(sentence)
        if failure:
            return f"says our change failed ('{failure['word']}'), but results.json shows a kept change that beat the baseline"
    if not context.significant and _ABOUT_RESULTS.search(sentence):
        claim = next((m for m in _SIGNIFICANT.finditer(sentence) if not negated(sentence, m.start())), None)
        if claim:
            return (
                "claims a significant result, but the proposed-versus-baseline test in results.json is not significant"
            )
    return None


def check_claims(text: str, context: ClaimContext) -> tuple[str, list[tuple[str, str]]]:
    """Drop sentences that claim what results.json does not show; (text left, [(sentence, reason)])."""
    return drop_sentences_with_reasons(text, lambda sentence: unbacked_claim(sentence, context))
