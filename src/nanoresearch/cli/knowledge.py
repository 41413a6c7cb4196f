"""`nanoresearch skills ...` and `nanoresearch memory ...`: the skill bank and the memory, by hand.

Both act as the user given by the global `--user` (default: the configured user), and never show
another user's private skills or records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from nanoresearch.cli.common import JsonOption, err, examples, out, print_json, print_table, session, short
from nanoresearch.errors import UserError
from nanoresearch.store.knowledge_models import MEMORY_TYPES, Hit, MemoryRecord

if TYPE_CHECKING:
    from nanoresearch.knowledge.memory import Memory
    from nanoresearch.knowledge.skillbank import SkillBank

skills_app = typer.Typer(help="Your skill bank: research procedures learned from runs, as SKILL.md folders.",
                         no_args_is_help=True)
memory_app = typer.Typer(help="What NanoResearch remembers of your research: preferences, failed hypotheses, results.",
                         no_args_is_help=True)


app = typer.Typer()  # the two groups, merged into the top level
app.add_typer(skills_app, name="skills")
app.add_typer(memory_app, name="memory")


NameArgument = Annotated[str, typer.Argument(help="Skill name.")]
SharedOption = Annotated[bool, typer.Option("--shared", help="The shared skill of that name, not your own.")]
KOption = Annotated[int, typer.Option("-k", min=1, max=100, help="How many results.")]
MinScoreOption = Annotated[float, typer.Option(min=0.0, max=1.0, help="Leave out results scoring below this.")]
ExplainOption = Annotated[bool, typer.Option("--explain", help="Show each score component.")]
StageOption = Annotated[Optional[str], typer.Option(help="The pipeline stage it is for (ideation, planning, ...).")]
ProjectOption = Annotated[Optional[str], typer.Option(help="Only this project's records (and your general ones).")]


@contextmanager
def _bank(ctx: typer.Context) -> Iterator[SkillBank]:
    from nanoresearch.knowledge.skillbank import SkillBank

    with session(ctx) as (settings, store, _):
        bank = SkillBank(settings, store)
        for problem in bank.problems:
            err.print(f"[yellow]warning:[/] skipped {escape(problem)}", highlight=False)
        yield bank


@contextmanager
def _memory(ctx: typer.Context) -> Iterator[Memory]:
    from nanoresearch.knowledge.memory import Memory

    with session(ctx) as (_, store, user_id):
        yield Memory(store, user_id)


# skills


@skills_app.command("list", epilog=examples("nanoresearch skills list", "nanoresearch skills list --json"))
def skills_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Your skills, then the shared ones (narrow output drops columns and shortens the description)."""
    with _bank(ctx) as bank:
        skills = bank.list_skills()
        user = bank.user
    if as_json:
        print_json([s.model_dump(mode="json") for s in skills])
        return
    rows = [[s.name, s.visibility, str(s.version), str(s.uses), f"{s.success_rate:.2f}", ", ".join(s.stages),
             s.description] for s in skills]
    print_table(f"skills of {user}", ("name", "visibility", "version", "uses", "success", "stages", "description"),
                rows, flex="description", droppable=("stages", "version", "uses", "success", "visibility"))


@skills_app.command("show", epilog=examples(
    "nanoresearch skills show more-solver-iterations",
    "nanoresearch skills show more-solver-iterations --shared",
))
def skills_show(ctx: typer.Context, name: NameArgument, shared: SharedOption = False) -> None:
    """A skill's fields, its procedure and the files beside it."""
    with _bank(ctx) as bank:
        skill = bank.get_skill(name, _which(shared))
        files = bank.files(skill)
    out.print(f"[bold]{skill.name}[/] v{skill.version} ({skill.visibility}) — {escape(skill.description)}")
    out.print(f"tags: {', '.join(skill.tags) or '-'}; stages: {', '.join(skill.stages) or 'any'}; "
              f"used {skill.uses}×, {skill.successes} succeeded; updated {skill.updated:%Y-%m-%d}")
    for entry in skill.provenance:
        out.print(f"learned from {entry.run_id} (trials {', '.join(map(str, entry.trial_ids)) or '-'})")
    out.print(f"folder: {skill.path}" + (f"; files: {', '.join(files)}" if files else ""), highlight=False)
    out.print(skill.body, markup=False, highlight=False)


@skills_app.command("search", epilog=examples(
    'nanoresearch skills search "solver stops before converging" --stage experiment --explain',
))
def skills_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What you need a procedure for.")],
    stage: StageOption = None,
    tag: Annotated[Optional[list[str]], typer.Option(help="A tag to match (repeat for more).")] = None,
    k: KOption = 5,
    min_score: MinScoreOption = 0.0,
    explain: ExplainOption = False,
) -> None:
    """The skills that fit a need best, by the hybrid score (text, meaning, tags, stage, success)."""
    with _bank(ctx) as bank:
        hits = bank.search(query, stage=stage, tags=tuple(tag or ()), k=k, min_score=min_score)
    _print_hits(hits, explain, "skill", lambda item: item.name)


