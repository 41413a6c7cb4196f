"""`nanoresearch literature …`: search the literature from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from nanoresearch.cli.common import err, examples, out, settings_from
from nanoresearch.literature import search_literature
from nanoresearch.literature.source import Paper

app = typer.Typer(help="Search the literature: OpenAlex, Semantic Scholar, arXiv and a local corpus.",
                  no_args_is_help=True)


@app.callback()
def literature() -> None:
    """Search the literature: OpenAlex, Semantic Scholar, arXiv and a local corpus."""


@app.command("search", epilog=examples(
    'nanoresearch literature search "handwritten digit recognition" --offline --corpus examples/corpus',
    'nanoresearch literature search "learning rate warmup" --limit 5 --json',
))
def literature_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, e.g. 'handwritten digit recognition'.")],
    offline: Annotated[bool, typer.Option(help="Search only the local corpus; no network.")] = False,
    corpus: Annotated[Optional[Path], typer.Option(help="Folder of .bib/.md/.pdf papers to search as well.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Papers per source.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the papers as JSON.")] = False,
) -> None:
    """Find papers for QUERY; online answers are cached, so asking again costs no request."""
    settings = settings_from(ctx)
    papers = search_literature(
        [query], offline=offline, corpus=corpus, cache_dir=settings.cache_dir, limit=limit
    )
    if as_json:
        typer.echo(json.dumps([paper.model_dump(mode="json") for paper in papers], indent=2, ensure_ascii=False))
        return
    if papers:
        out.print(papers_table(papers))
    else:
        err.print("no papers found")


def papers_table(papers: list[Paper]) -> Table:
    table = Table("key", "year", "title", "source")
    for paper in papers:
        # Titles are data from outside: escaped so that "[bold]" in one is printed, not obeyed.
        table.add_row(escape(paper.key), str(paper.year or ""), escape(paper.title), paper.source)
    return table
