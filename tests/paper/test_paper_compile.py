"""Real pdflatex runs: the assembled paper becomes a PDF; missing TeX, LaTeX errors and TeX code are handled."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import matplotlib
import pytest

from nanoresearch.literature.source import Paper
from nanoresearch.paper.compile import compile_pdf
from nanoresearch.paper.guard import escape_prose
from nanoresearch.paper.latex import latex_escape
from nanoresearch.paper.results import Results
from nanoresearch.paper.template import Figure
from nanoresearch.paper.write import write_paper

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

PDFTOTEXT = shutil.which("pdftotext")  # looked up before any test empties PATH
needs_tex = pytest.mark.skipif(
    not (shutil.which("pdflatex") and shutil.which("latexmk") and PDFTOTEXT),
    reason="needs pdflatex, latexmk and pdftotext (texlive, poppler-utils)",
)

SECTIONS = {
    "abstract": "Dropout improves accuracy to \\ResProposedMean{} (p = \\ResProposedVsBaselineP).",
    "introduction": "Convolutional networks \\citep{lecun1998gradient} and dropout \\citep{srivastava2014dropout}.",
    "related_work": "Disentangling work such as β-VAE \\citep{higgins2017beta} is related.",
    "method": "We add dropout to the baseline network.",
    "experiments": "Table~\\ref{tab:results} and Figure~\\ref{fig:curve} summarise the runs.",
    "conclusion": "Dropout helps on this task.",
}


def draw_png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [0.90, 0.93, 0.95], marker="o")
    ax.set_xlabel("trial")
    figure.savefig(path, dpi=100)
    plt.close(figure)


def pdf_text(pdf: Path) -> str:
    out = subprocess.run([str(PDFTOTEXT), str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def write_example(folder: Path, results: Results, papers: list[Paper]) -> Path:
    draw_png(folder / "figures" / "curve.png")
    figure = Figure(path=Path("figures/curve.png"), caption="Accuracy of each trial.", label="curve")
    return write_paper(folder, "Dropout on Tiny MNIST", SECTIONS, results, papers, [figure], user="ada").tex


@needs_tex
def test_the_assembled_paper_compiles_to_a_pdf_with_references_and_tables(
    tmp_path: Path, results: Results, papers: list[Paper]
) -> None:
    tex = write_example(tmp_path, results, papers)

    result = compile_pdf(tex)

    assert result.ok, result.log_tail
    assert result.tool == "latexmk"
    assert result.pdf == tmp_path / "paper.pdf" and result.pdf.stat().st_size > 10_000
    text = pdf_text(result.pdf)
    assert "Gradient-Based Learning Applied to Document Recognition" in text  # the reference entry
    assert "Dropout: A simple way to prevent neural networks from overfitting" in text
    assert "0.947 ± 0.00300" in text  # results table, from \ResProposedMean and \ResProposedStd
    assert "[0.940, 0.954]" in text
    assert "NanoResearch, on behalf of ada" in text
    assert "[?]" not in text and "??" not in text  # every citation and reference resolved


@needs_tex
def test_without_latexmk_pdflatex_and_bibtex_are_run_directly(
    tmp_path: Path, results: Results, papers: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("pdflatex", "bibtex"):
        (tools / name).symlink_to(shutil.which(name))
    monkeypatch.setenv("PATH", str(tools))
    tex = write_example(tmp_path / "paper", results, papers)

    result = compile_pdf(tex)

    assert result.ok, result.log_tail
    assert result.tool == "pdflatex"
    text = pdf_text(result.pdf)
    assert "Gradient-Based Learning Applied to Document Recognition" in text
    assert "[?]" not in text


def test_without_pdflatex_the_tex_is_kept_and_the_message_says_what_to_install(
    tmp_path: Path, results: Results, papers: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    tex = write_example(tmp_path, results, papers)
    monkeypatch.setenv("PATH", "")

    result = compile_pdf(tex)

    assert not result.ok and result.pdf is None and result.tool == "none"
    assert result.message == f"pdflatex not found; the .tex is kept at {tex}, install texlive (see README)"
    assert tex.is_file()


@needs_tex
def test_a_latex_error_is_reported_with_its_line(tmp_path: Path) -> None:
    tex = tmp_path / "broken.tex"
    tex.write_text("\\documentclass{article}\n\\begin{document}\nFine.\n\n\\undefinedthing{x}\n\\end{document}\n")

    result = compile_pdf(tex)

    assert not result.ok and result.pdf is None
    assert result.message.startswith("LaTeX error at broken.tex line 5: Undefined control sequence.")
    assert "l.5 \\undefinedthing" in result.log_tail
    assert tex.is_file() and not (tmp_path / "broken.pdf").exists()


@needs_tex
def test_tex_code_can_neither_run_programs_nor_write_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    tex = folder / "attack.tex"
    tex.write_text(
        "\\documentclass{article}\n\\begin{document}\n"
        "\\immediate\\write18{touch shell-ran}\n"
        "\\newwrite\\out\\immediate\\openout\\out=../escaped.txt\\immediate\\write\\out{x}\\immediate\\closeout\\out\n"
        "Text.\n\\end{document}\n"
    )

    result = compile_pdf(tex)

    assert not (folder / "shell-ran").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert not result.ok and "can't write on file" in result.log_tail


@needs_tex
def test_a_run_that_never_ends_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    tex = tmp_path / "loop.tex"
    tex.write_text("\\documentclass{article}\n\\begin{document}\n\\def\\x{\\x}\\x\n\\end{document}\n")
    started = time.monotonic()

    result = compile_pdf(tex, timeout_s=3)

    assert time.monotonic() - started < 10
    assert not result.ok and "ran out of time" in result.message
    assert not any("pdflatex" in line and "loop" in line for line in _processes())


def _processes() -> list[str]:
    return [
        (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        for pid in os.listdir("/proc")
        if pid.isdigit() and (Path("/proc") / pid / "cmdline").exists()
    ]


@needs_tex
def test_any_unicode_in_prose_or_titles_compiles(tmp_path: Path) -> None:
    everything = "".join(chr(code) for code in range(0xA0, 0x3100) if not 0xD800 <= code < 0xE000) + "😀𝔘中文"
    tex = tmp_path / "unicode.tex"
    tex.write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n\\usepackage{lmodern}\n"
        "\\usepackage{amsmath}\n\\usepackage[hidelinks]{hyperref}\n"
        f"\\title{{{latex_escape(everything[:400])}}}\n\\begin{{document}}\n\\maketitle\n"
        f"{escape_prose('Start. ' + everything + ' End.')}\n\\end{{document}}\n",
        encoding="utf-8",
    )

    result = compile_pdf(tex)

    assert result.ok, result.message
    assert "αβγ" in pdf_text(result.pdf)
