"""Figures drawn from results.json: valid files, deterministic bytes, captions from the data, no crash on bad runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoresearch.paper.figures import (
    FigureFile,
    ablation_caption,
    ablation_chart,
    comparison_bars,
    comparison_caption,
    draw_figures,
    learning_curve,
    learning_curve_caption,
)
from nanoresearch.paper.results import Comparison, Condition, Results, TrialPoint

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def point(id: int, score: float | None, kept: bool = False, failure: str | None = None) -> TrialPoint:
    return TrialPoint(
        id=id,
        parent_id=id - 1 or None,
        proposer="llm",
        hypothesis=f"idea {id}",
        score=score,
        kept=kept,
        failure=failure,
    )


def cond(name: str, kind: str, scores: list[float], failures: int = 0) -> Condition:
    """Summary numbers are made up (figures draw what results.json says; the statistics are tested elsewhere)."""
    n = len(scores)
    mean = sum(scores) / n if n else None
    return Condition(
        name=name,
        kind=kind,
        scores=scores,
        seeds=list(range(n)),
        n=n,
        mean=mean,
        std=0.01 if n > 1 else (0.0 if n else None),
        ci95=(mean - 0.02, mean + 0.02) if n > 1 else None,
        failures=[f"seed {n + i} (trial {90 + i}): crash" for i in range(failures)],
    )


def full_results(**changes) -> Results:
    results = Results(
        run_id="r1",
        task="tiny",
        metric="val_acc$",
        direction="maximize",
        success=True,
        best_trial_id=4,
        trials=[
            point(1, 0.80, kept=True),
            point(2, 0.85, kept=True),
            point(3, None, failure="crash"),
            point(4, 0.90, kept=True),
            point(5, 0.88),
            point(6, None, failure="timeout"),
        ],
        conditions=[
            cond("baseline", "baseline", [0.80, 0.81, 0.79]),
            cond("proposed", "proposed", [0.90, 0.91]),
            cond("ablation: without warmup", "ablation", [0.86, 0.87, 0.85]),
            cond("ablation: without the extra long component name", "ablation", [], failures=3),
        ],
        comparisons=[
            Comparison(
                a="proposed",
                b="baseline",
                difference=0.105,
                test="Welch t-test",
                statistic=9.1,
                p_value=0.003,
                significant=True,
            ),
            Comparison(a="proposed", b="ablation: without warmup", difference=0.045, test="n < 2"),
        ],
    )
    return results.model_copy(update=changes)


def assert_png(path: Path) -> None:
    assert path.suffix == ".png" and path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > len(PNG_MAGIC)
    pdf = path.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"CreationDate" not in pdf


def test_draw_figures_writes_every_figure_with_captions(tmp_path):
    figures = draw_figures(full_results(), tmp_path / "figures")
    assert [f.label for f in figures] == ["fig:learning_curve", "fig:comparison", "fig:ablations"]
    for figure in figures:
        assert_png(figure.path)
        assert figure.pdf == figure.path.with_suffix(".pdf") and figure.pdf.is_file()
        assert figure.caption.endswith(".")
    curve, bars, ablations = (f.caption for f in figures)
    assert curve.startswith("Val_acc$ of each trial in run order (6 trials, higher is better).")
    assert "Filled markers were kept" in curve and "2 failed trials" in curve
    assert "95% t-confidence intervals" in bars and "n in each label" in bars
    assert "No seed succeeded for ablation: without the extra long component name." in bars
    assert "ablation minus proposed" in ablations


def test_figure_files_are_deterministic(tmp_path):
    first = draw_figures(full_results(), tmp_path / "a")
    second = draw_figures(full_results(), tmp_path / "b")
    for one, two in zip(first, second):
        assert one.path.read_bytes() == two.path.read_bytes()
        assert one.pdf.read_bytes() == two.pdf.read_bytes()


def test_png_is_drawn_at_150_dpi(tmp_path):
    path = learning_curve(full_results(), tmp_path / "curve.png")
    data = path.read_bytes()
    # the pHYs chunk stores pixels per metre: 150 dpi = 5906 px/m
    phys = data.index(b"pHYs") + 4
    assert int.from_bytes(data[phys : phys + 4], "big") == 5906


def test_ablation_chart_is_absent_without_ablations(tmp_path):
    results = full_results(conditions=full_results().conditions[:2], comparisons=full_results().comparisons[:1])
    assert ablation_chart(results, tmp_path / "ablations.png") is None
    assert not (tmp_path / "ablations.png").exists()
    figures = draw_figures(results, tmp_path)
    assert [f.label for f in figures] == ["fig:learning_curve", "fig:comparison"]


def degenerate_cases() -> dict[str, Results]:
    empty = Results(run_id="r1", task="tiny", metric="loss", direction="minimize", success=False)
    failed = [point(1, None, failure="crash"), point(2, None, failure="illegal_edit")]
    return {
        "no trials, no conditions": empty,
        "all failed": empty.model_copy(
            update={
                "trials": failed,
                "conditions": [
                    cond("baseline", "baseline", [], 2),
                    cond("proposed", "proposed", [], 1),
                    cond("ablation: without x", "ablation", [], 1),
                ],
            }
        ),
        "one trial, one condition, one seed": empty.model_copy(
            update={
                "success": True,
                "best_trial_id": 1,
                "trials": [point(1, 2.0, kept=True)],
                "conditions": [cond("baseline", "baseline", [2.0])],
            }
        ),
        "ablations without a proposed condition": empty.model_copy(
            update={
                "conditions": [
                    cond("baseline", "baseline", [2.0, 2.0]),
                    cond("ablation: without y", "ablation", [2.1]),
                ],
            }
        ),
        "nothing kept": empty.model_copy(update={"trials": [point(1, 2.0), point(2, 1.0)]}),
    }


@pytest.mark.parametrize("case", list(degenerate_cases()))
def test_degenerate_results_still_draw(tmp_path, case):
    results = degenerate_cases()[case]
    figures = draw_figures(results, tmp_path)
    for figure in figures:
        assert isinstance(figure, FigureFile)
        assert_png(figure.path)
        assert figure.caption
    assert len(figures) == (3 if any(c.kind == "ablation" for c in results.conditions) else 2)


def test_captions_say_when_there_is_nothing_to_show():
    cases = degenerate_cases()
    empty, failed = cases["no trials, no conditions"], cases["all failed"]
    single, orphans = cases["one trial, one condition, one seed"], cases["ablations without a proposed condition"]
    assert learning_curve_caption(empty) == "Loss of each trial in run order: the closed loop ran no trials."
    assert comparison_caption(empty) == "Mean loss per condition: no conditions were run."
    assert "No trial produced a score." in learning_curve_caption(failed)
    assert "Filled markers" not in learning_curve_caption(failed)
    assert comparison_caption(failed) == "Mean loss per condition: no seed succeeded in any condition."
    assert ablation_caption(failed) == "Ablations of the recipe on loss: no seed of the proposed condition succeeded."
    assert "(1 trial, lower is better)" in learning_curve_caption(single)
    assert "With a single seed there is no interval: baseline." in comparison_caption(single)
    assert "there is no proposed condition" in ablation_caption(orphans)


def test_each_drawing_function_returns_the_png_it_wrote(tmp_path):
    results = full_results()
    assert comparison_bars(results, tmp_path / "bars.png") == tmp_path / "bars.png"
    assert ablation_chart(results, tmp_path / "sub" / "abl") == tmp_path / "sub" / "abl.png"
    assert_png(tmp_path / "sub" / "abl.png")
