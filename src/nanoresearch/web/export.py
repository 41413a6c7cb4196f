"""One self-contained HTML file of a run (`nanoresearch export RUN --html FILE`): timeline, stages,
ideas, results, review, the lineage tree with every trial, and the figures inlined as data URIs.

It opens offline from disk: no script, no link to the server, the style sheet inside; its own CSP
forbids any script and any load from outside the file. Run text is escaped as on the dashboard.
"""

from __future__ import annotations

import base64
from pathlib import Path

from nanoresearch.store import Store
from nanoresearch.store.models import Run
from nanoresearch.web.app import HERE, INLINE_TYPES, diff_lines, run_context, templates
from nanoresearch.web.security import artifact_path

MAX_FIGURE_BYTES = 5 * 1024 * 1024  # a figure larger than this is named, not inlined: the file stays openable


def figure_uri(run: Run, relative: str) -> str | None:
    """The figure as a data: URI, or None when it is too large or not inside the workspace."""
    target = artifact_path(run.workspace, relative)
    if target is None or target.stat().st_size > MAX_FIGURE_BYTES:
        return None
    kind = INLINE_TYPES[target.suffix.lower()]
    return f"data:{kind};base64,{base64.b64encode(target.read_bytes()).decode('ascii')}"


def export_html(store: Store, user_id: int, run: Run) -> str:
    context = run_context(store, user_id, run, selected=None)
    trials = [(trial, diff_lines(trial.diff)) for trial in store.trials(run.id)]
    figures = [(name, figure_uri(run, name)) for name in context["figures"]]
    style = (HERE / "static" / "style.css").read_text(encoding="utf-8")
    page = templates().env.get_template("export.html")
    return page.render(**context, offline=True, trials=trials, inlined=figures, style=style)


def write_export(store: Store, user_id: int, run: Run, target: Path) -> Path:
    target.write_text(export_html(store, user_id, run), encoding="utf-8")
    return target
