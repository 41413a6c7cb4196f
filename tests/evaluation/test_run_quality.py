"""The research-quality figures of a run (evaluation/quality.py) and the benchmark that prints them
(bench/bench_research_quality.py): each counter on small hand-built inputs, then whole runs measured
and checked against counts taken straight from their stores."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import AS_RECORDED
from nanoresearch.config import load_settings
from nanoresearch.evaluation.metrics import normalised
from nanoresearch.evaluation.quality import (
    RunQuality,
    count_citations,
    count_memory,
    count_proposals,
    measure_run_quality,
    model_time,
    paper_prose,
    unsupported_sentences,
)
from nanoresearch.paper.fact_checker import FactContext
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import Evidence, MemoryRecord
from nanoresearch.store.models import Trial
from pipeline.researcher import ResearcherServer, write_config

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "bench_research_quality.py"
RECORDED = REPO / "tests" / "pipeline" / "recorded" / "digits-smollm2.json"
DIGITS = REPO / "examples" / "tasks" / "digits-classifier"
CORPUS = REPO / "examples" / "corpus"
CLI = [sys.executable, "-c", "from nanoresearch.cli import main; main()"]
GOAL = "improve handwritten digit classification accuracy"


def trial(id: int, proposer: str, diff: str = "", job: str | None = None, score: float | None = None,
          failure: str | None = None) -> Trial:
    return Trial(id=id, run_id="r", proposer=proposer, diff=diff, job_id=job, score=score, failure=failure,
                 command="python train.py", executor="local")


def record(type: str, text: str, evidence: list[Evidence] | None = None) -> MemoryRecord:
    return MemoryRecord(type=type, text=text, evidence=[Evidence(run_id="r")] if evidence is None else evidence)


# ---------------------------------------------------------------- the counters


def test_a_proposal_counts_as_applied_when_it_changed_the_recipe_and_as_run_when_its_job_started() -> None:
    trials = [
        trial(1, "baseline", job="j1", score=0.9),  # code's, not the model's
        trial(2, "generalist", failure="bad_proposal"),  # the find matched no line of the recipe: no diff
        trial(3, "generalist", diff="-a\n+b", failure="illegal_edit"),  # applied, never ran
        trial(4, "generalist", diff="-a\n+c", job="j4", failure="crash"),
        trial(5, "debugger", diff="-c\n+d", job="j5", score=0.95),
        trial(6, "matrix:ablation", diff="-d\n+c", job="j6", score=0.9),  # the run matrix's, not the model's
    ]
    counted = count_proposals(trials)
    assert (counted.made, counted.applied, counted.ran) == (4, 3, 2)
    assert (counted.applied_share, counted.ran_share) == (0.75, 0.5)
    assert count_proposals(trials[:1]).applied_share is None  # no proposal: no share, not 0%


def test_a_preference_the_user_never_stated_is_counted_as_invented() -> None:
    words = normalised(f"{GOAL}\nalways include an ablation of each component\n{{}}")
    records = [
        record("preference", "Always include an ablation of each component."),  # the user's comment, verbatim
        record("preference", "they want to add to the budget and refine the process"),  # the planner's objectives
        record("constraint", "only use one seed"),
        record("lesson", "the solver stopped before converging at ten iterations", evidence=[]),
    ]
    counted = count_memory(records, words, [trial(1, "baseline", job="j1", score=0.9)])
    assert counted.invented_preferences == ["they want to add to the budget and refine the process", "only use one seed"]
    assert counted.by_type == {"preference": 2, "constraint": 1, "lesson": 1}
    assert (counted.with_evidence, counted.without_evidence) == (3, 1)


def test_a_failed_hypothesis_whose_edit_never_ran_is_an_untested_dead_end() -> None:
    dead_end = [record("failed_hypothesis", "increase the number of training samples")]
    crashed = [trial(1, "baseline", job="j1", score=0.9), trial(2, "generalist", diff="-a\n+b", job="j2", failure="crash"),
               trial(3, "matrix:seed", job="j3", score=0.9)]  # a scored matrix cell re-runs the baseline: no test
    assert count_memory(dead_end, "", crashed).untested_dead_ends == ["increase the number of training samples"]
    scored = [*crashed, trial(4, "generalist", diff="-a\n+c", job="j4", score=0.85)]
    assert count_memory(dead_end, "", scored).untested_dead_ends == []


SHEET = FactContext(sheet="Task: digits-classifier. LogisticRegression (sklearn.linear_model) on load_digits; "
                          "1797 images, 360 held out.", sizes={"1797", "360"})
PAPER = r"""\documentclass{article}
% Written by NanoResearch. A comment naming a CNN is no prose.
\title{A CNN for handwritten digits}
\begin{document}
\maketitle
\begin{abstract}
A logistic regression classifies the 1797 images.
\end{abstract}
\section{Method}
We train a convolutional neural network on MNIST with 60,000 images. The solver runs longer.
\begin{table}[htbp]
\caption{ResNet scores}
\end{table}
\bibliographystyle{plainnat}
\bibliography{references}
\end{document}
"""


def test_a_paper_stating_facts_not_on_the_fact_sheet_is_counted_title_included_floats_and_comments_not() -> None:
    found = unsupported_sentences(PAPER, SHEET)
    assert found == ["A CNN for handwritten digits.", "We train a convolutional neural network on MNIST with 60,000 images."]
    assert "ResNet" not in paper_prose(PAPER) and "Written by" not in paper_prose(PAPER)


def test_citations_count_the_papers_cite_keys_the_bibliography_and_what_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "paper.tex").write_text(r"As \citet{cortes1995support} and \citep{lecun1998gradient,invented2099} show.")
    (tmp_path / "references.bib").write_text("@article{cortes1995support,\n title={x}}\n@inproceedings{lecun1998gradient,"
                                              "\n title={y}}\n@misc{ioffe2015batch,\n title={z}}\n")
    counted = count_citations(tmp_path / "paper.tex", tmp_path / "references.bib", retrieved=8)
    assert (counted.cited, counted.bib_entries, counted.cited_without_entry, counted.retrieved) == (3, 3, 1, 8)
    assert count_citations(tmp_path / "none.tex", tmp_path / "none.bib", retrieved=2).cited == 0


def test_model_time_puts_planner_and_memory_calls_against_all_model_time() -> None:
    time = model_time([("planner", 2.0), ("analysis", 1.0), ("coding", 6.0), ("planner", 1.0), (None, 0.0)])
    assert (time.calls, time.seconds, time.coevolution_seconds) == (5, 10.0, 4.0)
    assert time.coevolution["planner"].calls == 2 and time.coevolution["memory+skills"].seconds == 1.0
    assert time.coevolution_share == pytest.approx(0.4)
    assert model_time([]).coevolution_share is None


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env or dict(os.environ),
                          timeout=900)


def test_the_bench_refuses_bad_arguments_with_a_message(tmp_path: Path) -> None:
    without_home = bench("--runs", "run-x")
    assert without_home.returncode == 2 and "--runs needs --home" in without_home.stderr
    empty = bench("--runs", "run-x", "--home", str(tmp_path))
    assert empty.returncode == 2 and "no nanoresearch.db" in empty.stderr
    not_a_task = bench("--tasks", str(tmp_path), "--home", str(tmp_path))
    assert not_a_task.returncode == 2 and "not a task folder" in not_a_task.stderr
    for result in (without_home, empty, not_a_task):
        assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- whole runs


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANORESEARCH_")}
    return {**env, "NANORESEARCH_HOME": str(home), "NANORESEARCH_USER": "alice", **extra}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The recorded demo run replayed in a home of its own: (home, run id)."""
    home = tmp_path_factory.mktemp("replayed") / "home"
    recording = json.loads(RECORDED.read_text())
    env = clean_env(home, NANORESEARCH_LLM__REPLAY="only", **AS_RECORDED)
    subprocess.run([*CLI, "llm", "import", str(RECORDED)], env=env, check=True, capture_output=True)
    ran = subprocess.run([*CLI, "run", recording["goal"], "--task", str(DIGITS), "--offline", "--corpus", str(CORPUS),
                          "--budget", recording["budget"], "--yes"], env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    with sqlite3.connect(home / "nanoresearch.db") as db:
        (run_id,) = db.execute("SELECT id FROM runs").fetchone()
    yield home, run_id


def measured(home: Path, run_id: str) -> RunQuality:
    settings = load_settings({"home": str(home)})
    with Store(settings.db_path) as store:
        return measure_run_quality(settings, store, store.ensure_user("alice"), store.get_run(run_id))


def assert_recomputable_from_the_store(home: Path, run_id: str, quality: RunQuality) -> None:
    """Every figure the store holds, counted again with SQL."""
    db = sqlite3.connect(home / "nanoresearch.db")
    proposed = "run_id = ? AND proposer != 'baseline' AND proposer NOT LIKE 'matrix:%'"
    count = lambda where: db.execute(f"SELECT COUNT(*) FROM trials WHERE {proposed} AND {where}", (run_id,)).fetchone()[0]  # noqa: E731
    assert quality.proposals.made == count("1") > 0
    assert quality.proposals.applied == count("diff != ''")
    assert quality.proposals.ran == count("job_id IS NOT NULL")
    (baseline,) = db.execute("SELECT score FROM trials WHERE run_id = ? AND proposer = 'baseline' ORDER BY id",
                             (run_id,)).fetchone()
    assert quality.baseline == baseline
    # a fresh home: every memory record in it is this run's
    assert quality.memory.by_type == dict(db.execute("SELECT type, COUNT(*) FROM memories GROUP BY type").fetchall())
    calls, seconds = db.execute("SELECT COUNT(*), COALESCE(SUM(latency_s), 0) FROM llm_calls WHERE run_id = ?",
                                (run_id,)).fetchone()
    assert (quality.model_time.calls, quality.model_time.seconds) == (calls, pytest.approx(seconds))
    planner_and_memory = db.execute("SELECT COALESCE(SUM(latency_s), 0) FROM llm_calls WHERE run_id = ? AND stage IN "
                                    "('planner', 'analysis')", (run_id,)).fetchone()[0]
    assert quality.model_time.coevolution_seconds == pytest.approx(planner_and_memory)
    (workspace,) = db.execute("SELECT workspace FROM runs WHERE id = ?", (run_id,)).fetchone()
    folder = home / workspace if not Path(workspace).is_absolute() else Path(workspace)
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    assert quality.degenerate == sum(e["event"] == "degenerate_output" for e in log)
    assert quality.success == json.loads((folder / "results.json").read_text())["success"]


@pytest.mark.slow  # a whole run replayed: real sandboxed trials, MiniLM
def test_the_replayed_demo_run_is_measured_as_its_store_counts_it(replayed: tuple[Path, str]) -> None:
    home, run_id = replayed
    quality = measured(home, run_id)
    assert_recomputable_from_the_store(home, run_id, quality)
    ideas = json.loads(next((home / "users" / "alice" / "runs").glob("*/ideas.json")).read_text())
    assert (quality.claims_verified, quality.claims_dropped) == (len(ideas["evidence"]), len(ideas["evidence_dropped"]))
    assert quality.citations.retrieved == len(ideas["papers"]) > 0
    assert quality.degenerate >= 1  # the demo's "Claim 1"
    assert quality.memory.invented_preferences == [] and quality.memory.untested_dead_ends == []


@pytest.mark.slow
def test_the_bench_prints_the_table_of_an_existing_run(replayed: tuple[Path, str], tmp_path: Path) -> None:
    home, run_id = replayed
    result = bench("--home", str(home), "--runs", run_id, "--json-out", str(tmp_path / "q.json"),
                   env=clean_env(tmp_path / "elsewhere"))
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if run_id in line]
    quality = measured(home, run_id)
    p = quality.proposals
    assert row.split()[:2] == ["digits-classifier", "-"] and f"{p.made}/{p.applied}/{p.ran}/{p.caught}" in row.split()
    assert "applied_share" in result.stdout and "invented_preferences" in result.stdout
    written = json.loads((tmp_path / "q.json").read_text())
    assert RunQuality.model_validate(written["runs"][0]["quality"]) == quality
    assert written["summary"][0]["task"] == "digits-classifier" and written["summary"][0]["runs"] == 1


