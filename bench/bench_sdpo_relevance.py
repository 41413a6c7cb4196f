"""Precision and recall of the SDPO relevance check on a labelled set of feedback texts x stages.

The planner (the embedded SmolLM2-135M unless --model) scores each labelled feedback text on its
plan as a training round does (`policy.checks.relevance`: KL of the teacher shown the feedback from
the teacher shown a contentless reply, averaged over the 8 plan tokens it moves most). Feedback at or
above the threshold is kept for training, the rest flagged. Printed: each item's relevance (and the
old statistic, the mean over every plan token) and label, then precision and recall (actionable =
positive) over a sweep of thresholds, marking the configured `policy.min_relevance`, and for the
check before this calibration (the mean, at 0.015).

    python bench/bench_sdpo_relevance.py
    python bench/bench_sdpo_relevance.py --data my-labels.json --model /path/planner.gguf
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nanoresearch.policy.calibration import Calibration

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "policy" / "data" / "relevance_labelled.json"
OLD_SETTING = 0.015  # policy.min_relevance before this calibration, on the mean over every plan token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default=None, help="the planner model (default: [stages.planner] model)")
    args = parser.parse_args()

    from nanoresearch.config import load_settings
    from nanoresearch.llm.local import load_model
    from nanoresearch.policy.calibration import calibrate, measure, read_labelled
    from nanoresearch.policy.sdpo import LossConfig

    settings = load_settings()
    spec = args.model or settings.stage("planner").model
    lm = load_model(spec, settings.cache_dir, threads=settings.local.threads, engine="transformers")
    labelled = read_labelled(args.data)
    started = time.perf_counter()
    measured = measure(lm, lm.model, labelled, LossConfig.of(settings.policy), spec)
    seconds = time.perf_counter() - started
    print(f"{len(measured)} labelled feedback texts on {len(labelled.plans)} plans, planner {spec}, {seconds:.0f} s\n")
    for m in sorted(measured, key=lambda m: m.relevance):
        label = "actionable " if m.item.actionable else "contentless"
        print(f"  {m.relevance:8.4f}  (mean {m.mean:.4f})  {label}  {m.item.plan:<14}  {m.item.feedback}")
    print(f"\n  {'threshold':>10} {'precision':>10} {'recall':>8} {'kept':>5} {'flagged':>8}")
    configured = settings.policy.min_relevance
    for threshold in sorted({configured, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2}):
        print_row(f"{threshold:10.4f}", calibrate(measured, threshold), " <- policy.min_relevance" if threshold == configured else "")
    print_row(f"{'mean':>5} {OLD_SETTING}", calibrate(measured, OLD_SETTING, mean=True), " <- before this calibration")


def print_row(label: str, c: Calibration, note: str) -> None:
    print(f"  {label:>10} {c.precision:10.1%} {c.recall:8.1%} {c.kept_actionable + c.kept_contentless:5d}"
          f" {c.flagged_actionable + c.flagged_contentless:8d}{note}")


if __name__ == "__main__":
    main()
