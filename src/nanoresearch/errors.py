"""Error taxonomy. Every error a user can cause or fix carries a hint saying how.

`UserError` subclasses are shown by the CLI as a one-line message plus hint and a non-zero exit
code, never as a traceback. Anything else reaching the CLI is a bug in NanoResearch.
"""

from __future__ import annotations


class NanoResearchError(Exception):
    """Base for errors the CLI reports cleanly."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UserError(NanoResearchError):
    """The user's input (arguments, files) is wrong."""


class ConfigError(UserError):
    exit_code = 2


class StoreError(NanoResearchError):
    """The database cannot be opened, migrated or written."""


class LLMError(NanoResearchError):
    """A language-model call failed."""


class TransientLLMError(LLMError):
    """Worth retrying: timeouts, rate limits, server errors, dropped connections."""


class LLMTimeoutError(TransientLLMError):
    pass


class EndpointUnavailableError(LLMError):
    """The endpoint stayed unreachable (or kept failing transiently) through every retry.

    Not the model's fault and not the trial's: a run pauses on it (resume continues), and the
    trial loop never charges a trial for it.
    """


class FatalLLMError(LLMError):
    """Retrying cannot help: bad key, unknown model, malformed request."""


class AuthError(FatalLLMError):
    pass


class ModelNotFoundError(FatalLLMError):
    pass


class RequestRejectedError(FatalLLMError):
    """The server understood us but refused the request's shape (HTTP 400/422)."""


class MissingDependencyError(UserError):
    """An optional extra is not installed."""


class StructuredOutputError(LLMError):
    """The model's output could not be parsed into the schema, even after repair."""


class ReplayMissError(LLMError):
    """Replay-only mode was asked for a call that was never recorded."""


class BudgetExhausted(NanoResearchError):
    """A unit of the run's budget is spent: the run stops (`stopped: budget`) and `resume --budget`
    gives it more. Its message names the limit and what was spent, its hint the flag that raises it."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None, unit: str | None = None) -> None:
        super().__init__(message, hint)
        self.unit = unit  # the Budget field that is spent ("tokens", "usd", ...), when one is


class RunInterrupted(NanoResearchError):
    """Ctrl-C or SIGTERM stopped a run: it is paused, and the hint names the command that continues it."""

    exit_code = 130  # what a shell reports for a process stopped by Ctrl-C


class LiteratureError(NanoResearchError):
    """A literature source failed, answered something unreadable, or a corpus file is unusable."""
