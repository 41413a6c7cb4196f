"""What the user sees while a run goes: each event as a line, each stage's `done` line with its time,
tokens, money and the budget left, and a sign of life during long model calls: in a terminal a live
status line underneath (stage, its clock, what was spent and what is left), elsewhere (a pipe, a log
file, CI) a heartbeat line after each `HEARTBEAT_S` without output. The numbers are read from the
store's ledger (pipeline/progress.py). Warnings from libraries (torch, transformers, numpy…) go to the
run's log.jsonl as `warning` events, not to the user's screen."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.status import Status

from nanoresearch.compute.budget import Budget, left, spent
from nanoresearch.pipeline.orchestrator import Answer
from nanoresearch.pipeline.progress import duration_text, left_text, spending_text
from nanoresearch.store import Store

HEARTBEAT_S = 20.0  # without a terminal: a line after this long without one, so a log shows the run is alive
TICK_S = 1.0  # how often the terminal's status line redraws its clock
STAGE = "[stage] "  # a message that opens a stage: `[stage] NAME: what it does`


class Reporter:
    def __init__(self, console: Console, store: Store, user_id: int, run_id: str, budget: Budget,
                 heartbeat_s: float = HEARTBEAT_S, log_warnings: bool = True) -> None:
        """`log_warnings`: this process drives the run, so library warnings go to the run's log (not so for `watch`)."""
        self.console, self.store, self.user_id, self.run_id = console, store, user_id, run_id
        self.budget, self.heartbeat_s = budget, heartbeat_s
        self.log = Path(store.get_run(run_id).workspace) / "log.jsonl" if log_warnings else None
        self._restore = ExitStack()
        self.stage = "starting"
        self.stage_since = self.last_line = time.time()
        self.status: Status | None = None
        self._lock = threading.Lock()  # the ticker thread prints too
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)

    def __enter__(self) -> Reporter:
        if self.log:
            self._restore.enter_context(warnings.catch_warnings())  # the previous handler comes back on exit
            warnings.showwarning = partial(log_warning, self.log)
        if self.console.is_terminal:
            self.status = self.console.status(self.line(self.store))
            self.status.start()
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()
        if self.status:
            self.status.stop()
        self._restore.close()

    def say(self, message: str, at: float | None = None) -> None:
        """Print one event of the run; `at` is when it happened (now, unless it is read back from a log)."""
        with self._lock:
            if message.startswith(STAGE):
                message = message[len(STAGE) :]
                self.stage, self.stage_since = message.split(":", 1)[0], at or time.time()
                self.console.rule(f"[bold]{escape(self.stage)}[/]")
            style = "dim" if message.startswith("trial ") else ""
            self.console.print(f"[{style}]{escape(message)}[/]" if style else escape(message), highlight=False)
            self.last_line = time.time()
            if self.status:
                self.status.update(self.line(self.store))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No status line and no ticking while the user answers a prompt."""
        with self._lock:
            if self.status:
                self.status.stop()
            try:
                yield
            finally:
                if self.status:
                    self.status.start()

    def line(self, store: Store) -> str:
        """The status line: the stage and how long it has been going, what the run spent and what is left."""
        used = spent(store, self.user_id, self.run_id)
        return (f"[bold]{escape(self.stage)}[/] {duration_text(time.time() - self.stage_since)} · "
                f"{spending_text(used)} · left: {escape(left_text(left(self.budget, used)))}")

    def _tick(self) -> None:
        # A thread of its own reads the store through a connection of its own.
        with Store(self.store.path) as store:
            while not self._stop.wait(min(TICK_S, self.heartbeat_s)):
                with self._lock:
                    if self.status:
                        self.status.update(self.line(store))
                    elif time.time() - self.last_line >= self.heartbeat_s:
                        self.console.print(f"  … still working: {self.line(store)}")
                        self.last_line = time.time()


def log_warning(log: Path, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                file: object = None, line: str | None = None) -> None:
    """warnings.showwarning, with the log first: a library's warning becomes a `warning` event of the run."""
    event = {"t": round(time.time(), 3), "event": "warning", "category": category.__name__, "message": str(message),
             "source": f"{filename}:{lineno}"}
    with log.open("a", encoding="utf-8") as out:
        out.write(json.dumps(event) + "\n")


class TerminalGate:
    """Asks after each stage: approve, comment or redirect."""

    def __init__(self, console: Console, reporter: Reporter) -> None:
        self.console, self.reporter = console, reporter

    def ask(self, stage: str, summary: str) -> Answer | None:
        with self.reporter.paused():
            choice = Prompt.ask(
                f"[bold]{stage}[/] done. [a]pprove, [c]omment or [r]edirect", choices=["a", "c", "r"], default="a",
                console=self.console,
            )
            if choice == "a":
                return Answer(action="approve")
            text = ""
            while not text.strip():
                text = Prompt.ask("your comment" if choice == "c" else "what should this stage do instead", console=self.console)
            return Answer(action="comment" if choice == "c" else "redirect", text=text.strip())
