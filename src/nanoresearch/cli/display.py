"""What the user sees while a run goes: each event as a line, and a live status line underneath
with the current stage, tokens and money spent and the budget left."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.status import Status

from nanoresearch.compute.budget import Budget, left, spent
from nanoresearch.pipeline.orchestrator import Answer
from nanoresearch.store import Store


class Reporter:
    def __init__(self, console: Console, store: Store, user_id: int, run_id: str, budget: Budget) -> None:
        self.console, self.store, self.user_id, self.run_id = console, store, user_id, run_id
        self.budget = budget
        self.stage = "starting"
        self.status: Status | None = None

    def __enter__(self) -> Reporter:
        if self.console.is_terminal:
            self.status = self.console.status(self.line())
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status:
            self.status.stop()

    def say(self, message: str) -> None:
        if message.startswith("[stage] "):
            self.stage = message[len("[stage] ") :].split(":", 1)[0]
            self.console.rule(f"[bold]{escape(self.stage)}[/]")
            message = message[len("[stage] ") :]
        style = "dim" if message.startswith("trial ") else ""
        self.console.print(f"[{style}]{escape(message)}[/]" if style else escape(message), highlight=False)
        if self.status:
            self.status.update(self.line())

    def line(self) -> str:
        used = spent(self.store, self.user_id, self.run_id)
        remaining = left(self.budget, used)
        budget = ", ".join(f"{unit} {value:.3g}" for unit, value in remaining.items()) or "no limits"
        return (f"[bold]{escape(self.stage)}[/] · {used.trials} trials · {used.tokens:.0f} tokens · "
                f"${used.usd:.4f} · left: {escape(budget)}")


class TerminalGate:
    """Asks after each stage: approve, comment or redirect."""

    def __init__(self, console: Console, reporter: Reporter) -> None:
        self.console, self.reporter = console, reporter

    def ask(self, stage: str, summary: str) -> Answer | None:
        if self.reporter.status:
            self.reporter.status.stop()
        try:
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
        finally:
            if self.reporter.status:
                self.reporter.status.start()
