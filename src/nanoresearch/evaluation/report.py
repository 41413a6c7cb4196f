"""`eval report DIR`: every figure recomputed from the lanes' stores, as report.json, report.md and figures.

report.json (schema in docs/evaluation.md#reportjson): `runs` (one RunMetrics per lane and round),
`table` (per variant and round: the mean of each measure over personas and seeds, with a 95%
t-interval), `deltas` (each variant minus `full`, paired by persona, seed and round), `cost_ratio`
(last round's tokens over the first round's, per variant) and, when `eval search` wrote search.json
into the same folder, its result as `search`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel

from nanoresearch.config import load_settings
from nanoresearch.evaluation.cells import lane_folder, lane_keys, read_lane, read_spec
from nanoresearch.evaluation.judge import Judged
from nanoresearch.evaluation.metrics import RunMetrics, run_metrics
from nanoresearch.evaluation.spec import EvalSpec
from nanoresearch.paper.figures import add_legend, new_figure, save
from nanoresearch.pipeline.stages.analysis import describe
from nanoresearch.profile import load_profile
from nanoresearch.store import Store

SCHEMA_VERSION = 1
# The measures the table and the deltas summarise (RunMetrics fields; booleans count as 0/1).
MEASURES = ("success", "improvement", "trials_to_first_improvement", "crashed_share", "illegal_share",
            "gate_missed_share", "dead_end_repeats", "llm_calls", "tokens", "usd", "wall_s", "cpu_hours",
            "gpu_hours", "compliance_share", "alignment", "novelty")


class Summary(BaseModel):
    n: int  # values the mean is over (a run without the measure is left out)
    mean: float | None
    ci95: tuple[float, float] | None  # None when n < 2


class Row(BaseModel):
    variant: str
    round: int
    runs: int
    measures: dict[str, Summary]


class Delta(BaseModel):
    variant: str  # this variant minus full, on the same persona, seed and round
    round: int
    measures: dict[str, Summary]


class Report(BaseModel):
    schema_version: int = SCHEMA_VERSION
    spec: str
    variants: list[str]
    rounds: int
    runs: list[RunMetrics]
    table: list[Row]
    deltas: list[Delta]
    cost_ratio: dict[str, Summary]  # variant -> tokens of the last round / tokens of the first, per lane
    figures: list[str]
    search: dict | None = None  # eval search's SearchResult (search.json), when there is one


def collect_runs(out: Path, spec: EvalSpec) -> list[RunMetrics]:
    """Every finished round's measures, read from its lane's store (lanes not started yet are skipped)."""
    rows: list[RunMetrics] = []
    for persona, variant, seed in lane_keys(spec):
        folder = lane_folder(out, persona.name, variant, seed)
        lane = read_lane(folder)
        if lane is None:
            continue
        settings = load_settings({"home": str(folder / "home"), "user": persona.name})
        profile = load_profile(settings)
        earlier_failed: list[str] = []
        with Store(settings.db_path) as store:
            user_id = store.ensure_user(persona.name)
            for state in sorted(lane.rounds, key=lambda r: r.round):
                judged_path = folder / "judge" / f"round-{state.round}.json"
                judged = Judged.model_validate_json(judged_path.read_text()) if judged_path.is_file() else None
                measured = run_metrics(store, user_id, store.get_run(state.run_id), profile, settings.pipeline.seeds,
                                       earlier_failed, judged)
                row = RunMetrics(persona=persona.name, variant=variant, seed=seed, round=state.round, **measured)
                rows.append(row)
                if row.tested_failed:
                    earlier_failed.append(row.tested_failed)
    return rows


def value(row: RunMetrics, measure: str) -> float | None:
    raw = getattr(row, measure)
    return None if raw is None else float(raw)


def summary(values: Iterable[float | None]) -> Summary:
    present = [v for v in values if v is not None]
    mean, _, interval = describe(present)
    return Summary(n=len(present), mean=mean, ci95=interval)


def table(runs: list[RunMetrics], variants: list[str], rounds: int) -> list[Row]:
    out = []
    for variant in variants:
        for index in range(1, rounds + 1):
            cell = [r for r in runs if r.variant == variant and r.round == index]
            if cell:
                out.append(Row(variant=variant, round=index, runs=len(cell),
                               measures={m: summary(value(r, m) for r in cell) for m in MEASURES}))
    return out


def deltas(runs: list[RunMetrics], variants: list[str], rounds: int) -> list[Delta]:
    full = {(r.persona, r.seed, r.round): r for r in runs if r.variant == "full"}
    out = []
    for variant in (v for v in variants if v != "full"):
        for index in range(1, rounds + 1):
            pairs = [(r, full[(r.persona, r.seed, r.round)]) for r in runs
                     if r.variant == variant and r.round == index and (r.persona, r.seed, r.round) in full]
            if pairs:
                out.append(Delta(variant=variant, round=index, measures={
                    m: summary(difference(value(a, m), value(b, m)) for a, b in pairs) for m in MEASURES}))
    return out


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def cost_ratios(runs: list[RunMetrics], variants: list[str], rounds: int) -> dict[str, Summary]:
    ratios: dict[str, Summary] = {}
    for variant in variants:
        lanes = {(r.persona, r.seed) for r in runs if r.variant == variant}
        # a run that failed or stopped costs what it reached, not what a round costs: no ratio from it
        by_round = {(r.persona, r.seed, r.round): r.tokens for r in runs if r.variant == variant and r.status == "done"}
        values = [by_round[(p, s, rounds)] / by_round[(p, s, 1)] for p, s in lanes
                  if by_round.get((p, s, 1)) and (p, s, rounds) in by_round]
        if rounds > 1:
            ratios[variant] = summary(values)
    return ratios


def build_report(out: Path) -> Report:
    spec = read_spec(out)
    runs = collect_runs(out, spec)
    rounds = len(spec.rounds)
    rows = table(runs, list(spec.variants), rounds)
    figures = draw_figures(rows, list(spec.variants), out / "figures")
    search = out / "search.json"
    return Report(spec=spec.name, variants=list(spec.variants), rounds=rounds, runs=runs, table=rows,
                  deltas=deltas(runs, list(spec.variants), rounds), cost_ratio=cost_ratios(runs, list(spec.variants), rounds),
                  figures=[str(f.relative_to(out)) for f in figures], search=search_result(search))


def search_result(path: Path) -> dict | None:
    """eval search's result in this folder, checked against its schema (evaluation/search.py)."""
    if not path.is_file():
        return None
    from nanoresearch.evaluation.search import load_result

    return load_result(path).model_dump(mode="json")


