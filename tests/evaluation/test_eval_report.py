"""`eval report`: every number is recomputed from the lanes' stores; tables, deltas and intervals."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest
from eval_recorded import lane_db, lane_workspace, recorded_eval
from scipy import stats

from helpers import run_cli
from nanoresearch.evaluation.metrics import RunMetrics
from nanoresearch.evaluation.report import cost_ratios, deltas, table


@pytest.mark.slow  # the recorded evaluation (four research runs)
def test_every_number_of_the_report_is_the_stores(tmp_path_factory) -> None:
    out = recorded_eval(tmp_path_factory)
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 1 and report["spec"] == "recorded-small"
    for row in report["runs"]:
        db = lane_db(out, row["variant"])
        calls, tokens = db.execute("SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0) "
                                   "FROM llm_calls WHERE run_id = ?", (row["run_id"],)).fetchone()
        trials = db.execute("SELECT COUNT(*) FROM trials WHERE run_id = ?", (row["run_id"],)).fetchone()[0]
        comments = db.execute("SELECT COUNT(*) FROM feedback WHERE run_id = ? AND text != ''", (row["run_id"],)).fetchone()[0]
        (workspace,) = db.execute("SELECT workspace FROM runs WHERE id = ?", (row["run_id"],)).fetchone()
        results = lane_workspace(out, row["variant"], workspace) / "results.json"
        success = json.loads(results.read_text())["success"] if results.is_file() else False
        assert (row["llm_calls"], row["tokens"], row["trials"], row["feedback"]) == (calls, tokens, trials, comments)
        assert row["success"] == success
        assert row["levels"] == (["skills", "memory", "policy"] if row["variant"] == "full" else [])
        judge = out / "lanes" / "ablation" / row["variant"] / "seed-0" / "judge" / f"round-{row['round']}.json"
        if row["status"] == "done":  # only a finished run is judged
            judged = json.loads(judge.read_text())
            assert row["alignment"] == judged["verdict"]["alignment"] and judged["prompt"] and judged["answer"]
        else:
            assert not judge.exists() and row["alignment"] is None
    for cell in report["table"]:
        runs = [r for r in report["runs"] if r["variant"] == cell["variant"] and r["round"] == cell["round"]]
        assert cell["measures"]["tokens"]["mean"] == statistics.fmean(r["tokens"] for r in runs)
    markdown = (out / "report.md").read_text()
    assert "| full | 1 |" in markdown and "figures/cost_per_round.png" in markdown


@pytest.mark.slow
def test_the_report_follows_the_store_not_a_cache(capsys, monkeypatch, tmp_path_factory, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(recorded_eval(tmp_path_factory), copy)
    before = json.loads((copy / "report.json").read_text())["runs"][0]
    db = lane_db(copy, "full")
    with db:
        db.execute("DELETE FROM llm_calls WHERE id = (SELECT MIN(id) FROM llm_calls WHERE run_id = ?)", (before["run_id"],))
    result = run_cli(capsys, monkeypatch, "eval", "report", str(copy))
    assert result.code == 0, result.err
    after = json.loads((copy / "report.json").read_text())["runs"][0]
    assert after["llm_calls"] == before["llm_calls"] - 1


def row(variant: str, round_: int, seed: int, tokens: int, success: bool) -> RunMetrics:
    return RunMetrics(persona="p", variant=variant, seed=seed, round=round_, run_id=f"{variant}-{round_}-{seed}",
                      status="done", levels=[], tokens=tokens, success=success)


def test_tables_deltas_and_cost_ratios_have_t_intervals() -> None:
    runs = [row("full", 1, s, t, True) for s, t in enumerate((100, 120, 140))]
    runs += [row("full", 2, s, t, s > 0) for s, t in enumerate((60, 70, 95))]
    runs += [row("static", r, s, t, False) for r in (1, 2) for s, t in enumerate((110, 125, 150))]
    cells = {(c.variant, c.round): c for c in table(runs, ["full", "static"], 2)}
    tokens = cells[("full", 2)].measures["tokens"]
    half = stats.t.ppf(0.975, 2) * statistics.stdev([60, 70, 95]) / 3 ** 0.5
    assert tokens.n == 3 and tokens.mean == pytest.approx(75.0)
    assert tokens.ci95 == pytest.approx((75.0 - half, 75.0 + half))
    assert cells[("full", 2)].measures["success"].mean == pytest.approx(2 / 3)

    (first, second) = deltas(runs, ["full", "static"], 2)
    assert (first.variant, first.round) == ("static", 1)
    assert first.measures["tokens"].mean == pytest.approx(statistics.fmean([10, 5, 10]))  # paired by seed
    assert second.measures["success"].mean == pytest.approx(-2 / 3)

    ratios = cost_ratios(runs, ["full", "static"], 2)
    assert ratios["full"].mean == pytest.approx(statistics.fmean([60 / 100, 70 / 120, 95 / 140]))
    assert ratios["static"].mean == pytest.approx(1.0)


def test_a_lane_whose_round_did_not_finish_gives_no_cost_ratio() -> None:
    runs = [row("full", 1, 0, 100, False), row("full", 2, 0, 40, False).model_copy(update={"status": "failed"})]
    runs += [row("full", 1, 1, 100, False), row("full", 2, 1, 80, False)]
    assert cost_ratios(runs, ["full"], 2)["full"].mean == pytest.approx(0.8)  # the failed lane's 0.4 is left out


def test_an_eval_search_result_in_the_folder_joins_the_report(tmp_path) -> None:
    from nanoresearch.evaluation.cells import lane_folder
    from nanoresearch.evaluation.report import write_report
    from nanoresearch.evaluation.spec import parse_spec

    digits = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "digits-classifier"
    spec = parse_spec({"name": "s", "personas": [{"name": "p", "preset": "exploratory"}],
                       "rounds": [{"goal": "improve digit accuracy", "task": str(digits)}]}, tmp_path, "spec")
    (tmp_path / "spec.json").write_text(spec.model_dump_json())
    assert not lane_folder(tmp_path, "p", "full", 0).exists()
    without = write_report(tmp_path)
    assert without.search is None and "eval search" in (tmp_path / "report.md").read_text()

    search = {"schema_version": 1, "created_at": "2026-12-06T00:00:00Z", "task": "digits-classifier",
              "task_folder": str(digits), "metric": "accuracy", "direction": "maximize", "budget": {"trials": 2},
              "budget_trials": 2, "model": "local/smollm2-135m", "temperature": 0.0, "seeds": [0],
              "fresh_seeds": [1000000], "methods": ["loop"], "runs": [],
              "summary": [{"method": "loop", "description": "the trial loop", "seeds_scored": 1, "fresh_mean": 0.95,
                           "fresh_ci95": None, "search_mean": 0.96, "wins": 1, "loop_beats": None, "trials_mean": 2.0,
                           "tokens_mean": 100.0, "tokens_total": 100}]}
    (tmp_path / "search.json").write_text(json.dumps(search))
    report = write_report(tmp_path)
    assert report.search is not None and report.search["summary"][0]["fresh_mean"] == 0.95
    assert "0.95" in (tmp_path / "report.md").read_text()
