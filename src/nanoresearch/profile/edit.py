"""Changing one key of a profile from text, as `profile set` and the `init` interview do."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from nanoresearch.errors import UserError
from nanoresearch.profile.models import HardConstraints, Profile
from nanoresearch.profile.store import describe_errors

NONE_WORDS = ("", "none")  # how a user clears a cap or the forbidden list


def settable_keys() -> list[str]:
    # `preset` is left out: switching presets is `profile use`, which changes every key at once.
    top = [name for name in Profile.model_fields if name not in ("preset", "hard_constraints")]
    return top + [f"hard_constraints.{name}" for name in HardConstraints.model_fields]


def with_setting(profile: Profile, key: str, text: str) -> Profile:
    """A copy of the profile with `key` set from `text`, validated like a profile file."""
    if key not in settable_keys():
        raise UserError(f"unknown profile key {key!r}", hint=f"keys: {', '.join(settable_keys())}")
    data = profile.model_dump()
    node, name = _locate(data, key)
    node[name] = _value(name, node[name], text.strip())
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_errors(exc, "profile"), hint="see `nanoresearch profile set --help`") from None


def _locate(data: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
    """The table holding a dotted key, and the key's last part."""
    if key.startswith("hard_constraints."):
        return data["hard_constraints"], key.removeprefix("hard_constraints.")
    return data, key


def _value(name: str, current: Any, text: str) -> Any:
    if isinstance(current, list):
        return [] if text.lower() in NONE_WORDS else [item.strip() for item in text.split(",")]
    if name.startswith("max_") and text.lower() in NONE_WORDS:
        return None
    return text  # pydantic turns "2.5" into a float where the field wants one


def shown(profile: Profile, key: str) -> str:
    """The key's value as the user would type it."""
    node, name = _locate(profile.model_dump(), key)
    value = node[name]
    if isinstance(value, list):
        return ",".join(value) or "none"
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)