def write_report(out: Path) -> Report:
    report = build_report(out)
    (out / "report.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report, out), encoding="utf-8")
    return report


def draw_figures(rows: list[Row], variants: list[str], folder: Path) -> list[Path]:
    drawn = []
    for measure, label, name in (("tokens", "model tokens per run", "cost_per_round"),
                                 ("success", "share of runs that beat the baseline", "success_per_round")):
        fig, ax = new_figure(4.5, 3.0)
        for variant in variants:
            points = [(r.round, mean) for r in rows if r.variant == variant
                      and (mean := r.measures[measure].mean) is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=variant)
        ax.set_xlabel("round")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
        add_legend(ax)
        drawn.append(save(fig, folder / f"{name}.png"))
    return drawn


# markdown

SHOWN = (("success", "success"), ("improvement", "improvement"), ("trials_to_first_improvement", "trials to 1st"),
         ("dead_end_repeats", "dead ends"), ("crashed_share", "crashed"), ("llm_calls", "calls"), ("tokens", "tokens"),
         ("usd", "USD"), ("wall_s", "wall s"), ("compliance_share", "compliance"), ("alignment", "alignment"),
         ("novelty", "novelty"))


def markdown(report: Report, out: Path) -> str:
    lines = [f"# Evaluation: {report.spec}", "",
             f"{len(report.runs)} runs; variants {', '.join(report.variants)}; {report.rounds} round(s). "
             "Each cell: mean over personas and seeds [95% t-interval when n ≥ 2]. Every number is computed "
             "from the lanes' stores (report.json holds each run's row).", "",
             "## Per round and variant", ""]
    lines += grid(["variant", "round", "runs"], [[r.variant, str(r.round), str(r.runs)] for r in report.table],
                  [r.measures for r in report.table])
    if report.deltas:
        lines += ["", "## Each variant minus full (paired by persona, seed and round)", ""]
        lines += grid(["variant", "round"], [[d.variant, str(d.round)] for d in report.deltas], [d.measures for d in report.deltas])
    if report.cost_ratio:
        lines += ["", "## Cost of the last round over the first (tokens)", "", "| variant | ratio |", "|---|---|"]
        lines += [f"| {v} | {cell(s)} |" for v, s in report.cost_ratio.items()]
    lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in report.figures]
    lines += ["", "## The trial loop against simple baselines (eval search)", ""]
    if report.search is None:
        lines.append("No search.json in this folder: `nanoresearch eval search --out DIR` adds the table and its curves.")
    else:
        from nanoresearch.evaluation.search import SearchResult, markdown_table

        lines.append(markdown_table(SearchResult.model_validate(report.search)))
        if (out / "best_so_far.png").is_file():
            lines += ["", "![best so far](best_so_far.png)"]
    return "\n".join(lines) + "\n"


def grid(keys: list[str], labels: list[list[str]], measures: list[dict[str, Summary]]) -> list[str]:
    header = keys + [title for _, title in SHOWN]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, values in zip(labels, measures):
        lines.append("| " + " | ".join(label + [cell(values[m]) for m, _ in SHOWN]) + " |")
    return lines


def cell(s: Summary) -> str:
    if s.mean is None:
        return "–"
    text = f"{s.mean:.3g}"
    return f"{text} [{s.ci95[0]:.3g}, {s.ci95[1]:.3g}]" if s.ci95 else text
