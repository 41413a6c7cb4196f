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
from pathlib import Path

from pyflakes import api, messages
from pyflakes.reporter import Reporter

# In the detail of a proposal refused by this check (a `bad_proposal` that never ran), so counts can tell it.
MARK = "checked before running"

# What pyflakes reports that would stop the recipe, not merely look untidy.
CERTAIN = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)


def problems(workdir: Path, files: list[str], imports: bool = True) -> list[str]:
    """Why the Python files among `files` would crash at once, one line each; empty when nothing shows.
    `imports`: whether the trial runs on this interpreter, so that a module missing here is missing there."""
    found: list[str] = []
    for name in files:
        if name.endswith(".py") and (workdir / name).is_file():
            source = (workdir / name).read_text(encoding="utf-8")
            found += _flakes(name, source) or (_missing_imports(name, source, workdir) if imports else [])
    return found


class _Collect(Reporter):
    def __init__(self) -> None:
        self.found: list[str] = []

    def unexpectedError(self, filename: str, msg: str) -> None:  # noqa: N802 (pyflakes' name)
        self.found.append(f"{filename}: {msg}")

    def syntaxError(self, filename: str, msg: str, lineno: int, offset: int | None, text: str | None) -> None:  # noqa: N802
        self.found.append(f"{filename}, line {lineno}: syntax error: {msg}")

    def flake(self, message: messages.Message) -> None:
        if isinstance(message, CERTAIN):
            self.found.append(f"{message.filename}, line {message.lineno}: {message.message % message.message_args}")


def _flakes(name: str, source: str) -> list[str]:
    reporter = _Collect()
    api.check(source, name, reporter)
    return reporter.found


def _missing_imports(name: str, source: str, workdir: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [f"{name}, line {node.lineno}: no module named '{module}' is installed"
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
