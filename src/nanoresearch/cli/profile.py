"""`nanoresearch init` (a short interview) and `nanoresearch profile show | presets | set | use`."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Annotated, Optional, get_args

import tomli_w
import typer
from rich.markup import escape

from nanoresearch.cli.common import err, examples, out, settings_from
from nanoresearch.errors import NanoResearchError, UserError
from nanoresearch.profile.edit import settable_keys, shown, with_setting
from nanoresearch.profile.models import Profile
from nanoresearch.profile.presets import DEFAULT_PRESET, DESCRIPTIONS, PRESETS, preset
from nanoresearch.profile.render import limits_text, profile_prompt
from nanoresearch.profile.store import load_profile, profile_path, save_profile

profile_app = typer.Typer(help="Show or change your profile (research style, limits).", no_args_is_help=True)

# The interview: the keys asked, in order, each with its question. Everything else keeps the
# preset's value and can be changed later with `profile set`.
QUESTIONS = [
    ("risk_appetite", "Risk appetite"),
    ("rigour", "Rigour"),
    ("ablation_strictness", "Ablations"),
    ("compute_budget", "Usual budget of a run"),
    ("venue", "Target venue"),
    ("writing_style", "Writing style"),
    ("hard_constraints.max_gpu_hours", "Hard cap on GPU-hours per run (none = no cap)"),
    ("hard_constraints.max_usd", "Hard cap on dollars per run (none = no cap)"),
    ("hard_constraints.forbid", "Never use (gpu, slurm, ray; comma-separated, none = nothing)"),
    ("notes", "Anything else the planner should know"),
]


app = typer.Typer()  # `init` at the top level, beside the `profile` group
app.add_typer(profile_app, name="profile")


@app.command("init", epilog=examples("nanoresearch init", "nanoresearch init --preset resource-constrained"))
def init(
    ctx: typer.Context,
    preset_name: Annotated[Optional[str], typer.Option("--preset", help=f"Take this preset as it is, no questions: {', '.join(PRESETS)}.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help=f"No questions: take --preset, or {DEFAULT_PRESET}.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing profile.")] = False,
) -> None:
    """Create your profile: pick a preset, then answer a few questions (Enter keeps the preset's answer)."""
    settings = settings_from(ctx)
    path = profile_path(settings)
    if path.exists() and not force:
        raise UserError(f"{path} already exists", hint="see it with `nanoresearch profile show`; pass --force to start again")
    if preset_name or yes:
        profile = preset(preset_name or DEFAULT_PRESET)
    else:
        profile = _interview()
    save_profile(settings, profile)
    err.print(f"wrote {path}")
    out.print(profile_prompt(profile), markup=False, highlight=False)


def _interview() -> Profile:
    _print_presets()
    profile = typer.prompt(f"Preset ({'/'.join(PRESETS)})", default=DEFAULT_PRESET, value_proc=_checked(preset))
    for key, question in QUESTIONS:
        choices = _choices(key)
        label = f"{question} ({'/'.join(choices)})" if choices else question
        answer = _checked(partial(with_setting, profile, key))
        profile = typer.prompt(label, default=shown(profile, key), value_proc=answer)
    return profile


def _choices(key: str) -> list[str]:
    """The allowed values of a top-level key with a fixed set of them, else []."""
    field = Profile.model_fields.get(key)
    return [str(value) for value in get_args(field.annotation)] if field else []


def _checked(read: Callable[[str], Profile]) -> Callable[[str], Profile]:
    """Turn a bad answer into a prompt error, so the question is asked again instead of failing."""

    def proc(text: str) -> Profile:
        try:
            return read(text)
        except NanoResearchError as exc:
            raise typer.BadParameter(exc.message.removeprefix("profile: ")) from None

    return proc


@profile_app.command("show", epilog=examples("nanoresearch profile show", "nanoresearch profile show --json"))
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    prompt: Annotated[bool, typer.Option("--prompt", help="Print the block the planner sees instead.")] = False,
) -> None:
    """Print your profile (the default preset when you have not made one)."""
    settings = settings_from(ctx)
    profile = load_profile(settings)
    path = profile_path(settings)
    if prompt:
        out.print(profile_prompt(profile), markup=False, highlight=False)
    elif as_json:
        out.print_json(profile.model_dump_json())
    else:
        origin = f"# from {path}" if path.exists() else f"# no profile yet: the {DEFAULT_PRESET} preset (create one with `nanoresearch init`)"
        err.print(escape(origin), highlight=False)
        out.print(tomli_w.dumps(profile.model_dump(exclude_none=True)), markup=False, highlight=False)


@profile_app.command("presets", epilog=examples("nanoresearch profile presets", "nanoresearch profile presets --json"))
def presets(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the presets and how they differ."""
    if as_json:
        out.print_json(json.dumps({name: p.model_dump() for name, p in PRESETS.items()}))
    else:
        _print_presets()


def _print_presets() -> None:
    # Two lines a preset rather than a table: it stays readable in an 80-column terminal.
    for name, p in PRESETS.items():
        out.print(f"[bold]{name}[/]: {escape(DESCRIPTIONS[name])}", highlight=False)
        out.print(f"  risk {p.risk_appetite} · rigour {p.rigour} · ablations {p.ablation_strictness} · "
                  f"budget {p.compute_budget} · hard limits {escape(limits_text(p.hard_constraints))}",
                  style="dim", highlight=False)


@profile_app.command("set", epilog=examples(
    "nanoresearch profile set hard_constraints.max_gpu_hours 2",
    "nanoresearch profile set hard_constraints.forbid gpu,slurm",
))
def set_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=f"One of: {', '.join(settable_keys())}.")],
    value: Annotated[str, typer.Argument(help="The new value; `none` clears a cap or the forbid list.")],
) -> None:
    """Change one key of your profile, e.g. `profile set hard_constraints.max_gpu_hours 2`."""
    settings = settings_from(ctx)
    profile = with_setting(load_profile(settings), key, value)
    path = save_profile(settings, profile)
    err.print(f"{escape(key)} = {escape(shown(profile, key))} (in {path})", highlight=False)


@profile_app.command("use", epilog=examples("nanoresearch profile use exploratory"))
def use(ctx: typer.Context, name: Annotated[str, typer.Argument(help=f"One of: {', '.join(PRESETS)}.")]) -> None:
    """Replace your whole profile, hard constraints included, with a preset."""
    settings = settings_from(ctx)
    path = save_profile(settings, preset(name))
    err.print(f"your profile is now the {name} preset (in {path})")

