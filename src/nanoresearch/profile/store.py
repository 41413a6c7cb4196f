"""Where a profile lives (`<home>/users/<user>/profile.toml`), and reading it back with clear errors.

The file may be partial: top-level keys it leaves out come from the preset it names (or the
default preset). A `[hard_constraints]` table is taken whole, so a cap left out of it means no cap.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from nanoresearch.config import Settings
from nanoresearch.errors import ConfigError
from nanoresearch.profile.models import HardConstraints, Profile
from nanoresearch.profile.presets import DEFAULT_PRESET, PRESETS, preset

FIX_HINT = "edit the file, or start again with `nanoresearch init --force`"


def profile_path(settings: Settings) -> Path:
    return settings.home / "users" / settings.user / "profile.toml"


def load_profile(settings: Settings) -> Profile:
    """The user's profile; the default preset when they have none yet."""
    path = profile_path(settings)
    if not path.exists():
        return preset(DEFAULT_PRESET)
    data = _read(path)
    base = data.get("preset", DEFAULT_PRESET)
    if base not in PRESETS:
        raise ConfigError(f"{path}: key `preset` = {base!r} is not a preset", hint=f"presets: {', '.join(PRESETS)}")
    try:
        return Profile.model_validate({**PRESETS[base].model_dump(), **data})
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, str(path)), hint=FIX_HINT) from None


def save_profile(settings: Settings, profile: Profile) -> Path:
    """Write the whole profile; atomically, so a crash never leaves half a file."""
    path = profile_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# NanoResearch profile of {settings.user}. Check edits with `nanoresearch profile show`.\n"
              "# A cap left out of [hard_constraints] means no cap.\n\n")
    partial = path.with_suffix(".toml.part")
    partial.write_text(header + tomli_w.dumps(profile.model_dump(exclude_none=True)), encoding="utf-8")
    partial.replace(path)
    return path


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint=FIX_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}", hint=FIX_HINT) from None


def describe_errors(exc: ValidationError, where: str) -> str:
    """One line per bad key, naming the key as it is written in the file (dotted for tables)."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        item = next((f" (item {part + 1})" for part in error["loc"] if isinstance(part, int)), "")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unknown key; valid keys here: {', '.join(_fields_at(loc[:-1]))}"
        lines.append(f"{where}: key `{'.'.join(loc)}`{item}: {message}")
    return "\n".join(lines)


def _fields_at(parent: list[str]) -> list[str]:
    model: type[BaseModel] = HardConstraints if parent == ["hard_constraints"] else Profile
    return list(model.model_fields)
