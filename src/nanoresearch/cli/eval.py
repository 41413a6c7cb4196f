"""`nanoresearch eval run | resume | report` (and `eval search`, cli/evalsearch.py): does co-evolution
make a user's next project better and cheaper? Measured by the harness in evaluation/."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from nanoresearch.cli import evalsearch
from nanoresearch.cli.common import err, out

if TYPE_CHECKING:
    from nanoresearch.evaluation.cells import Harness

app = typer.Typer(help="Evaluate co-evolution (personas × rounds × variants) and the trial loop against baselines.",
                  no_args_is_help=True)
app.add_typer(evalsearch.app)  # eval search


def harness(folder: Path, parallel: int, replay: Optional[Path]) -> Harness:
    from nanoresearch.evaluation.cells import Harness

    if replay is not None and not replay.is_dir():
        from nanoresearch.errors import UserError

        raise UserError(f"--replay {replay} is not a folder", hint="name the output folder of an earlier `eval run`")
    return Harness(out=folder, parallel=parallel, replay_from=replay, say=lambda message: err.print(escape(message)))


@app.command("run", epilog="Examples:\n  nanoresearch eval run examples/eval/digits-two-rounds.toml --out eval-digits --parallel 2")
def eval_run(
    spec: Annotated[Path, typer.Argument(help="The spec (TOML): personas, rounds, variants, seeds, budget, models.")],
    output: Annotated[Path, typer.Option("--out", help="A new folder for the lanes and the report.")] = Path("eval-run"),
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Lanes (persona × variant × seed) run at once.")] = 1,
    replay: Annotated[Optional[Path], typer.Option(help="Answer every model call from this earlier eval run's "
                                                   "recordings (offline; a missing one is an error).")] = None,
) -> None:
    """Run every persona × variant × seed over the spec's rounds, each lane in its own empty home; then the report."""
    from nanoresearch.evaluation.cells import start_eval

    start_eval(spec, harness(output, parallel, replay))
    write(output)


@app.command("resume", epilog="Examples:\n  nanoresearch eval resume eval-digits")
def eval_resume(
    folder: Annotated[Path, typer.Argument(help="The output folder of an `eval run`.")],
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Lanes run at once.")] = 1,
    replay: Annotated[Optional[Path], typer.Option(help="As for `eval run`.")] = None,
) -> None:
    """Continue an eval run: finished rounds are kept, interrupted runs resume, the rest run; then the report."""
    from nanoresearch.evaluation.cells import resume_eval

    resume_eval(harness(folder, parallel, replay))
    write(folder)


@app.command("report", epilog="Examples:\n  nanoresearch eval report eval-digits")
def eval_report(folder: Annotated[Path, typer.Argument(help="The output folder of an `eval run`.")]) -> None:
    """Recompute every measure from the lanes' stores: report.md, report.json and figures/ in FOLDER."""
    write(folder)


def write(folder: Path) -> None:
    from nanoresearch.evaluation.report import write_report

    report = write_report(folder)
    err.print(f"{len(report.runs)} runs measured")
    out.print(f"  report: {folder / 'report.md'}", highlight=False)
    out.print(f"  data: {folder / 'report.json'}", highlight=False)
