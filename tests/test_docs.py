"""The documentation stays true: README.md and docs/*.md are checked against the code they describe.

No model runs here. The checks are structural: the README's size, every relative link (and its
#heading), every `nanoresearch ...` command shown (its command path and each flag must exist in the
Typer app), every `make` target shown, the paths and functions docs/architecture.md cites, the keys
of the task format and of the settings.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import typer.main
from pydantic import BaseModel

from nanoresearch.cli import app
from nanoresearch.config import Settings
from nanoresearch.trials.task import Task

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "nanoresearch"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ARCHITECTURE = DOCS / "architecture.md"
README_MAX_BYTES = 12_000
ONE_RUN_MAX_FILES = 10

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
SHELL_OPERATORS = {"&&", "||", ";", "|", ">", ">>", "<", "2>", "&"}
# A module path (brace lists allowed: stages/{a,b}.py) or a folder path ending in "/".
CITED_PATH = re.compile(
    r"(?<![\w./{,-])((?:[A-Za-z_]\w*/)*(?:[A-Za-z_]\w*|\{[\w,]+\})\.py|(?:[a-z_][a-z0-9_]*/)+)(?![\w/])"
)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def without_code_blocks(text: str) -> str:
    return FENCE.sub("", text)


def code_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


# ---------------------------------------------------------------- commands shown in the docs


def logical_lines(block: str) -> Iterator[str]:
    """Lines of a code block, with backslash continuations joined."""
    pending = ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def shell_segments(line: str) -> Iterator[list[str]]:
    """The simple commands of one shell line (split at &&, |, ;, redirections), comments dropped."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return  # not shell (a diagram, a TOML line with an apostrophe): it shows no command
    segment: list[str] = []
    for token in tokens:
        if token in SHELL_OPERATORS:
            if segment:
                yield segment
            segment = []
        else:
            segment.append(token)
    if segment:
        yield segment


def is_program(token: str, name: str) -> bool:
    return token == name or token.endswith(f"/{name}")


def shown_commands(text: str, program: str) -> list[list[str]]:
    """Every `program ...` command in the page: in code blocks, and in inline code in the prose."""
    lines = [line for block in code_blocks(text) for line in logical_lines(block)]
    lines += [span for span in INLINE_CODE.findall(without_code_blocks(text)) if span.startswith(f"{program} ")]
    return [segment for line in lines for segment in shell_segments(line) if is_program(segment[0], program)]


def option_names(command: Any) -> dict[str, Any]:
    names = {"--help": None}
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option":
            for name in [*param.opts, *param.secondary_opts]:
                names[name] = param
    return names


def as_flag(token: str) -> str | None:
    """`--task`, `[--json]`, `--budget=...` -> the flag's name; None for anything that is not a flag."""
    token = token.strip("[]()")
    if not token.startswith("-") or token == "-" or re.fullmatch(r"-[\d.]+", token):
        return None
    return token.split("=", 1)[0]


def command_problems(tokens: list[str], root: Any) -> list[str]:
    """What in `nanoresearch a b --flag ...` does not exist in the app: a command or a flag."""
    command, path, rest = root, ["nanoresearch"], tokens[1:]
    while rest and getattr(command, "commands", None) is not None:
        flag = as_flag(rest[0])
        if flag is not None:  # an option of the group itself, such as --user bob
            options = option_names(command)
            if flag not in options:
                return [f"`{' '.join(path)}` has no option {flag}"]
            takes_value = options[flag] is not None and not options[flag].is_flag and "=" not in rest[0]
            rest = rest[2:] if takes_value else rest[1:]
            continue
        if rest[0] not in command.commands:
            return [f"`{' '.join(path)}` has no command {rest[0]!r} (it has: {', '.join(sorted(command.commands))})"]
        command = command.commands[rest[0]]
        path.append(rest[0])
        rest = rest[1:]
    options = option_names(command)
    return [f"`{' '.join(path)}` has no option {flag}"
            for flag in (as_flag(token) for token in rest) if flag is not None and flag not in options]


@cache
def cli_root() -> Any:
    return typer.main.get_command(app)


