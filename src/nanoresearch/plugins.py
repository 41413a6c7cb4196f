"""Plug points by name: one registry helper for LLM providers, literature sources and executors.

Each plug point keeps one `Registry` of factories by name (its "kind"). Built-ins register in
code with `@registry.register("name")`; their package's `__init__` imports them, so the registry
is complete by the time anyone can reach it. Other packages add kinds the way simonw/llm takes
plug-ins, through entry points: an entry point in the registry's group, named after the kind,
whose object is the factory itself (the callable a built-in would decorate). For example, in the
plug-in package's pyproject.toml:

    [project.entry-points."nanoresearch.providers"]
    echo = "nanoresearch_echo:make_provider"

Groups, and what their factories are called with:
- `nanoresearch.providers`: (endpoint name, EndpointSettings, ProviderContext) -> Provider
- `nanoresearch.sources`: (SourceOptions) -> LiteratureSource
- `nanoresearch.executors`: (Settings) -> Executor

Loading is lazy: `names()` reads entry point names from the installed distributions' metadata
without importing anything, and a plug-in's module is imported only when its kind is looked up,
so a broken plug-in never gets in the way of the others. A name registered in code wins over an
entry point of the same name: no installed package can silently replace a built-in. A plug-in
that fails to import, or whose object is not callable, is a `PluginError` naming the
distribution and the entry point, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, cast

from nanoresearch.errors import ConfigError

PROVIDERS_GROUP = "nanoresearch.providers"
SOURCES_GROUP = "nanoresearch.sources"
EXECUTORS_GROUP = "nanoresearch.executors"

Factory = TypeVar("Factory", bound=Callable[..., Any])


class PluginError(ConfigError):
    """An installed plug-in cannot be used: it fails to import, or its entry point names no factory."""


class Registry(Generic[Factory]):
    """Factories by name: registered in code, or found as entry points of `group`.

    noun: what a name names, in messages ("provider kind").
    """

    def __init__(self, group: str, noun: str) -> None:
        self.group = group
        self.noun = noun
        self._factories: dict[str, Factory] = {}

    def register(self, name: str) -> Callable[[Factory], Factory]:
        """Decorator: register a factory under `name`."""

        def decorator(factory: Factory) -> Factory:
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        """Every known name: the built-ins and the installed plug-ins (none of them imported)."""
        return sorted(set(self._factories) | {entry.name for entry in self._entry_points()})

    def lookup(self, name: str, *, where: str = "", fix: str = "") -> Factory:
        """The factory registered as `name`, importing its plug-in if need be.

        where: said after the name in the error (" for endpoint 'x'"); fix: added to its hint.
        """
        if name in self._factories:
            return self._factories[name]
        for entry in self._entry_points():
            if entry.name == name:  # the first distribution on sys.path wins, as for imports
                return self._load(entry)
        raise self._unknown(name, where, fix)

    def require(self, name: str, *, where: str = "", fix: str = "") -> None:
        """Raise lookup's error for an unknown `name`, without importing any plug-in."""
        if name not in self._factories and name not in {entry.name for entry in self._entry_points()}:
            raise self._unknown(name, where, fix)

    def _unknown(self, name: str, where: str, fix: str) -> ConfigError:
        hint = f"known {self.noun}s: {', '.join(self.names())}"
        return ConfigError(f"unknown {self.noun} {name!r}{where}", hint=f"{hint}; {fix}" if fix else hint)

    def _entry_points(self) -> tuple[EntryPoint, ...]:
        # Read each time, not cached: a package installed (or a path added) meanwhile counts.
        return tuple(entry_points(group=self.group))

    def _load(self, entry: EntryPoint) -> Factory:
        distribution = _distribution_of(entry)
        origin = f"entry point `{entry.name} = {entry.value}` (group {self.group}) of {distribution}"
        try:
            factory = entry.load()
        except Exception as exc:  # whatever a third-party import raises, reported in one line
            raise PluginError(
                f"the {self.noun} plug-in {entry.name!r} cannot be loaded: {origin} failed with {_one_line(exc)}",
                hint=f"fix or reinstall {distribution}, or uninstall it",
            ) from exc
        if not callable(factory):
            raise PluginError(
                f"the {self.noun} plug-in {entry.name!r} is not usable: {origin} names a "
                f"{type(factory).__name__}, not a factory",
                hint="point the entry point at the factory function (module:function)",
            )
        return cast(Factory, factory)


def _distribution_of(entry: EntryPoint) -> str:
    dist = entry.dist
    return f"the distribution {dist.name} {dist.version}" if dist is not None else "an unnamed distribution"


def _one_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
