"""paper.tex -> paper.pdf with latexmk, or pdflatex + bibtex + pdflatex x2 when latexmk is missing.

TeX runs with shell escape off and kpathsea's paranoid file rules (no writing or reading through
absolute paths, parent folders or dot files), in the paper's folder, without reading any
latexmkrc (a latexmkrc is Perl). A LaTeX error is an answer, not an exception: the result names
the error and its line, with the end of the log.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel

_TEX_SAFETY = {"shell_escape": "f", "openout_any": "p", "openin_any": "p"}
_TEX_FLAGS = ["-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]
_TAIL_LINES = 40
# With -file-line-error TeX starts an error line with "file:line:"; errors without a place start with "!".
_ERROR_LINE = re.compile(r"^(?:!\s*|(?P<file>\S+?\.[A-Za-z]+):(?P<line>\d+):\s*)(?P<error>.+)$", re.M)
_BIBTEX_ERROR = re.compile(r"^(?:I couldn't open.*|.*---line \d+ of file.*|Repeated entry.*)$", re.M)


class CompileResult(BaseModel):
    ok: bool
    pdf: Path | None = None
    log_tail: str = ""
    tool: str  # "latexmk", "pdflatex" or "none"
    message: str


class _Failed(Exception):
    """A step exited with an error or ran out of time; `output` is what it printed."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.message, self.output = message, output


def compile_pdf(tex_path: Path, timeout_s: float = 120) -> CompileResult:
    tex_path = Path(tex_path).resolve()
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        return CompileResult(
            ok=False,
            tool="none",
            message=f"pdflatex not found; the .tex is kept at {tex_path}, install texlive (see README)",
        )
    latexmk = shutil.which("latexmk")
    tool = "latexmk" if latexmk else "pdflatex"
    # Build from scratch: a half-written .aux breaks the next run, and latexmk's own database
    # (.fdb_latexmk) with the PDF gone makes it fail on a rebuild (exit 12).
    for suffix in (".pdf", ".aux", ".fdb_latexmk", ".fls", ".bbl", ".blg", ".out"):
        tex_path.with_suffix(suffix).unlink(missing_ok=True)
    deadline = time.monotonic() + timeout_s
    try:
        if latexmk:
            _run_latexmk(latexmk, pdflatex, tex_path, deadline)
        else:
            _run_pdflatex_passes(pdflatex, tex_path, deadline)
    except _Failed as failure:
        return _failed(tex_path, tool, failure)
    pdf = tex_path.with_suffix(".pdf")
    if not pdf.is_file():
        return CompileResult(ok=False, tool=tool, log_tail=_log_tail(tex_path, ""), message=f"{tool} wrote no PDF")
    return CompileResult(ok=True, pdf=pdf, tool=tool, log_tail=_log_tail(tex_path, ""), message=f"wrote {pdf}")


def _run_latexmk(latexmk: str, pdflatex: str, tex_path: Path, deadline: float) -> None:
    engine = f"{shlex.quote(pdflatex)} -no-shell-escape %O %S"
    _run([latexmk, "-pdf", "-norc", *_TEX_FLAGS, f"-pdflatex={engine}", tex_path.name], tex_path.parent, deadline)


def _run_pdflatex_passes(pdflatex: str, tex_path: Path, deadline: float) -> None:
    command = [pdflatex, "-no-shell-escape", *_TEX_FLAGS, tex_path.name]
    _run(command, tex_path.parent, deadline)
    bibtex = shutil.which("bibtex")
    aux = tex_path.with_suffix(".aux")
    # Without bibtex the paper still compiles; its citations print as [?].
    if bibtex and aux.is_file() and "\\bibdata" in aux.read_text(errors="replace"):
        _run([bibtex, tex_path.stem], tex_path.parent, deadline)
    _run(command, tex_path.parent, deadline)
    _run(command, tex_path.parent, deadline)


def _run(command: list[str], folder: Path, deadline: float) -> str:
    name = Path(command[0]).name
    try:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=os.environ | _TEX_SAFETY,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # one process group: a timeout kills latexmk and the pdflatex under it
        )
    except OSError as exc:
        raise _Failed(f"could not start {name}: {exc}", "") from exc
    try:
        output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise _Failed(f"{name} ran out of time", output) from None
    if process.returncode != 0:
        raise _Failed(f"{name} failed (exit code {process.returncode})", output)
    return output


def _failed(tex_path: Path, tool: str, failure: _Failed) -> CompileResult:
    log = _read(tex_path.with_suffix(".log"))
    error = _ERROR_LINE.search(log)
    if error:
        where = f" at {Path(error['file']).name} line {error['line']}" if error["line"] else ""
        message = f"LaTeX error{where}: {error['error'].strip()} ({failure.message})"
    else:
        bibtex_error = _BIBTEX_ERROR.search(_read(tex_path.with_suffix(".blg")))
        message = f"BibTeX error: {bibtex_error.group(0)}" if bibtex_error else failure.message
    message += f"; the .tex is kept at {tex_path}"
    return CompileResult(ok=False, tool=tool, log_tail=_log_tail(tex_path, failure.output), message=message)


def _log_tail(tex_path: Path, output: str) -> str:
    """The error and the lines after it (TeX prints the offending line as 'l.42 ...') or the log's last lines."""
    log = _read(tex_path.with_suffix(".log")) or output
    error = _ERROR_LINE.search(log)
    lines = log[error.start() :].splitlines()[:_TAIL_LINES] if error else log.splitlines()[-_TAIL_LINES:]
    return "\n".join(lines)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""