@pytest.mark.slow  # a whole run on a served model: real sandboxed trials, MiniLM, pdflatex
def test_the_bench_runs_a_task_on_the_configured_model_and_measures_its_paper(tmp_path: Path) -> None:
    with ResearcherServer() as server:
        write_config(tmp_path / "model", server.url)
        result = bench("--tasks", str(DIGITS), "--seeds", "1", "--budget", "trials=4", "--home", str(tmp_path / "homes"),
                       "--config", str(tmp_path / "model" / "config.toml"), "--json-out", str(tmp_path / "q.json"),
                       env=clean_env(tmp_path / "elsewhere"))
    assert result.returncode == 0, result.stderr
    (run,) = json.loads((tmp_path / "q.json").read_text())["runs"]
    home = Path(run["home"])
    assert home == tmp_path / "homes" / "digits-classifier" / "seed-0" and run["seed"] == 0 and run["exit_code"] == 0
    quality = RunQuality.model_validate(run["quality"])
    assert_recomputable_from_the_store(home, quality.run_id, quality)
    assert quality.model_time.calls > 0 and quality.model_time.coevolution["planner"].calls > 0
    # the researcher's edit beats the baseline, so a paper is written and its checks have run
    assert quality.success and quality.paper and quality.improvement is not None and quality.improvement > 0
    assert quality.unsupported_facts == []
    assert quality.citations.cited == quality.citations.bib_entries > 0 and quality.citations.cited_without_entry == 0
    assert quality.paper_removed.get("guard", 0) >= 1  # the researcher's typed number, removed by the writing stage