def leaf_commands(command: Any, path: tuple[str, ...] = ("nanoresearch",)) -> Iterator[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path
        return
    for name, sub in subcommands.items():
        yield from leaf_commands(sub, (*path, name))


def command_path(tokens: list[str]) -> tuple[str, ...]:
    """The command words of a shown command (flags and their arguments left out)."""
    command, path = cli_root(), ["nanoresearch"]
    for token in tokens[1:]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or token not in subcommands:
            if as_flag(token) is None and subcommands is not None:
                break
            continue
        command = subcommands[token]
        path.append(token)
    return tuple(path)


# ---------------------------------------------------------------- links


def github_slug(heading: str) -> str:
    text = re.sub(r"`|\*\*|__", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {github_slug(h) for h in HEADING.findall(without_code_blocks(page.read_text(encoding="utf-8")))}


def link_problems(page: Path) -> list[str]:
    problems = []
    for target in LINK.findall(without_code_blocks(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here (tests have no network)
        file_part, _, fragment = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            problems.append(f"{page_id(page)}: link to {target}: {file_part} does not exist")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"{page_id(page)}: link to {target}: no heading #{fragment} in {page_id(linked)}")
    return problems


# ---------------------------------------------------------------- docs/architecture.md


def expand_braces(path: str) -> list[str]:
    match = re.search(r"\{([\w,]+)\}", path)
    if not match:
        return [path]
    return [path[: match.start()] + part + path[match.end():] for part in match[1].split(",")]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in without_code_blocks(text).splitlines():
        if line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def cited_path_problems(text: str) -> list[str]:
    """Every module or folder path in the text exists: from the repository root, from
    src/nanoresearch/, or (in a table row that starts with a package) from that package."""
    problems = []
    for line in text.splitlines():
        package = re.match(r"\|\s*`([a-z_/]+/)`\s*\|", line)
        bases = [ROOT, SRC, SRC / package[1]] if package else [ROOT, SRC]
        for cited in CITED_PATH.findall(line):
            for path in expand_braces(cited):
                if not any((base / path).exists() for base in bases):
                    problems.append(f"{path} (in: {line.strip()[:80]})")
    return sorted(set(problems))


def defined_names(module: Path) -> set[str]:
    """Top-level functions and classes of a module, and Class.method for their methods."""
    names = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{item.name}" for item in node.body
                      if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def function_rows(text: str) -> list[tuple[str, list[str]]]:
    """Table rows with a module path in one cell and the functions to read in the next."""
    found = []
    for row in table_rows(text):
        for index, cell in enumerate(row[:-1]):
            module = re.fullmatch(r"`([\w/]+\.py)`", cell)
            if module:
                found.append((module[1], re.findall(r"`([A-Za-z_][\w.]*)`", row[index + 1])))
                break
    return found


def section(text: str, title_start: str) -> str:
    start = text.index(f"## {title_start}")
    following = text.find("\n## ", start + 1)
    return text[start: following if following != -1 else len(text)]


# ---------------------------------------------------------------- keys of the task format and the settings


def nested_model(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model a field holds, and the key part it adds: "" for a table, "<>." for a table of tables."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    args = get_args(annotation)
    if get_origin(annotation) is dict and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return args[1], "<>."
    return None


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key a model reads from a file, dotted (`score.metric`, `knobs.<>.min`)."""
    keys = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        nested = nested_model(field.annotation)
        if nested is None:
            keys.add(prefix + name)
        else:
            keys |= model_keys(nested[0], f"{prefix}{name}.{nested[1]}")
    return keys


def documented_keys(text: str) -> set[str]:
    return {re.sub(r"<[^>]*>", "<>", cell[1]) for cell in
            (re.fullmatch(r"`([\w.<>]+)`", row[0]) for row in table_rows(text)) if cell}


# ---------------------------------------------------------------- the tests


def test_readme_is_at_most_12_kb() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/ (limit {README_MAX_BYTES})"


def test_readme_links_every_docs_page() -> None:
    linked = {target.partition("#")[0] for target in LINK.findall(README.read_text(encoding="utf-8"))}
    missing = [page_id(page) for page in sorted(DOCS.glob("*.md")) if page_id(page) not in linked]
    assert not missing, f"README.md does not link these docs pages: {missing}"


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_relative_links_point_to_existing_files_and_headings(page: Path) -> None:
    assert not link_problems(page)


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_every_command_shown_exists_with_its_flags(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    problems = [f"{' '.join(tokens)}: {problem}"
                for tokens in shown_commands(text, "nanoresearch") for problem in command_problems(tokens, cli_root())]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_every_make_target_shown_exists(page: Path) -> None:
    targets = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    shown = [token for tokens in shown_commands(page.read_text(encoding="utf-8"), "make")
             for token in tokens[1:] if "=" not in token and not token.startswith("-")]
    assert set(shown) <= targets, f"not Makefile targets: {sorted(set(shown) - targets)}"


def test_the_command_reference_shows_every_command() -> None:
    reference = (DOCS / "commands.md").read_text(encoding="utf-8")
    shown = {command_path(tokens) for tokens in shown_commands(reference, "nanoresearch")}
    missing = [" ".join(path) for path in leaf_commands(cli_root()) if path not in shown]
    assert not missing, f"docs/commands.md has no example of: {missing}"


def test_architecture_cites_only_paths_that_exist() -> None:
    assert not cited_path_problems(ARCHITECTURE.read_text(encoding="utf-8"))


def test_architecture_names_functions_defined_in_the_files_beside_them() -> None:
    rows = function_rows(ARCHITECTURE.read_text(encoding="utf-8"))
    assert rows, "docs/architecture.md has no table of files and functions"
    problems = [f"{module}: no {name}" for module, names in rows
                for name in names if name not in defined_names(SRC / module)]
    assert not problems, "\n".join(problems)


def test_one_run_goes_through_at_most_ten_files() -> None:
    walk = function_rows(section(ARCHITECTURE.read_text(encoding="utf-8"), "One run"))
    files = {module for module, _ in walk}
    assert 1 < len(files) <= ONE_RUN_MAX_FILES, f"the one-run path cites {len(files)} files: {sorted(files)}"
    assert walk[0][0].startswith("cli/") and walk[-1][0] == "paper/compile.py"


def test_the_task_format_lists_exactly_the_keys_a_task_accepts() -> None:
    keys = documented_keys(section((DOCS / "task-format.md").read_text(encoding="utf-8"), "Keys"))
    accepted = model_keys(Task)
    assert keys == accepted, f"undocumented: {sorted(accepted - keys)}; not accepted: {sorted(keys - accepted)}"


def test_the_configuration_page_names_every_setting() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    names = {key.rsplit(".", 1)[-1] for key in model_keys(Settings)}
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"docs/configuration.md does not name these settings: {missing}"


# ---------------------------------------------------------------- the checks catch what they should


def test_command_check_catches_an_unknown_command_and_an_unknown_flag() -> None:
    root = cli_root()
    assert command_problems(shlex.split("nanoresearch memory list --type result"), root) == []
    assert command_problems(shlex.split("nanoresearch --user bob run GOAL [--budget trials=2] -y"), root) == []
    assert command_problems(shlex.split("nanoresearch memory frobnicate"), root)
    assert command_problems(shlex.split("nanoresearch trials run --task x --turbo"), root)
    assert command_problems(shlex.split("nanoresearch --colour run GOAL"), root)


def test_shown_commands_are_found_in_blocks_continuations_chains_and_inline_code() -> None:
    text = (
        "Run `nanoresearch status RUN` or:\n\n```bash\n"
        "nanoresearch run \"a goal\" \\\n    --yes   # unattended\n"
        "nanoresearch llm export RUN -o r.json && nanoresearch llm import r.json\n"
        "[stages.writing]\n```\n"
    )
    assert shown_commands(text, "nanoresearch") == [
        ["nanoresearch", "run", "a goal", "--yes"],
        ["nanoresearch", "llm", "export", "RUN", "-o", "r.json"],
        ["nanoresearch", "llm", "import", "r.json"],
        ["nanoresearch", "status", "RUN"],
    ]


def test_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-section) [gone](missing.md) [bad](other.md#nowhere)\n", encoding="utf-8")
    problems = link_problems(page)
    assert len(problems) == 2 and "missing.md" in problems[0] and "#nowhere" in problems[1]


def test_architecture_checks_catch_a_missing_path_and_a_missing_function() -> None:
    text = "see `pipeline/stages/{ideation,nowhere}.py`, `llm/` and `nowhere/`"
    assert cited_path_problems(text) == [f"nowhere/ (in: {text})", f"pipeline/stages/nowhere.py (in: {text})"]
    rows = function_rows("| 1 | `trials/loop.py` | `TrialLoop.run`, `no_such_function` | x |\n")
    assert rows == [("trials/loop.py", ["TrialLoop.run", "no_such_function"])]
    assert "TrialLoop.run" in defined_names(SRC / "trials/loop.py")
    assert "no_such_function" not in defined_names(SRC / "trials/loop.py")


def test_key_checks_read_nested_tables_and_tables_of_tables() -> None:
    keys = model_keys(Task)
    assert {"name", "score.metric", "knobs.<>.min", "specialists.<>.focus", "resources.disk_mb"} <= keys
    assert "folder" not in keys  # set by load_task, never read from task.toml
    assert documented_keys("| `knobs.<NAME>.min` | yes |\n| key | x |\n") == {"knobs.<>.min"}
