"""The paper's layout: templates/article.tex filled with guarded prose, generated tables and figures.

`assemble` expects prose that has been through `guard.guard_prose` (write_paper does that); it adds
no text of its own except the author line, section headings, the float environments and the
bibliography commands.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, field_validator

from nanoresearch.literature.source import Paper
from nanoresearch.paper.latex import latex_escape
from nanoresearch.paper.numbers import NumberRef, macros_tex

SECTION_NAMES = ("abstract", "introduction", "related_work", "method", "experiments", "conclusion")
BIBLIOGRAPHY = "\\bibliographystyle{plainnat}\n\\bibliography{references}"
_PLACEHOLDER = re.compile(r"<<(\w+)>>")
_FIGURE_PATH = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*\.(?:png|pdf|jpg|jpeg)")


class Figure(BaseModel):
    path: Path  # relative to the paper folder, e.g. figures/learning_curve.png
    caption: str
    label: str  # \ref target; "fig:" is added when missing

    @field_validator("path")
    @classmethod
    def _plain_relative_path(cls, path: Path) -> Path:
        # graphicx misreads spaces and extra dots, and a figure outside the paper folder would not travel with it.
        if not _FIGURE_PATH.fullmatch(path.as_posix()):
            raise ValueError(f"figure path {path.as_posix()!r} must be relative, letters/digits/_/- only, .png/.pdf/.jpg")
        return path

    @field_validator("label")
    @classmethod
    def _safe_label(cls, label: str) -> str:
        label = re.sub(r"[^A-Za-z0-9:._-]", "", label)
        return label if label.startswith("fig:") else "fig:" + label


def template_text() -> str:
    return (resources.files("nanoresearch.paper") / "templates" / "article.tex").read_text(encoding="utf-8")


def figure_tex(figure: Figure) -> str:
    return (
        "\\begin{figure}[htbp]\n\\centering\n"
        f"\\includegraphics[width=0.8\\linewidth]{{{figure.path.as_posix()}}}\n"
        f"\\caption{{{figure.caption}}}\n\\label{{{figure.label}}}\n\\end{{figure}}"
    )


def _section_heading(name: str) -> str:
    return "\\section{" + latex_escape(name.replace("_", " ").strip().capitalize()) + "}"


def assemble(
    title: str,
    sections: dict[str, str],
    figures: list[Figure],
    tables: list[str],
    refs: list[NumberRef],
    papers: list[Paper],
    *,
    user: str = "",
) -> str:
    """The full paper.tex. `sections` maps SECTION_NAMES (others become extra sections before the
    conclusion) to guarded LaTeX prose; `papers` are the cited papers, the bibliography is left out without any."""
    extra = [f"{_section_heading(name)}\n{text}" for name, text in sections.items() if name not in SECTION_NAMES]
    author = "NanoResearch" + (f", on behalf of {user.strip()}" if user.strip() else "")
    values = {name: sections.get(name, "") for name in SECTION_NAMES} | {
        "macros": macros_tex(refs),
        "title": latex_escape(title),
        "author": latex_escape(author),
        "tables": "\n\n".join(tables),
        "figures": "\n\n".join(figure_tex(figure) for figure in figures),
        "extra_sections": "\n\n".join(extra),
        "bibliography": BIBLIOGRAPHY if papers else "",
    }
    # One pass: text put in for one placeholder is never searched for another.
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template_text())
