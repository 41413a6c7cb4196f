"""The dashboard (`nanoresearch ui`): page times and how fast a stage event reaches an open page.

In a fresh temporary home, one user gets --runs research runs (each with steps, a baseline and two
trials, charges) and one run with a --trials trial tree (random parents, a fifth failed). The app is
served by real uvicorn on a loopback port, as `nanoresearch ui` serves it, and fetched over HTTP:

1. the runs list (`/`): as it opens (the newest 200 rows, all runs read and filtered) and with every run
   shown (`?limit=N`): p50 / p95 over --repeat fetches (aim: p95 <= 100 ms);
2. the run page with the lineage tree (`/runs/RUN`, server-rendered SVG): p50 / p95 (aim <= 100 ms);
3. the live delay: an event stream is open on the run; a step is saved in the store (as the pipeline
   does, from another connection) and the time until the stream's `change` frame arrives is taken,
   --events times (aim <= 1 s). With Playwright and /usr/bin/chromium, also the time until a real
   browser's open page has swapped in the fragment with the new stage row (stream + fetch + DOM swap;
   the page's own timestamp of the swap, same machine clock).

    python bench/bench_web.py                      # ~1-2 min on 2 cores
    python bench/bench_web.py --runs 200 --trials 100 --repeat 20
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx

STAGES = ("ideation", "planning", "experiment", "analysis", "figures", "writing", "review")
CHROMIUM = Path("/usr/bin/chromium")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def populate(settings, store, runs: int, trials: int) -> str:  # noqa: ANN001 - Settings, Store
    """`runs` small runs and one run with a `trials`-node tree; returns the big run's id."""
    from nanoresearch.runs import workspace_for
    from nanoresearch.store.models import RunOptions, Trial

    user_id = store.ensure_user(settings.user)
    project_id = store.ensure_project(user_id, "bench")

    def new_run(run_id: str, goal: str, kind: str):  # noqa: ANN202 - a Run
        # Our own ids: runs.new_run's (second + 4 hex digits) collide when a thousand are made in a second.
        workspace = workspace_for(settings, run_id)
        workspace.mkdir(parents=True)
        return store.create_run(run_id, project_id, goal, str(workspace), RunOptions(), kind=kind)

    rng = random.Random(0)
    for index in range(runs):
        run = new_run(f"run-bench-{index:05d}", f"goal number {index}", "research")
        for stage in STAGES[: rng.randint(1, len(STAGES))]:
            store.save_step(run.id, stage, "stage", "done", {"summary": "ok"})
        base = store.add_trial(Trial(run_id=run.id, proposer="baseline", command="python train.py", executor="local",
                                     status="done", kept=True, score=0.5))
        for _ in range(2):
            store.add_trial(Trial(run_id=run.id, parent_id=base.id, proposer="llm", command="python train.py",
                                  executor="local", status="done", score=rng.random()))
        store.charge(user_id, run.id, "tokens", 1000, "bench")
    big = new_run("run-bench-tree", "the big tree", "trials")
    ids: list[int] = []
    for index in range(trials):
        failed = rng.random() < 0.2
        trial = store.add_trial(Trial(
            run_id=big.id, parent_id=rng.choice(ids[-50:]) if ids else None, proposer="llm",
            hypothesis=f"change number {index}", command="python train.py", executor="local",
            status="failed" if failed else "done", failure="crash" if failed else None,
            kept=not failed and rng.random() < 0.3, score=None if failed else rng.random()))
        ids.append(trial.id)
    store.save_step(big.id, "experiment", "trials", "running")
    return big.id


def serve(app) -> tuple[str, object, threading.Thread]:  # noqa: ANN001 - a FastAPI app
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def page_times(client: httpx.Client, url: str, repeat: int) -> list[float]:
    client.get(url).raise_for_status()  # warm: templates compiled, the thread's store opened
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def stream_delays(base: str, store, run_id: str, events: int) -> list[float]:  # noqa: ANN001 - Store
    delays = []
    with httpx.Client(timeout=30) as client, client.stream("GET", f"{base}/runs/{run_id}/events") as response:
        lines = response.iter_lines()
        while next(lines) != "event: ready":
            pass
        for index in range(events):
            time.sleep(random.uniform(0, 0.5))  # events land at any point of the server's poll cycle
            start = time.perf_counter()
            store.save_step(run_id, "analysis", f"step-{index}", "done")
            while next(lines) != "event: change":
                pass
            delays.append(time.perf_counter() - start)
    return delays


def browser_delays(base: str, store, run_id: str, events: int) -> list[float] | None:  # noqa: ANN001 - Store
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not CHROMIUM.exists():
        return None
    delays = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page(base_url=base)
        page.goto(f"/runs/{run_id}")
        page.locator("#live[data-connected='yes']").wait_for(state="attached", timeout=30_000)
        for index in range(events):
            time.sleep(random.uniform(0, 0.5))
            saved = time.time()
            store.save_step(run_id, f"bench-{index}", "stage", "running")
            page.locator("#live tr.stage", has_text=f"bench-{index}").wait_for(timeout=30_000)
            # The page stamps each swap (live.js: data-updated, epoch ms): Playwright's own polling of the
            # DOM (up to 500 ms between looks) is not part of the delay a user sees.
            delays.append(int(page.locator("#live").get_attribute("data-updated")) / 1000 - saved)
        browser.close()
    return delays


def report(name: str, seconds: list[float], aim_ms: float) -> None:
    p50, p95 = pct(seconds, 50) * 1000, pct(seconds, 95) * 1000
    print(f"{name:<50} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   (aim p95 <= {aim_ms:.0f} ms, n={len(seconds)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-web-"))
    os.environ["NANORESEARCH_HOME"] = str(home)
    from nanoresearch.config import load_settings
    from nanoresearch.store import Store
    from nanoresearch.web.app import create_app, freeze_loaded_objects

    settings = load_settings()
    writer = Store(settings.db_path)  # the pipeline's connection: events are written from outside the server
    start = time.perf_counter()
    big = populate(settings, writer, args.runs, args.trials)
    print(f"populated {args.runs} runs and a {args.trials}-trial tree in {time.perf_counter() - start:.1f} s ({home})")

    app = create_app(settings)
    freeze_loaded_objects()  # as `nanoresearch ui` does before serving
    base, server, thread = serve(app)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            report(f"runs list of {args.runs} runs (newest 200 shown)", page_times(client, "/", args.repeat), 100)
            report(f"runs list of {args.runs} runs, all shown", page_times(client, f"/?limit={args.runs}", args.repeat), 100)
            report(f"run page with a {args.trials}-trial lineage", page_times(client, f"/runs/{big}", args.repeat), 100)
            report("live fragment (/runs/RUN/timeline)", page_times(client, f"/runs/{big}/timeline", args.repeat), 100)
        report("store event -> SSE change frame", stream_delays(base, writer, big, args.events), 1000)
        shown = browser_delays(base, writer, big, args.events)
        if shown is None:
            print("store event -> row shown in Chromium: skipped (playwright or /usr/bin/chromium missing)")
        else:
            report("store event -> row shown in Chromium", shown, 1000)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
