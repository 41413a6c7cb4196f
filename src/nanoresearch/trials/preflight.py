"""Crashes code can see before a trial runs: syntax errors, undefined names, modules that do not exist.

A trial is the scarcest thing a search spends. Small models often write an edit that cannot run (a
variable renamed on one line only, `X_train` for the recipe's `x_train`, an import of
`sklearn.convolutional`); run, it costs a trial and then a debugging trial. Checked statically, the
model is asked to repair it before anything runs. Only certain failures count: pyflakes' syntax
errors and undefined names, and imports no installed package provides (found without importing
anything, so a proposal cannot make this process run code).
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
from dataclasses import dataclass
from pathlib import Path

from pyflakes import api, messages
from pyflakes.reporter import Reporter

# In the detail of a proposal refused by this check (a `bad_proposal` that never ran), so counts can tell it.
MARK = "checked before running"


@dataclass(frozen=True)
class Problem:
    """An error the recipe would raise at once, worded as Python would raise it."""

    file: str
    line: int
    error: str  # e.g. "NameError: name 'X_train' is not defined"
    code: str  # the line as written

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.error}"

    def as_traceback(self) -> str:
        """As Python prints it, the line quoted: models repair from a traceback and copy `find` from its quote."""
        return f'  File "{self.file}", line {self.line}\n    {self.code.strip()}\n{self.error}'


def problems(workdir: Path, files: list[str], imports: bool = True) -> list[Problem]:
    """What in the Python files among `files` would fail at once; empty when nothing shows.
    `imports`: whether the trial runs on this interpreter, so that a module missing here is missing there."""
    found: list[Problem] = []
    for name in files:
        if name.endswith(".py") and (workdir / name).is_file():
            source = (workdir / name).read_text(encoding="utf-8")
            found += _flakes(name, source) or (_missing_imports(name, source, workdir) if imports else [])
    return found


class _Collect(Reporter):
    def __init__(self, name: str, source: str) -> None:
        self.name, self.lines = name, source.splitlines()
        self.found: list[Problem] = []

    def add(self, line: int, error: str) -> None:
        code = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        self.found.append(Problem(self.name, line, error, code))

    def unexpectedError(self, filename: str, msg: str) -> None:  # noqa: N802 (pyflakes' name)
        self.add(0, f"SyntaxError: {msg}")

    def syntaxError(self, filename: str, msg: str, lineno: int, offset: int | None, text: str | None) -> None:  # noqa: N802
        self.add(lineno, f"SyntaxError: {msg}")

    def flake(self, message: messages.Message) -> None:
        if isinstance(message, messages.UndefinedName):
            self.add(message.lineno, f"NameError: name {message.message_args[0]!r} is not defined")
        elif isinstance(message, messages.UndefinedLocal):
            self.add(message.lineno, f"UnboundLocalError: local variable {message.message_args[0]!r} "
                                     "referenced before assignment")


def _flakes(name: str, source: str) -> list[Problem]:
    reporter = _Collect(name, source)
    api.check(source, name, reporter)
    return reporter.found


def _missing_imports(name: str, source: str, workdir: Path) -> list[Problem]:
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [Problem(name, node.lineno, f"ModuleNotFoundError: No module named {module!r}", lines[node.lineno - 1])
                  for module in modules if not _importable(module, workdir)]
    return found

def _importable(module: str, workdir: Path) -> bool:
    """Whether `module` resolves on this interpreter's path or beside the recipe, by finding its files
    (importing a parent package would run its code)."""
    parts = module.split(".")
    top = parts[0]
    if top in sys.builtin_module_names or top in sys.stdlib_module_names:
        return True
    spec = importlib.machinery.PathFinder.find_spec(top, [str(workdir), *sys.path])
    for depth in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            # a compiled or namespace-less module may define submodules at import time: not certain
            return spec is not None
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: depth + 1]), list(spec.submodule_search_locations))
    return spec is not None