@skills_app.command("import", epilog=examples(
    "nanoresearch skills import ~/agent-skills/",
    "nanoresearch skills import ~/agent-skills/ --shared --replace",
))
def skills_import(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A skill folder (with SKILL.md), or a folder of them.")],
    shared: Annotated[bool, typer.Option("--shared", help="Import into the shared bank, seen by every user.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite skills of the same name.")] = False,
) -> None:
    """Copy skills in; folders in the Agent Skills format (name and description only) work as they are."""
    with _bank(ctx) as bank:
        skills = bank.import_skills(source, shared=shared, replace=replace)
    err.print(f"imported {len(skills)} skill{'s' if len(skills) != 1 else ''}: {', '.join(s.name for s in skills)}")


@skills_app.command("export", epilog=examples(
    "nanoresearch skills export ./my-skills",
    "nanoresearch skills export ./my-skills more-solver-iterations",
))
def skills_export(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="Folder to copy the skill folders into.")],
    names: Annotated[Optional[list[str]], typer.Argument(help="Skills to export (default: all you can see).")] = None,
) -> None:
    """Copy skills out as SKILL.md folders, ready for `skills import` or another Agent Skills tool."""
    with _bank(ctx) as bank:
        written = bank.export_skills(dest, names)
    err.print(f"exported {len(written)} skill{'s' if len(written) != 1 else ''} to {dest}")


@skills_app.command("edit", epilog=examples("nanoresearch skills edit more-solver-iterations"))
def skills_edit(ctx: typer.Context, name: NameArgument, shared: SharedOption = False) -> None:
    """Edit a SKILL.md in $EDITOR; it is checked, versioned and re-indexed."""
    with _bank(ctx) as bank:
        skill = bank.edit_skill(name, _which(shared))  # an edit may rename it
    err.print(f"{skill.name} is at version {skill.version}")


@skills_app.command("remove", epilog=examples("nanoresearch skills remove more-solver-iterations"))
def skills_remove(ctx: typer.Context, name: NameArgument, shared: SharedOption = False) -> None:
    """Delete a skill's folder and its index entry."""
    with _bank(ctx) as bank:
        err.print(f"removed {bank.remove_skill(name, _which(shared)).visibility} skill {name}")


# memory


@memory_app.command("list", epilog=examples(
    "nanoresearch memory list --project digits-classifier --type constraint",
    "nanoresearch memory list --json",
))
def memory_list(
    ctx: typer.Context,
    project: ProjectOption = None,
    type_: Annotated[Optional[list[str]], typer.Option("--type", help=f"Only these types: {', '.join(MEMORY_TYPES)}.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Your records (and shared ones), oldest first (narrow output drops columns and shortens the text)."""
    from nanoresearch.knowledge.memory import decayed_importance

    with _memory(ctx) as memory:
        records = memory.list(_project_id(memory, project), _types(type_))
        names = memory.store.project_names(memory.user_id)
    if as_json:
        print_json([r.model_dump(mode="json") for r in records])
        return
    rows = [[str(r.id), r.type, names.get(r.project_id, "another user's") if r.project_id else "-",
             f"{decayed_importance(r):.2f}", f"{r.confidence:.2f}", f"+{r.support}/-{r.contradictions}", r.text]
            for r in records]
    print_table("memory", ("id", "type", "project", "importance", "confidence", "±", "text"), rows, flex="text",
                droppable=("±", "confidence", "importance", "project"))


@memory_app.command("search", epilog=examples('nanoresearch memory search "feature scaling" --type result --explain'))
def memory_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to recall.")],
    project: ProjectOption = None,
    type_: Annotated[Optional[list[str]], typer.Option("--type", help="Only these types (repeat for more).")] = None,
    stage: StageOption = None,
    k: KOption = 5,
    min_score: MinScoreOption = 0.0,
    explain: ExplainOption = False,
) -> None:
    """The records that best match, by the same hybrid score as skills (with importance for success)."""
    with _memory(ctx) as memory:
        hits = memory.search(query, project_id=_project_id(memory, project), types=tuple(_types(type_) or ()),
                             stage=stage, k=k, min_score=min_score)
    _print_hits(hits, explain, "record", lambda item: f"#{item.id} {item.type}: {short(item.text, 60)}")


@memory_app.command("show", epilog=examples("nanoresearch memory show 12"))
def memory_show(ctx: typer.Context, memory_id: Annotated[int, typer.Argument(help="Record id.")]) -> None:
    """Everything about one record: conditions, evidence, counts, links."""
    from nanoresearch.knowledge.memory import decayed_importance

    with _memory(ctx) as memory:
        record = memory.get(memory_id)
    out.print(f"[bold]#{record.id}[/] {record.type} ({record.visibility}): {escape(record.text)}")
    out.print(f"importance {record.importance:.2f} (now {decayed_importance(record):.2f}), confidence "
              f"{record.confidence:.2f}, supported {record.support}×, contradicted {record.contradictions}×")
    conditions = record.conditions.model_dump(exclude_none=True)
    if conditions:
        out.print("conditions: " + escape(", ".join(f"{k}={v}" for k, v in conditions.items())))
    for evidence in record.evidence:
        out.print("evidence: " + escape(", ".join(f"{k}={v}" for k, v in evidence.model_dump(exclude_none=True).items())))
    if record.contradicts:
        out.print(f"contradicts: {', '.join(f'#{i}' for i in record.contradicts)}")
    out.print(f"created {record.created:%Y-%m-%d %H:%M}, updated {record.updated:%Y-%m-%d %H:%M}")


@memory_app.command("forget", epilog=examples("nanoresearch memory forget 12"))
def memory_forget(ctx: typer.Context, memory_id: Annotated[int, typer.Argument(help="Record id.")]) -> None:
    """Delete one of your records for good."""
    with _memory(ctx) as memory:
        record = memory.forget(memory_id)
    err.print(f"forgot #{record.id} ({record.type}): {escape(short(record.text, 80))}")


@memory_app.command("export", epilog=examples("nanoresearch memory export -o memory.json --project digits-classifier"))
def memory_export(
    ctx: typer.Context,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="JSON file (default: print).")] = None,
    project: ProjectOption = None,
) -> None:
    """Your records (and shared ones) as JSON."""
    with _memory(ctx) as memory:
        records = memory.list(_project_id(memory, project))
    text = json.dumps([r.model_dump(mode="json") for r in records], indent=2)
    if output is None:
        out.print(text, markup=False, highlight=False)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"wrote {len(records)} records to {output}")


@memory_app.command("add", epilog=examples(
    'nanoresearch memory add "never use the test split for early stopping" --type constraint',
))
def memory_add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to remember, in a sentence.")],
    type_: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(MEMORY_TYPES)}.")] = "preference",
    project: ProjectOption = None,
    importance: Annotated[float, typer.Option(min=0.0, max=1.0, help="How much it should count (0-1).")] = 0.7,
    shared: Annotated[bool, typer.Option("--shared", help="Let every user see it.")] = False,
) -> None:
    """Tell NanoResearch something to remember, such as a preference or a constraint."""
    _types([type_])
    if not text.strip():
        raise UserError("the text is empty")
    with _memory(ctx) as memory:
        record = memory.remember(MemoryRecord(type=type_, text=text, project_id=_project_id(memory, project),
                                              importance=importance, visibility="shared" if shared else "private"))
    err.print(f"remembered #{record.id} ({record.type})")


# helpers


def _print_hits(hits: list[Hit], explain: bool, noun: str, label: Callable[[Any], str]) -> None:
    if not hits:
        err.print(f"no {noun} matched")
        return
    components = list(hits[0].components) if explain else []
    table = Table(title=f"best {noun}s" + (" (components 0-1; score = weighted mean)" if explain else ""))
    for column in ("#", noun, "score", *components):
        table.add_column(column, justify="right" if column not in (noun,) else "left")
    for rank, hit in enumerate(hits, 1):
        values = [f"{hit.components.get(c, 0.0):.3f}" for c in components]
        table.add_row(str(rank), escape(label(hit.item)), f"{hit.score:.3f}", *values)
    out.print(table)
    if explain:
        from nanoresearch.knowledge.retrieval import WEIGHTS

        out.print("weights: " + ", ".join(f"{c} {getattr(WEIGHTS, c)}" for c in components), highlight=False)


def _which(shared: bool) -> bool | None:
    """--shared picks the shared skill; without it, your own comes first, then a shared one."""
    return True if shared else None


def _project_id(memory: Memory, name: str | None) -> int | None:
    if name is None:
        return None
    project_id = memory.store.project_named(memory.user_id, name)
    if project_id is None:
        raise UserError(f"you have no project named {name!r}", hint="`nanoresearch list` shows your runs and their projects")
    return project_id


def _types(names: list[str] | None) -> list[str] | None:
    unknown = [n for n in names or [] if n not in MEMORY_TYPES]
    if unknown:
        raise UserError(f"unknown memory type {unknown[0]!r}", hint=f"types are: {', '.join(MEMORY_TYPES)}")
    return names or None

